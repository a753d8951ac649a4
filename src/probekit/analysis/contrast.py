"""Paired contrasts: a difference of two similarities, a gap, a difference-in-differences or a
trend over depth, with an interval and a p-value that respect what the scores share.

Two ways to take the uncertainty, for two questions:

- :func:`paired_contrast` (over sentences, one set of views): every score of the contrast is
  recomputed on the *same* ``m`` sentences in each draw (the whole measure redone), so what the
  scores share cancels; the effect is the full-sample combination ``sum_j w_j s_j``, its standard
  error the draws' spread times ``sqrt(m / (n - m))`` and the p-value two-sided from the normal
  with that standard error. It speaks for these views at this n and k.
- :func:`jackknife` (over languages): a statistic of many languages' rows (a mean of
  per-language contrasts, a mean over language pairs) recomputed with each language left out
  (with every pair it is in); interval and p-value from Student's t with L - 1 degrees of
  freedom. It generalises over languages, at these sentences, n and k.

:func:`holm` (family-wise) and :func:`benjamini_hochberg` (false discovery rate) adjust a
family's p-values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from .basis import MIN_EXAMPLES, AnalysisError
from .stats import subsample_fraction

log = logging.getLogger("probekit.analysis")

SENTENCE_DRAWS = "paired subsampling"
LANGUAGE_JACKKNIFE = "delete-one-language jackknife"


@dataclass
class Contrast:
    """A contrast's effect, its ``level`` interval, standard error and two-sided p-value, how
    they were taken (``method``) and over how many units (sentences or languages)."""
    effect: float
    ci_low: float
    ci_high: float
    sd: float
    p_value: float
    level: float
    method: str
    units: int
    draws: np.ndarray | None = None


def describe(c: Contrast) -> str:
    """How a contrast's interval was taken, and over what: "paired subsampling over 350
    sentences", "delete-one-language jackknife over 30 languages"."""
    return f"{c.method} over {c.units} " + ("sentences" if c.method == SENTENCE_DRAWS
                                             else "languages")


def _nan(level: float, method: str, units: int, effect: float = np.nan) -> Contrast:
    return Contrast(effect, np.nan, np.nan, np.nan, np.nan, level, method, units)


def depth_weights(depths: Sequence[float]) -> np.ndarray:
    """Weights ``w`` with ``sum(w) = 0`` such that ``sum(w_d s_d)`` is the least-squares slope of
    the scores over ``depths`` (per unit of depth: use relative depths for a first-to-last
    change)."""
    d = np.asarray(depths, float)
    c = d - d.mean()
    ss = float((c ** 2).sum())
    if ss == 0:
        raise ValueError("a trend needs at least two different depths")
    return c / ss


def paired_contrast(comparer: Any, measure: str, terms: Sequence[tuple[Hashable, Hashable, float]],
                    n_draws: int = 200, ci: float = 0.95, seed: int = 0) -> Contrast:
    """``sum_j w_j measure(a_j, b_j)`` over views of ``comparer`` (a
    :class:`~probekit.analysis.Comparer`, whose z-scoring and k it uses), with the paired
    subsampling interval (see the module docstring). ``terms``: ``(a, b, weight)``."""
    if not terms:
        return _nan(ci, SENTENCE_DRAWS, 0)
    n = comparer.examples(terms[0][0])  # no view is loaded again whose draws are kept
    if any(comparer.examples(v) != n for a, b, _ in terms for v in (a, b)):
        raise ValueError("every view of a paired contrast must have the same sentences")
    everything = [np.arange(n)]
    effect = float(sum(w * comparer.on_subsets(measure, a, b, everything, (n,))[0]
                       for a, b, w in terms))
    k = comparer.k if comparer.choices[measure][0].uses_bases else None
    m = int(round(subsample_fraction(k, k, n) * n))
    if n_draws < 2 or not 1 < m < n:
        return _nan(ci, SENTENCE_DRAWS, n, effect)
    if m < MIN_EXAMPLES:
        log.warning("paired contrast of %d sentences: no interval (a draw of %d sentences is "
                    "too few for a similarity; at least %d are needed)", n, m, MIN_EXAMPLES)
        return _nan(ci, SENTENCE_DRAWS, n, effect)
    rng = np.random.default_rng(seed)
    subsets = [np.sort(rng.choice(n, m, replace=False)) for _ in range(n_draws)]
    try:  # a pair's draws are kept by the comparer: every contrast with these draws reuses them
        draws = sum(w * comparer.on_subsets(measure, a, b, subsets, (seed, n, m, n_draws))
                    for a, b, w in terms)
    except AnalysisError as e:  # e.g. a draw of too few sentences for the measure
        log.warning("paired contrast of %d sentences: no interval (%s)", n, e)
        return _nan(ci, SENTENCE_DRAWS, n, effect)
    sd = float(draws.std(ddof=1)) * (m / (n - m)) ** 0.5
    z = NormalDist().inv_cdf(0.5 + ci / 2)
    p = 2 * NormalDist().cdf(-abs(effect) / sd) if sd > 0 else float(effect == 0)
    return Contrast(effect, effect - z * sd, effect + z * sd, sd, p, ci, SENTENCE_DRAWS, n, draws)


def jackknife(units: Sequence[str], statistic: Callable[[set[str]], float],
              ci: float = 0.95, method: str = LANGUAGE_JACKKNIFE) -> Contrast:
    """``statistic(units)`` with a delete-one-unit jackknife interval: ``statistic(set)`` is
    recomputed on every set with one unit left out; standard error
    ``sqrt((L - 1) / L sum (theta_i - mean theta)^2)``; Student's t with L - 1 degrees of
    freedom for the interval and the two-sided p-value. Fewer than 3 units: no interval."""
    from scipy.stats import t

    all_units = list(dict.fromkeys(units))
    effect = float(statistic(set(all_units)))
    size = len(all_units)
    if size < 3 or not np.isfinite(effect):
        return _nan(ci, method, size, effect)
    leave = np.array([statistic(set(all_units) - {u}) for u in all_units], float)
    if not np.all(np.isfinite(leave)):
        return _nan(ci, method, size, effect)
    sd = float(np.sqrt((size - 1) / size * ((leave - leave.mean()) ** 2).sum()))
    q = float(t.ppf(0.5 + ci / 2, size - 1))
    p = float(2 * t.sf(abs(effect) / sd, size - 1)) if sd > 0 else float(effect == 0)
    return Contrast(effect, effect - q * sd, effect + q * sd, sd, p, ci, method, size)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment (controls the family-wise error); NaN stays NaN and is not
    counted in the family."""
    p = np.asarray(p_values, float)
    out = np.full(len(p), np.nan)
    live = np.flatnonzero(np.isfinite(p))
    order = live[np.argsort(p[live], kind="mergesort")]
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * p[j]))
        out[j] = running
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg step-up adjustment (controls the false discovery rate)."""
    p = np.asarray(p_values, float)
    out = np.full(len(p), np.nan)
    live = np.flatnonzero(np.isfinite(p))
    order = live[np.argsort(p[live], kind="mergesort")]
    size = len(order)
    running = 1.0
    for i in range(size - 1, -1, -1):
        j = order[i]
        running = min(running, size * p[j] / (i + 1))
        out[j] = running
    return out
