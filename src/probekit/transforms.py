"""Inputs beyond single sentences, built from parallel data: paragraphs of consecutive sentences
of one document (``data.group_sentences``) and code-switched sentences (``data.code_switch``).

Both work on the rows and examples of :mod:`probekit.data` and keep them parallel: a paragraph
has the same sentences in every language, and a code-switched example ``eng>fra`` of sentence
``s`` is made from ``s`` in English and in French.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

from .data import DataError, Example, read_manifest

log = logging.getLogger("probekit.data")

# ISO 15924 scripts written without spaces between words: their units are characters.
NO_SPACES = frozenset({"Hans", "Hant", "Jpan", "Thai", "Laoo", "Khmr", "Mymr"})
CLAUSE_END = re.compile(r"[,;:\u060c\u3001\uff0c\uff1b\uff1a]$|[\u2013\u2014]$")


def _script(lang: str) -> str:
    from .languages import script

    return script(lang)


def units(text: str, lang: str) -> list[str]:
    """``text`` cut into the units a switch point counts: words, or characters for scripts
    written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Burmese)."""
    if _script(lang) in NO_SPACES:
        return [c for c in text if not c.isspace()]
    return text.split()


def joiner(lang: str) -> str:
    """What joins units or sentences of ``lang``: a space, or nothing (no-space scripts)."""
    return "" if _script(lang) in NO_SPACES else " "


def _order(sentence: str) -> tuple:
    return (0, int(sentence), "") if sentence.isdigit() else (1, 0, sentence)


# -- paragraphs -------------------------------------------------------------------------------
def group_sentences(rows: Sequence[dict[str, Any]], langs: Sequence[str], k: int,
                    silence: float = 0.3, documents: dict[str, str] | None = None
                    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows of ``k`` consecutive sentences of one document, in every language of ``langs``.

    A sentence's document is ``documents[sentence]``, else the rows' ``document`` column;
    without either, runs of consecutive integer ids are grouped (FLEURS keeps FLoRes' order, in
    which a document's sentences are consecutive; a run may then straddle two documents).
    Only sentences present in every language are used, in id order; a missing id ends a run and
    a document's last sentences that do not fill a paragraph are dropped. A paragraph's text
    joins its sentences with a space (nothing for no-space scripts); its audio is the clips in
    order with ``silence`` seconds between them."""
    if k < 2:
        return list(rows), {"paragraphs": 0, "sentences_grouped": 0, "sentences_dropped": 0}
    first: dict[str, dict[str, dict[str, Any]]] = {lang: {} for lang in langs}
    for row in rows:
        if row["lang"] in first and str(row.get("text", "")).strip():
            first[row["lang"]].setdefault(str(row["sentence"]), row)
    common = sorted(set.intersection(*(set(r) for r in first.values())) if first else set(),
                    key=_order)
    doc_of = {}
    for s in common:
        given = (documents or {}).get(s) or first[langs[0]][s].get("document") or ""
        doc_of[s] = str(given)
    runs: list[list[str]] = []
    for s in common:  # runs of consecutive sentences of one document
        prev = runs[-1][-1] if runs else None
        consecutive = prev is not None and doc_of[prev] == doc_of[s] and (
            not (prev.isdigit() and s.isdigit()) or int(s) == int(prev) + 1)
        if consecutive and len(runs[-1]) < k:
            runs[-1].append(s)
        else:
            runs.append([s])
    paragraphs = [run for run in runs if len(run) == k]
    out = []
    for run in paragraphs:
        for lang in langs:
            parts = [first[lang][s] for s in run]
            audio = [p.get("audio") for p in parts]
            out.append({"sentence": "+".join(run), "lang": lang,
                        "text": joiner(lang).join(str(p["text"]).strip() for p in parts),
                        "document": doc_of[run[0]], "sentences": k,
                        "source": parts[0].get("source", ""),
                        **({"audio": audio, "audio_gap": float(silence)} if all(audio) else {})})
    grouped = len(paragraphs) * k
    return out, {"paragraphs": len(paragraphs), "sentences_grouped": grouped,
                 "sentences_dropped": len(common) - grouped}


