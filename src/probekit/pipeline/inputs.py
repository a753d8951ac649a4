"""The run's data: the recipe's data section resolved once (absolute paths, the data root), its
examples (from a manifest, a FLEURS folder or the hub; grouped into paragraphs, code-switched,
given decoder targets), each one's fingerprint and columns as the store keeps them, and the
admission of each one before it runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from .. import data as D
from ..data import Example
from ..recipe import data_path, resolve_path
from ..recipe_schema import DataSection, Recipe
from ..wrappers import ModelSpec, Wrapper
from ..wrappers.spec import limit

log = logging.getLogger("probekit")


def resolved_data(recipe: Recipe) -> DataSection:
    """The recipe's data section with its paths (data, documents, code-switched audio and
    alignments) absolute, resolved against the recipe's folder."""
    d = recipe.data

    def absolute(value: str | None) -> str | None:
        return str(resolve_path(recipe, value)) if value else value

    cs = dataclasses.replace(d.code_switch, audio=absolute(d.code_switch.audio),
                             alignments=absolute(d.code_switch.alignments))
    path = str(data_path(recipe)) if d.path else d.path
    return dataclasses.replace(d, path=path, documents=absolute(d.documents),
                               code_switch=cs)


def data_root(data: DataSection) -> Path:
    """The folder audio paths are stored relative to (recorded once, in the store's
    provenance)."""
    from ..data import fleurs_cache_root, probekit_cache

    if data.source == "hf":
        return probekit_cache() / "hf"  # each dataset's clips in a folder of its own there
    if data.source == "fleurs" or not data.path:
        return fleurs_cache_root()
    path = Path(data.path)
    return Path(os.path.abspath(path if data.source == "fleurs_local" else path.parent))


def examples_for(d: DataSection) -> tuple[list[Example], dict[str, Any]]:
    """Every example of the (resolved) data section, and the counts of what was read, dropped
    and made (``sentences``, ``dropped_not_in_every_language``, ``empty_text``,
    ``code_switched``)."""
    if d.source == "manifest":
        rows = D.read_manifest(Path(str(d.path)))
    elif d.source == "hf":
        from ..hf_source import load_hf

        rows = load_hf(str(d.path), d.languages, d.split, d.hf.config, d.hf.columns,
                       d.hf.revision)
    else:
        configs = fleurs_configs(d.languages)
        rows = (D.read_fleurs_local(Path(str(d.path)), configs, d.split)
                if d.source == "fleurs_local" else D.read_fleurs_hub(configs, d.split))
    if d.group_sentences > 1:  # paragraphs of k consecutive sentences of one document
        from ..transforms import group_sentences, read_documents

        documents = read_documents(d.documents) if d.documents else None
        rows, grouped = group_sentences(rows, d.languages, d.group_sentences, d.group_silence,
                                        documents)
        if not grouped["paragraphs"]:
            raise D.DataError(f"data.group_sentences: {d.group_sentences}: no run of "
                              f"{d.group_sentences} consecutive sentences of one document is in "
                              "every language; lower it, or check the sentence ids and documents")
        log.info("data: %d paragraphs of %d sentences (%d sentences left over at documents' "
                 "ends or gaps)", grouped["paragraphs"], d.group_sentences,
                 grouped["sentences_dropped"])
    examples, report = D.parallel_examples(rows, d.languages, d.modalities, d.max_sentences)
    cs = d.code_switch
    if cs.pairs:
        from ..transforms import code_switched

        mixed, made = code_switched(examples, cs.pairs, cs.ratio, cs.boundary, d.modalities,
                                    audio=cs.audio, alignments=cs.alignments)
        examples += mixed
        report["code_switched"] = made
    if d.target_language:
        texts = {(ex["lang"], ex["sentence"]): ex["text"] for ex in examples}
        for ex in examples:
            ex["target_lang"] = d.target_language
            ex["target_text"] = texts.get((d.target_language, ex["sentence"]), ex["text"])
    return examples, report


