"""Examples for a run: parallel sentences as text and speech, from a manifest or FLEURS.

An example is a dict: ``id``, ``sentence`` (the parallel item, shared across languages and
modalities), ``lang``, ``modality`` (``text`` or ``speech``), ``text`` and, for speech,
``audio_path`` (read lazily by :func:`load_audio`).

Sources:
- ``manifest``: a TSV or JSONL file with columns ``sentence, lang, text`` and optional ``audio``
  (a path relative to the manifest).
- ``fleurs_local``: FLEURS' own layout, ``ROOT/<config>/<split>.tsv`` and ``ROOT/<config>/audio/
  <split>/<file>.wav``.
- ``fleurs``: Hugging Face ``google/fleurs``, one config per language (needs a download once).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .errors import ProbekitError

log = logging.getLogger("probekit.data")
SAMPLE_RATE = 16000


class DataError(ProbekitError):
    """Data that cannot be read as asked (missing file, bad column, unreadable audio)."""


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a TSV or JSONL manifest, with ``audio`` made absolute."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"manifest {path} does not exist")
    if path.suffix == ".jsonl":
        rows = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{i}: not a JSON object ({e.msg})") from None
    else:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    for i, row in enumerate(rows, 1):
        missing = [c for c in ("sentence", "lang", "text") if c not in row]
        if missing:
            raise DataError(f"{path}: row {i} lacks column(s) {', '.join(missing)}; a manifest "
                            "has sentence, lang, text and optionally audio")
        if row.get("audio"):
            row["audio"] = str((path.parent / row["audio"]).resolve())
    return rows


def read_fleurs_local(root: str | Path, configs: dict[str, str], split: str) -> list[dict[str, Any]]:
    """FLEURS' layout: ``<config>/<split>.tsv`` (id, file, raw transcription, transcription, ...)."""
    rows = []
    for lang, config in configs.items():
        tsv = Path(root) / config / f"{split}.tsv"
        if not tsv.exists():
            raise DataError(f"FLEURS folder {root}: no {config}/{split}.tsv for {lang}")
        with open(tsv, newline="", encoding="utf-8") as f:
            for fields in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(fields) < 4:
                    continue
                rows.append({"sentence": fields[0], "lang": lang, "text": fields[2],
                             "transcription": fields[3],
                             "audio": str(Path(root) / config / "audio" / split / fields[1])})
    return rows


def read_fleurs_hub(configs: dict[str, str], split: str) -> list[dict[str, Any]]:
    """``google/fleurs`` through Hugging Face datasets (cached after the first download)."""
    try:
        import datasets
    except ImportError:
        raise DataError("the 'fleurs' source needs Hugging Face datasets: "
                        "pip install 'probekit[data]'") from None
    rows = []
    for lang, config in configs.items():
        try:
            ds = datasets.load_dataset("google/fleurs", config, split=split)
        except Exception as e:  # offline, unknown config, ...
            raise DataError(f"cannot load google/fleurs config {config!r} ({lang}): "
                            f"{type(e).__name__}: {str(e)[:200]}. Download it where you have "
                            "network (it is cached in HF_HOME), or use source: fleurs_local "
                            "with a copy in FLEURS' own layout") from None
        for item in ds:
            rows.append({"sentence": str(item["id"]), "lang": lang, "text": item["raw_transcription"],
                         "transcription": item["transcription"], "audio": item["path"]})
    return rows


def parallel_examples(rows: Iterable[dict[str, Any]], langs: list[str], modalities: list[str],
                      max_sentences: int | None = None) -> tuple[list[dict[str, Any]], dict]:
    """Examples for every (sentence, language, modality) of the sentences present in every
    language (one row per sentence and language: the first), and a report of what was dropped."""
    by_lang: dict[str, dict[str, dict[str, Any]]] = {lang: {} for lang in langs}
    empty = 0
    for row in rows:
        if row["lang"] not in by_lang:
            continue
        if not str(row.get("text", "")).strip():
            empty += 1
            continue
        if "speech" in modalities and not row.get("audio"):
            continue
        by_lang[row["lang"]].setdefault(str(row["sentence"]), row)
    missing = [lang for lang, rows_ in by_lang.items() if not rows_]
    if missing:
        raise DataError(f"no usable sentence in language(s) {', '.join(missing)}")
    full = sorted(set.intersection(*(set(r) for r in by_lang.values())), key=lambda s: (len(s), s))
    union = set.union(*(set(r) for r in by_lang.values()))
    common = full[:max_sentences] if max_sentences else full
    examples = []
    for lang in langs:
        for s in common:
            row = by_lang[lang][s]
            for modality in modalities:
                ex = {"id": f"{lang}/{modality}/{s}", "sentence": s, "lang": lang,
                      "modality": modality, "text": row["text"], "source": row.get("source", "")}
                if modality == "speech":
                    ex["audio_path"] = row["audio"]
                examples.append(ex)
    report = {"sentences": len(common), "dropped_not_in_every_language": len(union) - len(full),
              "empty_text": empty}
    return examples, report


def load_audio(path: str, max_seconds: float = 30.0) -> np.ndarray:
    """Mono float32 at 16 kHz; rejects unreadable, empty, silent or too long clips."""
    import soundfile

    try:
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as e:
        raise DataError(f"cannot read audio {path}: {e}") from None
    wave = wave.mean(axis=1)
    if wave.size == 0:
        raise DataError(f"audio {path} is empty")
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(int(rate), SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    if float(np.abs(wave).max()) < 1e-4:
        raise DataError(f"audio {path} is silent")
    if wave.size > max_seconds * SAMPLE_RATE:
        raise DataError(f"audio {path} lasts {wave.size / SAMPLE_RATE:.1f} s, longer than the "
                        f"model accepts ({max_seconds:.0f} s)")
    return wave