def _read_tsv(path: str | Path, what: str) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f, delimiter="\t"))
    except OSError as e:
        raise DataError(f"cannot read {what} {path}: {e.strerror or e}") from None


def read_documents(path: str | Path) -> dict[str, str]:
    """A TSV with columns ``sentence`` and ``document`` (e.g. from FLoRes' metadata: its URL)."""
    rows = _read_tsv(path, "documents file")
    if rows and not {"sentence", "document"} <= set(rows[0]):
        raise DataError(f"{path}: a documents file has the columns sentence and document "
                        f"(tab-separated); it has {', '.join(rows[0])}")
    return {str(r["sentence"]): str(r["document"]) for r in rows}


# -- code switching ---------------------------------------------------------------------------
def switch_point(text_a: str, lang_a: str, text_b: str, lang_b: str, ratio: float = 0.5,
                 boundary: str = "word") -> tuple[int, int, str]:
    """Where a sentence switches from ``lang_a`` to ``lang_b``: the number of units of ``text_a``
    kept, the index of the unit of ``text_b`` it goes on from, and the boundary used.

    ``word``: ``round(ratio * n)`` units of each side (at least one unit of each language).
    ``clause``: when both sides have the same number of clauses (a clause ends at , ; : or a
    dash), the clause boundary whose position in ``text_a`` is closest to ``ratio``, at the same
    clause in ``text_b``; otherwise (no boundary, or clauses that do not match) ``word``."""
    ua, ub = units(text_a, lang_a), units(text_b, lang_b)
    if len(ua) < 2 or len(ub) < 2:
        raise DataError(f"cannot switch languages inside a sentence of one unit "
                        f"({lang_a}: {text_a!r}, {lang_b}: {text_b!r})")
    if boundary == "clause":
        ends_a = [i + 1 for i, w in enumerate(ua[:-1]) if CLAUSE_END.search(w)]
        ends_b = [i + 1 for i, w in enumerate(ub[:-1]) if CLAUSE_END.search(w)]
        if ends_a and len(ends_a) == len(ends_b):
            j = min(range(len(ends_a)), key=lambda i: abs(ends_a[i] / len(ua) - ratio))
            return ends_a[j], ends_b[j], "clause"
    ka = min(max(round(ratio * len(ua)), 1), len(ua) - 1)
    kb = min(max(round(ratio * len(ub)), 1), len(ub) - 1)
    return ka, kb, "word"


def switch_text(text_a: str, lang_a: str, text_b: str, lang_b: str, ka: int, kb: int) -> str:
    """The first ``ka`` units of ``text_a``, then ``text_b`` from its unit ``kb`` on."""
    head = joiner(lang_a).join(units(text_a, lang_a)[:ka])
    tail = joiner(lang_b).join(units(text_b, lang_b)[kb:])
    return f"{head}{' ' if joiner(lang_a) or joiner(lang_b) else ''}{tail}"


def pair_name(a: str, b: str) -> str:
    """The ``lang`` of code-switched examples that start in ``a`` and go on in ``b``."""
    return f"{a}>{b}"


def read_alignments(path: str | Path) -> dict[tuple[str, str], list[float]]:
    """Word end times by ``(lang, sentence)``: a TSV with ``sentence``, ``lang`` and
    ``word_ends`` (seconds, space separated, one per unit of the text as :func:`units` cuts
    it)."""
    rows = _read_tsv(path, "alignments")
    out = {}
    for i, r in enumerate(rows, 2):
        try:
            ends = [float(x) for x in str(r["word_ends"]).split()]
            key = (str(r["lang"]), str(r["sentence"]))
        except (KeyError, ValueError, TypeError):
            raise DataError(f"{path}:{i}: an alignment row has sentence, lang and word_ends "
                            "(end times in seconds, space separated)") from None
        if any(b <= a for a, b in pairwise(ends)):
            raise DataError(f"{path}:{i}: word_ends must increase")
        out[key] = ends
    return out


