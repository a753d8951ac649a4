"""Rows of a Hugging Face ``datasets`` dataset (``data.source: hf``), as a manifest has them:
``sentence``, ``lang``, ``text`` and ``audio`` (a file path).

The dataset is named by hub id (with an optional configuration: one per language, such as
FLEURS' ``en_us``, by the templates ``{lang}`` and ``{fleurs}``) or is a folder written by
``Dataset.save_to_disk``; or a ``datasets.Dataset`` is passed to :func:`read_dataset`. A column
map says which of its columns hold the sentence id, the language, the text and the audio. Audio
is read undecoded (datasets >= 4 decodes through TorchCodec; probekit reads clips with
soundfile) and written once, as the dataset holds it, under ``$PROBEKIT_CACHE/hf/<dataset's
fingerprint>/<lang>/``: the rest of the pipeline reads files, and a rerun finds them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .data import DataError, probekit_cache
from .errors import install_hint

COLUMNS = {"sentence": "id", "lang": "lang", "text": "text", "audio": "audio"}


def column_map(columns: Mapping[str, str] | None) -> dict[str, str]:
    """probekit's names -> the dataset's columns (the defaults for those not given)."""
    unknown = sorted(set(columns or {}) - set(COLUMNS))
    if unknown:
        raise DataError(f"data.hf.columns: {unknown[0]!r} is not one of "
                        f"{', '.join(COLUMNS)} (probekit's names, mapped to the dataset's)")
    return {**COLUMNS, **(columns or {})}


def audio_root(fingerprint: str) -> Path:
    """Where a dataset's clips are written: ``$PROBEKIT_CACHE/hf/<fingerprint>``."""
    return probekit_cache() / "hf" / re.sub(r"[^0-9A-Za-z_.-]", "_", fingerprint)[:80]


def read_dataset(dataset: Any, columns: Mapping[str, str] | None = None,
                 lang: str | None = None, root: str | Path | None = None
                 ) -> list[dict[str, Any]]:
    """Rows (``sentence``, ``lang``, ``text``, ``audio`` path, and the dataset's other plain
    columns) of a ``datasets.Dataset``. ``lang``: every row's language (a dataset of one
    language, e.g. one FLEURS configuration), else the mapped language column; ``root``: where
    its clips are written (default :func:`audio_root` of its fingerprint)."""
    names = column_map(columns)
    have = set(dataset.column_names)
    needed = [names["sentence"], names["text"]] + ([] if lang else [names["lang"]])
    missing = [c for c in needed if c not in have]
    if missing:
        raise DataError(f"the dataset has no column {missing[0]!r} (it has "
                        f"{', '.join(sorted(have))}); map probekit's names to its columns with "
                        "data.hf.columns, e.g. {sentence: id, text: transcription, lang: language}")
    audio = names["audio"] if names["audio"] in have else None
    if audio is not None:
        from datasets import Audio
        if isinstance(dataset.features[audio], Audio):
            dataset = dataset.cast_column(audio, Audio(decode=False))
    root = Path(root) if root else audio_root(str(getattr(dataset, "_fingerprint", "dataset")))
    plain = [c for c in dataset.column_names if c not in (audio, *names.values())]
    rows = []
    for i, item in enumerate(dataset):
        row_lang = lang or str(item[names["lang"]])
        row = {k: item[k] for k in plain if isinstance(item[k], (str, int, float, bool))}
        row.update(sentence=str(item[names["sentence"]]), lang=row_lang,
                   text=str(item[names["text"]] or ""))
        if audio is not None and item[audio] is not None:
            row["audio"] = str(_clip_file(item[audio], root / _safe(row_lang),
                                          f"{i}-{_safe(row['sentence'])}"))
        rows.append(row)
    return rows


def load_hf(path: str, languages: list[str], split: str, config: str | None,
            columns: Mapping[str, str] | None, revision: str | None = None
            ) -> list[dict[str, Any]]:
    """Rows of the dataset ``path`` (a hub id, or a folder written by ``save_to_disk``): one
    load per language when ``config`` names one (``{lang}``: the ISO 639-3 code, ``{fleurs}``:
    FLEURS' configuration), else one load whose language column holds the languages."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"data.source: hf needs the datasets package: {install_hint('hf')}"
                        ) from None
    per_language = bool(config) and ("{lang}" in str(config) or "{fleurs}" in str(config))
    loads = ([(lang, _config(str(config), lang)) for lang in languages] if per_language
             else [(None, config)])
    rows: list[dict[str, Any]] = []
    for lang, name in loads:
        where = f"{path}" + (f" ({name})" if name else "") + f", split {split}"
        try:
            if Path(path).is_dir():
                loaded = datasets.load_from_disk(path)
                if isinstance(loaded, datasets.DatasetDict):
                    if split not in loaded:
                        raise DataError(f"{path}: no split {split!r} (it has "
                                        f"{', '.join(loaded)}); set data.split")
                    loaded = loaded[split]
            else:
                loaded = datasets.load_dataset(path, name, split=split, revision=revision)
        except DataError:
            raise
        except Exception as e:  # offline, unknown dataset, configuration or split
            reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise DataError(f"cannot load the dataset {where}: {type(e).__name__}: {reason}. A "
                            "hub dataset is downloaded once into the Hugging Face cache: run "
                            "where huggingface.co is reachable, or save it with save_to_disk "
                            "and give that folder as data.path") from None
        rows += read_dataset(loaded, columns, lang)
    return rows


def _config(template: str, lang: str) -> str:
    from .languages import fleurs_config

    return template.replace("{lang}", lang).replace(
        "{fleurs}", fleurs_config(lang) if "{fleurs}" in template else "")


def _safe(name: str) -> str:
    """A file name from an untrusted value: letters, digits, ``_.-`` only, bounded."""
    return re.sub(r"[^0-9A-Za-z_.-]", "_", name)[:60].lstrip(".") or "_"


def _clip_file(audio: Mapping[str, Any], folder: Path, stem: str) -> Path:
    """An undecoded audio item (``bytes`` and/or ``path``) as a file under ``folder``, written
    once (atomically: a killed run leaves no half file)."""
    data, source = audio.get("bytes"), audio.get("path")
    if data is None:
        if source and Path(source).is_file():
            data = Path(source).read_bytes()
        else:
            raise DataError(f"audio of {stem}: neither bytes nor a readable file ({source!r})")
    suffix = Path(str(source or "")).suffix.lower()
    if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):
        suffix = ".wav"  # soundfile reads a clip by its content, not its name
    target = folder / f"{stem}{suffix}"
    if target.exists() and target.stat().st_size == len(data):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target
