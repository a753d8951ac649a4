"""Examples for a run: parallel sentences as text and speech, from a manifest or FLEURS.

An example is a dict: ``id``, ``sentence`` (the parallel item, shared across languages and
modalities), ``lang``, ``modality`` (``text`` or ``speech``), ``text`` and, for speech,
``audio_path`` (read lazily by :func:`load_audio`).

Sources:
- ``manifest``: a TSV or JSONL file with columns ``sentence, lang, text`` and optional ``audio``
  (a path relative to the manifest).
- ``fleurs_local``: FLEURS' own layout, ``ROOT/<config>/<split>.tsv`` and ``ROOT/<config>/audio/
  <split>/<file>.wav``.
- ``fleurs``: Hugging Face ``google/fleurs``, one config per language (downloaded once into the
  Hugging Face cache, then read like ``fleurs_local``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict, cast

import numpy as np

from .errors import ProbekitError

log = logging.getLogger("probekit.data")
SAMPLE_RATE = 16000


class DataError(ProbekitError):
    """Data that cannot be read as asked (missing file, bad column, unreadable audio)."""


class Example(TypedDict, total=False):
    """One example: a plain dict with these keys where they apply (a row's other plain columns,
    e.g. FLEURS' ``transcription`` and ``gender`` or a paragraph's ``document``, ride along)."""
    id: str                       # lang/modality/sentence
    sentence: str                 # the parallel item, shared across languages and modalities
    lang: str                     # ISO 639-3, or ``a>b`` for a code-switched example
    modality: str                 # text | speech
    text: str
    source: str
    audio_path: str | list[str]   # a list: parts joined (paragraphs, code-switched speech)
    audio_spans: list[list[Any]]  # each part's [start, end] in seconds (end None: the clip's)
    audio_gap: float              # seconds of silence between parts
    input_lang: str               # the language a model is told (code-switched: the first)
    target_lang: str              # the decoder's target language under teacher forcing
    target_text: str
    switch_from: str              # code-switched: the pair, the ratio, the units kept of each
    switch_to: str
    switch_ratio: float
    switch_unit_a: int
    switch_unit_b: int
    switch_boundary: str          # word | clause
    length: int                   # set when admitted: tokens of the text
    duration: float               # set when admitted: seconds of audio
    audio: np.ndarray             # set when admitted: the clip, mono float32 at 16 kHz
    audio_note: str               # set when admitted: what was odd but usable (a truncated file)


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a TSV or JSONL manifest, with ``audio`` made absolute."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"manifest {path} does not exist")
    try:  # utf-8-sig: a byte-order mark (as some editors write) is not part of the first column
        if path.suffix == ".jsonl":
            rows = []
            for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise DataError(f"{path}:{i}: not a JSON object ({e.msg})") from None
        else:
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f, delimiter="\t"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save the "
                        "manifest as UTF-8") from None
    for i, row in enumerate(rows, 1):
        missing = [c for c in ("sentence", "lang", "text") if c not in row]
        if missing:
            raise DataError(f"{path}: row {i} lacks column(s) {', '.join(missing)}; a manifest "
                            "has sentence, lang, text and optionally audio")
        if row.get("audio"):  # absolute, symlinks left alone (a broken one is caught per clip)
            row["audio"] = os.path.normpath(os.path.abspath(path.parent / row["audio"]))
    return rows


def read_fleurs_local(root: str | Path, configs: dict[str, str],
                      split: str) -> list[dict[str, Any]]:
    """FLEURS' layout: ``<config>/<split>.tsv`` (id, file, raw transcription, transcription,
    characters, samples, gender; no header) and ``<config>/audio/<split>/<file>``. ``root`` may
    also be a clone of the ``google/fleurs`` repository (``data/<config>/...``, audio still in
    ``audio/<split>.tar.gz``: it is unpacked once under :func:`fleurs_cache_root`)."""
    root = Path(root)
    if not (root / next(iter(configs.values()), "")).is_dir() and (root / "data").is_dir():
        root = root / "data"
    rows = []
    for lang, config in configs.items():
        tsv = root / config / f"{split}.tsv"
        if not tsv.exists():
            raise DataError(f"FLEURS folder {root}: no {config}/{split}.tsv for {lang}; the layout "
                            f"is <config>/<split>.tsv with audio in <config>/audio/{split}/")
        folder = root / config
        archive = folder / "audio" / f"{split}.tar.gz"
        if not (folder / "audio" / split).is_dir() and archive.exists():
            unpack_fleurs(tsv, archive, fleurs_cache_root(), config, split)
            folder = fleurs_cache_root() / config
        with open(tsv, newline="", encoding="utf-8") as f:
            for i, fields in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if not fields or not "".join(fields).strip():
                    continue
                if len(fields) < 4:
                    raise DataError(f"{tsv}:{i}: {len(fields)} columns; FLEURS rows have id, "
                                    "file, raw transcription, transcription, ...")
                rows.append({"sentence": fields[0], "lang": lang, "text": fields[2],
                             "transcription": fields[3], "source": f"fleurs/{config}/{split}",
                             "gender": fields[6] if len(fields) > 6 else "",
                             "audio": str(folder / "audio" / split / fields[1])})
    return rows


FLEURS_REPO = "google/fleurs"


def fleurs_files(config: str, split: str) -> list[str]:
    """The files of one FLEURS configuration and split in the ``google/fleurs`` dataset repo."""
    return [f"data/{config}/{split}.tsv", f"data/{config}/audio/{split}.tar.gz"]


def fleurs_missing(configs: dict[str, str], split: str) -> list[str]:
    """Files of ``google/fleurs`` not yet in the local Hugging Face cache (no network used)."""
    from huggingface_hub import try_to_load_from_cache

    return [f for config in configs.values() for f in fleurs_files(config, split)
            if not isinstance(try_to_load_from_cache(FLEURS_REPO, f, repo_type="dataset"), str)]


def unpack_fleurs(tsv: str | Path, archive: str | Path, root: str | Path, config: str,
                  split: str) -> None:
    """Lay out one downloaded configuration as ``root/<config>/<split>.tsv`` plus
    ``root/<config>/audio/<split>/*.wav`` (what :func:`read_fleurs_local` reads). The audio is
    extracted to a temporary folder and renamed into place, so an interrupted unpack is redone."""
    import shutil
    import tarfile
    import tempfile

    folder = Path(root) / config
    audio = folder / "audio" / split
    if not audio.is_dir():
        audio.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{split}-", dir=audio.parent))
        try:
            with tarfile.open(archive) as tar:
                for member in tar:
                    wav = member.isfile() and member.name.endswith(".wav")
                    source = tar.extractfile(member) if wav else None
                    if source is not None:
                        with open(tmp / Path(member.name).name, "wb") as f:
                            shutil.copyfileobj(source, f)
            tmp.rename(audio)
        except (OSError, tarfile.TarError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"cannot unpack FLEURS audio {archive} into {audio}: {e}") from None
    shutil.copyfile(tsv, folder / f"{split}.tsv")


def probekit_cache() -> Path:
    """probekit's cache: ``$PROBEKIT_CACHE`` (default ``~/.cache/probekit``)."""
    return Path(os.environ.get("PROBEKIT_CACHE", Path.home() / ".cache" / "probekit"))


def fleurs_cache_root() -> Path:
    """Where downloaded FLEURS configurations are unpacked: ``$PROBEKIT_CACHE/fleurs`` (default
    ``~/.cache/probekit/fleurs``)."""
    return probekit_cache() / "fleurs"


def read_fleurs_hub(configs: dict[str, str], split: str,
                    root: str | Path | None = None) -> list[dict[str, Any]]:
    """``google/fleurs`` from the Hugging Face hub: each configuration's TSV and audio archive
    are downloaded once into the Hugging Face cache (``HF_HOME``), unpacked under ``root`` and read
    like a local copy. (``datasets`` >= 4 no longer runs FLEURS' loading script, so probekit reads
    the repository's files, which are what that script reads.)"""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError("the 'fleurs' source needs huggingface_hub: pip install huggingface_hub"
                        ) from None
    root = Path(root) if root else fleurs_cache_root()
    for lang, config in configs.items():
        paths = []
        for name in fleurs_files(config, split):
            try:
                paths.append(hf_hub_download(FLEURS_REPO, name, repo_type="dataset"))
            except Exception as e:  # offline, unknown configuration or split, ...
                reason = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}" if str(e) \
                    else type(e).__name__
                raise DataError(
                    f"cannot get {FLEURS_REPO} file {name} ({lang}, split {split}): {reason}. "
                    "FLEURS is downloaded once into the Hugging Face cache (HF_HOME): run where "
                    "huggingface.co is reachable, or use data.source: fleurs_local with a copy "
                    "in FLEURS' layout (<config>/<split>.tsv, <config>/audio/<split>/*.wav)"
                ) from None
        unpack_fleurs(paths[0], paths[1], root, config, split)
    return read_fleurs_local(root, configs, split)


def parallel_examples(rows: Iterable[dict[str, Any]], langs: list[str], modalities: list[str],
                      max_sentences: int | None = None) -> tuple[list[Example], dict]:
    """Examples for every (sentence, language, modality) of the sentences present in every
    language (one row per sentence and language: the first), and a report of what was dropped."""
    by_lang: dict[str, dict[str, dict[str, Any]]] = {lang: {} for lang in langs}
    empty = repeated = 0
    present = set()
    for row in rows:
        present.add(row["lang"])
        if row["lang"] not in by_lang:
            continue
        if not str(row.get("text", "")).strip():
            empty += 1
            continue
        if "speech" in modalities and not row.get("audio"):
            continue
        repeated += str(row["sentence"]) in by_lang[row["lang"]]
        by_lang[row["lang"]].setdefault(str(row["sentence"]), row)
    missing = [lang for lang, rows_ in by_lang.items() if not rows_]
    if missing:
        raise DataError(f"no usable sentence in language(s) {', '.join(missing)} (data.languages); "
                        f"the data has {', '.join(sorted(present)) or 'no rows'}")
    full = sorted(set.intersection(*(set(r) for r in by_lang.values())), key=lambda s: (len(s), s))
    union = set.union(*(set(r) for r in by_lang.values()))
    common = full[:max_sentences] if max_sentences else full
    examples: list[Example] = []
    for lang in langs:
        for s in common:
            row = by_lang[lang][s]
            for modality in modalities:
                ex: dict[str, Any] = {"id": f"{lang}/{modality}/{s}", "sentence": s, "lang": lang,
                      "modality": modality, "text": row["text"], "source": row.get("source", "")}
                ex.update({k: v for k, v in row.items()  # e.g. FLEURS' transcription, gender
                           if k not in ex and k not in ("audio", "sentence", "lang", "audio_gap")
                           and isinstance(v, (str, int, float, bool))})
                if modality == "speech":
                    ex["audio_path"] = row["audio"]  # a list: parts joined (group_sentences)
                    if "audio_gap" in row:
                        ex["audio_gap"] = row["audio_gap"]
                examples.append(cast(Example, ex))
    report = {"sentences": len(common), "dropped_not_in_every_language": len(union) - len(full),
              "empty_text": empty, "repeated_rows": repeated}
    return examples, report


def input_language(ex: Mapping[str, Any]) -> str:
    """The language a model is told an example is in: its own, or for a code-switched example
    (``lang`` = ``eng>fra``) the language it starts in (``input_lang``)."""
    return ex.get("input_lang") or ex["lang"]


def load_example_audio(ex: Example, max_seconds: float = 30.0, min_seconds: float = 0.1,
                       notes: list[str] | None = None) -> np.ndarray:
    """An example's clip (:func:`load_audio`), or the concatenation of its parts when
    ``audio_path`` is a list: each part cut to its ``audio_spans`` entry (``[start, end]`` in
    seconds, ``None`` for the clip's end) and ``audio_gap`` seconds of silence between parts.
    What is odd but usable (a file shorter than its header says) is added to ``notes``."""
    paths = ex["audio_path"]
    if isinstance(paths, str):
        return load_audio(paths, max_seconds, min_seconds, notes)
    spans = ex.get("audio_spans") or [[0.0, None]] * len(paths)
    gap = np.zeros(int(round(float(ex.get("audio_gap", 0.0)) * SAMPLE_RATE)), np.float32)
    parts = []
    for i, (path, (start, end)) in enumerate(zip(paths, spans, strict=False)):
        wave = _read_clip(path, None, notes)
        a = int(round(start * SAMPLE_RATE))
        b = wave.size if end is None else int(round(end * SAMPLE_RATE))
        if not 0 <= a < b <= wave.size + SAMPLE_RATE // 100:  # 10 ms of rounding allowed
            raise DataError(f"audio {path}: segment {start:g}-{end if end is not None else 'end'}"
                            f" s is outside the clip ({wave.size / SAMPLE_RATE:.2f} s); check the "
                            "word times given in data.code_switch.alignments")
        parts += ([gap] if i and gap.size else []) + [wave[a:b]]
    return _check_length(np.concatenate(parts), " + ".join(map(str, paths)), max_seconds,
                         min_seconds)


def load_audio(path: str, max_seconds: float = 30.0, min_seconds: float = 0.1,
               notes: list[str] | None = None) -> np.ndarray:
    """Mono float32 at 16 kHz. Refuses (:class:`DataError`, with the reason) what is not a regular
    file (a FIFO would block), unreadable, empty, non-finite, silent, shorter than
    ``min_seconds`` or longer than ``max_seconds`` clips (by its header, before decoding it,
    where the header says so). A file that ends before its header says is read as far as it
    goes, and said (a warning, and a line in ``notes``)."""
    return _check_length(_read_clip(path, max_seconds, notes), path, max_seconds, min_seconds)


def _read_clip(path: str, max_seconds: float | None = None,
               notes: list[str] | None = None) -> np.ndarray:
    import soundfile

    try:
        mode = os.stat(path).st_mode  # follows symlinks: a loop or a dangling link fails here
    except OSError as e:
        raise DataError(f"cannot read audio {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise DataError(f"audio {path} is not a regular file (a FIFO, device or folder)")
    try:
        info = soundfile.info(path)
        if max_seconds is not None and info.samplerate > 0 \
                and info.frames > max_seconds * info.samplerate:  # not decoded: it may be hours
            raise DataError(f"audio {path} lasts {info.frames / info.samplerate:.1f} s by its "
                            f"header, longer than the model accepts ({max_seconds:g} s, "
                            "options.max_seconds)")
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"cannot read audio {path}: {e}") from None
    short = re.search(r"\ndata : (\d+) \(should be (\d+)\)", info.extra_info)
    if short and int(short.group(2)) < int(short.group(1)):  # WAV family: the data chunk's size
        note = (f"audio {path} ends before its header says ({int(short.group(2)):,} of "
                f"{int(short.group(1)):,} bytes of samples): the {len(wave) / rate:.2f} s there "
                "are used; the file may be truncated")
        log.warning(note)
        if notes is not None:
            notes.append(note)
    if wave.size == 0:
        raise DataError(f"audio {path} is empty")
    if not np.isfinite(wave).all():
        raise DataError(f"audio {path} holds NaN or infinite samples")
    wave = wave.mean(axis=1)
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(int(rate), SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    if float(np.abs(wave).max()) < 1e-4:
        raise DataError(f"audio {path} is silent")
    return wave


def _check_length(wave: np.ndarray, path: str, max_seconds: float,
                  min_seconds: float) -> np.ndarray:
    if wave.size < min_seconds * SAMPLE_RATE:
        raise DataError(f"audio {path} lasts {wave.size / SAMPLE_RATE:.3f} s, shorter than the "
                        f"model's minimum ({min_seconds:g} s, options.min_seconds)")
    if wave.size > max_seconds * SAMPLE_RATE:
        raise DataError(f"audio {path} lasts {wave.size / SAMPLE_RATE:.1f} s, longer than the "
                        f"model accepts ({max_seconds:g} s, options.max_seconds)")
    return wave
