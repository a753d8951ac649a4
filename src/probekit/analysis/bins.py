"""Length bins: sentences grouped by length, with the same number of sentences in every bin, so
that an analysis repeated within each bin compares lengths without comparing sample sizes.

A sentence's length is the median over the run's languages of its speech duration (``seconds``),
its text's tokens in the model's tokenizer (``tokens``) or its text's characters
(``characters``): every language is compared on the same sentences in a bin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .basis import AnalysisError

UNITS = {"seconds": "s", "tokens": "tokens", "characters": "characters"}


@dataclass(frozen=True)
class LengthBin:
    """One bin: its edges, how many sentences fell in it, and the sentences kept."""
    index: int
    low: float
    high: float
    unit: str
    available: int
    sentences: tuple[str, ...]

    @property
    def label(self) -> str:
        fmt = (lambda x: f"{x:.1f}") if self.unit == "s" else (lambda x: f"{x:g}")
        return f"{fmt(self.low)}-{fmt(self.high)} {self.unit}"


def sentence_lengths(examples: Any, langs: Sequence[str], by: str) -> dict[str, float]:
    """``sentence -> length`` (the median over ``langs``) from a store's examples table."""
    ex = examples[examples["lang"].isin(list(langs))]
    if by == "seconds":
        ex, column = ex[ex["modality"] == "speech"], "duration"
    elif by == "tokens":
        column = "length"
        text = ex[ex["modality"] == "text"]
        ex = text if len(text) else ex  # a speech example's length is its transcript's tokens
    else:
        ex = ex.assign(characters=ex["text"].astype(str).str.len())
        column = "characters"
    values = ex[["sentence", "lang", column]].astype({column: float})
    if not len(values) or values[column].isna().all():
        raise AnalysisError(
            f"analysis.length_bins.by: {by}: the store holds no {column} for its examples (stores "
            "written before probekit recorded lengths). Extract again into a new folder, or with "
            "--overwrite, or bin by characters")
    per = values.drop_duplicates(["sentence", "lang"]).groupby("sentence")[column].median()
    return {str(s): float(v) for s, v in per.items() if np.isfinite(v)}


def make_bins(lengths: dict[str, float], by: str, sentences: Sequence[str],
              quantiles: int = 3, edges: Sequence[float] = (), n: int | None = None,
              seed: int = 0, fewest: int = 5) -> list[LengthBin]:
    """Bins of ``sentences`` (those paired in every view) by length: ``quantiles`` bins of equal
    count, or bins between explicit ``edges`` (sentences outside them are left out). Each bin
    keeps ``n`` sentences (default: as many as the smallest bin has), drawn without replacement
    with ``seed`` and kept in their order. Refuses a bin of fewer than ``fewest`` sentences."""
    have = [s for s in sentences if s in lengths]
    if not have:
        raise AnalysisError("analysis.length_bins: no paired sentence has a length")
    values = np.array([lengths[s] for s in have])
    if edges:
        cuts = np.asarray(edges, dtype=float)
    else:
        cuts = np.quantile(values, np.linspace(0, 1, quantiles + 1))
        if len(np.unique(cuts)) < len(cuts):
            raise AnalysisError(f"analysis.length_bins.quantiles: {quantiles} bins of "
                                f"{len(have)} sentences have equal edges ({by} repeat too much); "
                                "use fewer bins or explicit edges")
    members = []
    for i in range(len(cuts) - 1):
        last = i == len(cuts) - 2
        inside = (values >= cuts[i]) & ((values <= cuts[i + 1]) if last else
                                        (values < cuts[i + 1]))
        members.append([s for s, keep in zip(have, inside, strict=True) if keep])
    sizes = [len(m) for m in members]
    take = n if n is not None else min(sizes)
    if take < fewest or min(sizes) < take:
        raise AnalysisError(
            f"analysis.length_bins: the bins hold {', '.join(map(str, sizes))} sentences; each "
            f"needs {max(take, fewest)}" + (f" (length_bins.n: {n})" if n else "")
            + ". Use fewer bins, other edges, or more sentences")
    rng = np.random.default_rng(seed)
    out = []
    for i, m in enumerate(members):
        keep = set(rng.choice(len(m), take, replace=False).tolist())
        out.append(LengthBin(i, float(cuts[i]), float(cuts[i + 1]), UNITS[by], len(m),
                             tuple(s for j, s in enumerate(m) if j in keep)))
    return out