def describe(d: DataSection, report: dict[str, Any]) -> str:
    """One line on what :func:`examples_for` read."""
    unit = "paragraphs" if d.group_sentences > 1 else "sentences"
    mixed = sum(report.get("code_switched", {}).values())
    return (f"data: {report['sentences']} {unit} x {len(d.languages)} languages x "
            f"{len(d.modalities)} modalities"
            + (f" + {mixed} code-switched examples" if "code_switched" in report else "")
            + f"; {report['dropped_not_in_every_language']} {unit} missing in some language "
            f"dropped everywhere; {report['empty_text']} empty texts"
            + (f"; {report['repeated_rows']} rows repeat a sentence and language read before "
               "(the first is kept)" if report.get("repeated_rows") else ""))


def fleurs_configs(langs: list[str]) -> dict[str, str]:
    from ..languages import fleurs_config

    return {lang: fleurs_config(lang) for lang in langs}


def stored_column(key: str, value: Any, root: Path) -> Any:
    """An example column as the store keeps it: audio paths relative to the data root (parts
    of a joined clip separated by ``|``), lists as text."""
    if key == "audio_path":
        paths = [value] if isinstance(value, str) else value
        return "|".join(os.path.relpath(p, root) for p in paths)
    return str(value) if isinstance(value, (list, tuple)) else value


def fingerprint(ex: Example, root: Path) -> str:
    """What an example's stored values depend on in the data, in 16 hex digits: its columns
    as stored (text, target, audio paths relative to ``root``, spans, ...) and each audio
    file's size and modification time (a copy that keeps them, ``cp -p`` or ``rsync -a``, is
    the same data). A rerun redoes the examples whose fingerprint changed."""
    columns = {k: stored_column(k, v, root) for k, v in ex.items()
               if k not in ("id", "audio", "length", "duration")}
    files: list[Any] = []
    paths = ex.get("audio_path") or []
    for path in [paths] if isinstance(paths, str) else paths:
        try:
            st = os.stat(path)
            files.append([st.st_size, st.st_mtime_ns])
        except OSError as e:  # missing now: it is skipped with its reason, and noticed if back
            files.append(e.errno)
    text = json.dumps([columns, files], sort_keys=True, ensure_ascii=False, default=str,
                      allow_nan=True)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def storable(ex: Example) -> None:
    """Refuse (DataError) an example whose text columns the store cannot keep: a NUL character
    (HDF5 strings end at one), or a lone surrogate (not encodable as UTF-8). It is skipped with
    the reason; no other example of its shard is lost."""
    for key, value in ex.items():
        if not isinstance(value, str):
            continue
        if "\0" in value:
            raise D.DataError(f"{key} holds a NUL character (\\0) at position "
                              f"{value.index(chr(0))}, which the store cannot keep; remove it "
                              "from the data")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise D.DataError(f"{key} is not valid Unicode ({e.reason} at position {e.start}); "
                              "fix the data's encoding") from None


def admit(ex: Example, wrapper: Wrapper, spec: ModelSpec) -> Example:
    """``ex`` ready to run (its audio loaded), or a DataError saying why it cannot run: a clip
    that is not a regular file, unreadable, non-finite, silent, too short or too long; a text
    (or decoder target) of more tokens than the model takes; a column the store cannot keep
    (a NUL character, text that is not valid Unicode). A clip shorter than its header says is
    used, with the note in its ``audio_note`` column."""
    storable(ex)
    most = int(limit(spec, "max_text_tokens"))
    ex = ex.copy()
    key: Literal["text", "target_text"]
    for key in ("text", "target_text"):
        text = ex.get(key)
        if text and (key == "text" or len(text) > most):  # a token has at least one character;
            try:                                           # the text's count is stored
                n = wrapper.text_tokens(text, D.input_language(ex) if key == "text"
                                        else ex["target_lang"])
            except NotImplementedError:  # a model without a tokenizer (speech only)
                if len(text) > most:  # a token has at least one character
                    raise
                continue
            if n > most:
                raise D.DataError(f"{key.replace('_', ' ')} of {n} tokens ({len(text)} "
                                  f"characters) is longer than the model takes ({most}, "
                                  "options.max_text_tokens)")
            if key == "text":
                ex["length"] = n  # tokens of the text (of a clip's transcript, for speech)
    if ex["modality"] == "speech":
        notes: list[str] = []
        ex["audio"] = D.load_example_audio(ex, limit(spec, "max_seconds"),
                                           limit(spec, "min_seconds"), notes)
        if notes:  # stored with the example (a column): a truncated file, read as far as it goes
            ex["audio_note"] = "; ".join(notes)
        ex["duration"] = ex["audio"].size / 16000
    return ex