def code_switched(examples: Sequence[Example], pairs: Sequence[Sequence[str]],
                  ratio: float = 0.5, boundary: str = "word", modalities: Sequence[str] = ("text",),
                  audio: str | Path | None = None, alignments: str | Path | None = None
                  ) -> tuple[list[Example], dict[str, Any]]:
    """Code-switched examples of every sentence of ``examples`` for each pair ``(a, b)``: the
    sentence starts in ``a`` and goes on in ``b`` at the switch point (:func:`switch_point`).
    Their ``lang`` is ``a>b`` and ``input_lang`` is ``a`` (the language a model is told).

    Speech comes from ``audio``, a manifest of recorded code-switched speech (rows with ``lang``
    ``a>b``; their ``text`` is the text of both modalities), or from ``alignments``
    (:func:`read_alignments`): the clip of ``a`` up to the end of its last kept word, then the
    clip of ``b`` from the start of its word ``kb``. Without either there is no code-switched
    speech. Each example records ``switch_from``, ``switch_to``, ``switch_ratio``,
    ``switch_unit_a``, ``switch_unit_b`` and ``switch_boundary``."""
    text = {(ex["lang"], ex["sentence"]): ex["text"] for ex in examples}
    clips = {(ex["lang"], ex["sentence"]): ex["audio_path"] for ex in examples
             if ex["modality"] == "speech"}
    sentences = list(dict.fromkeys(ex["sentence"] for ex in examples))
    recorded: dict[tuple[str, str], dict[str, Any]] = {}
    if audio:
        for line in read_manifest(audio):
            recorded[(str(line["lang"]), str(line["sentence"]))] = line
    ends = read_alignments(alignments) if alignments else {}
    out: list[Example] = []
    made = {"text": 0, "speech": 0}
    for a, b in pairs:
        name = pair_name(a, b)
        for s in sentences:
            if (a, s) not in text or (b, s) not in text:
                continue
            row = recorded.get((name, s))
            ka, kb, used = switch_point(text[(a, s)], a, text[(b, s)], b, ratio, boundary)
            cs_text = switch_text(text[(a, s)], a, text[(b, s)], b, ka, kb)
            info: dict[str, Any] = {
                "switch_from": a, "switch_to": b, "switch_ratio": float(ratio),
                "switch_unit_a": ka, "switch_unit_b": kb, "switch_boundary": used}
            if row is not None:  # a recording: its own text and switch point where given
                cs_text = str(row["text"])
                info.update({k: type(v)(row[k]) for k, v in info.items()
                             if row.get(k) not in (None, "")})
            base = {"sentence": s, "lang": name, "input_lang": a, "text": cs_text,
                    "source": "code-switched", **info}
            if "text" in modalities:
                out.append(cast(Example, {"id": f"{name}/text/{s}", "modality": "text", **base}))
                made["text"] += 1
            if "speech" not in modalities:
                continue
            speech = None
            if row is not None and row.get("audio"):
                speech = {"audio_path": row["audio"]}
            elif (a, s) in ends and (b, s) in ends and (a, s) in clips and (b, s) in clips:
                ea, eb = ends[(a, s)], ends[(b, s)]
                if len(ea) != len(units(text[(a, s)], a)) or len(eb) != len(units(text[(b, s)],
                                                                                  b)):
                    raise DataError(f"{alignments}: sentence {s}: {len(ea)} and {len(eb)} word "
                                    f"times for {a} and {b}, but their texts have "
                                    f"{len(units(text[(a, s)], a))} and "
                                    f"{len(units(text[(b, s)], b))} words")
                speech = {"audio_path": [clips[(a, s)], clips[(b, s)]],
                          "audio_spans": [[0.0, ea[ka - 1]], [eb[kb - 1], None]],
                          "audio_gap": 0.0}
            if speech:
                out.append(cast(Example, {"id": f"{name}/speech/{s}", "modality": "speech", **base,
                                          **speech}))
                made["speech"] += 1
    if "speech" in modalities and not made["speech"] and pairs:
        log.warning("code switching: no code-switched speech (give data.code_switch.audio, a "
                    "manifest of recordings, or data.code_switch.alignments, word times)")
    return out, {"pairs": len(pairs), **made}
