"""Chance levels and confidence intervals, seeded and reproducible.

- Permutation null: shuffle the pairing of rows (which example of y goes with which of x) and
  recompute. For SVCCA this reuses the decompositions: permuting rows leaves each view's column
  space intact, so only ``U_x^T P U_y`` is recomputed; the null is exact for the same n, d and k.
  Its mean is the chance level; ``adjust`` maps a score to ``(s - chance) / (1 - chance)`` (0 at
  chance, 1 at identity) and a z-score against the null.
- Subsampling interval: draw ``m`` of the ``n`` examples without replacement (half of them, or
  more when SVCCA/PWCCA keep many directions: :func:`subsample_fraction`), redo everything
  (centring, z-scoring, decomposition, the choice of k under a variance rule, the measure) and
  recompute. For a statistic whose variance is ``~ 1/n``, the draws' spread times
  ``sqrt(m / (n - m))`` estimates the full sample's standard error (for a half, exactly the
  spread); the interval is ``s +- z sd``, centred on the score itself.
  **What it covers** (:data:`ESTIMAND`): the sampling variability of the statistic at this n and
  k over sentences, i.e. the value the same measure would give, on average, on other samples of
  n sentences from the same population; not the population similarity (n -> infinity), from
  which SVCCA at a fixed k and CKA are biased by amounts that depend on the spectra, n and k.
  A bias correction ``s - (mean(draws) - s) m / (n - m)`` assumes a bias ``~ 1/n``; at a fixed k
  on power-law spectra it moved the centre by about 7 sd and no interval covered (see
  ``benchmarks/claims_validation.py``), so none is applied.
- ``p_perm``: the permutation p-value ``(1 + #(null >= s)) / (1 + n_perm)``; with ``n_perm``
  permutations it is never below ``1 / (1 + n_perm)``. ``z`` is descriptive: the null is not
  normal and its sd is estimated from ``n_perm`` draws.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

from .basis import Basis
from .measures import canonical_correlations, pwcca_from_bases

INTERVAL_METHOD = "half-sampling"
ESTIMAND = "sampling variability of the statistic at this n and k, over sentences"


@dataclass
class Null:
    """The permutation null: its mean (the chance level), its spread and the draws."""
    mean: float
    std: float
    q95: float
    draws: np.ndarray


@dataclass
class Interval:
    """A subsampling interval ``centre +- z sd``: ``centre`` is the statistic on the full
    sample, ``sd`` its standard error from the draws, ``level`` the nominal coverage of the
    statistic's expected value at this n (:data:`ESTIMAND`)."""
    low: float
    high: float
    centre: float
    sd: float
    level: float
    draws: np.ndarray
    method: str = INTERVAL_METHOD


def row_seed(seed: int, *key: Any) -> int:
    """A seed of its own for each row (and purpose), derived from the recipe seed and the key, so
    that the chance and interval errors of different rows are independent yet reproducible."""
    digest = hashlib.blake2b(repr((int(seed), *key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def draw_seed(seed: int, a: Any, b: Any) -> int:
    """The seed of the subsets an interval of views ``a`` and ``b`` is drawn from: one per pair
    (every measure of the pair draws the same subsets, so each subset's products are formed
    once), independent across pairs."""
    return row_seed(seed, "draws", a, b)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def null_of(draws: np.ndarray) -> Null:
    """The null of these permutation draws."""
    return Null(float(draws.mean()), float(draws.std(ddof=1)) if len(draws) > 1 else 0.0,
                float(np.quantile(draws, 0.95)), draws)


def svcca_null(bx: Basis, by: Basis, kx: int, ky: int, n_perm: int = 100,
               seed: int = 0) -> Null:
    """SVCCA of x against row-shuffled y, ``n_perm`` times, with the same kept directions."""
    g = _generator(seed)
    ux, uy = bx.u[:, :kx], by.u[:, :ky]
    draws = np.empty(n_perm)
    for i in range(n_perm):
        perm = torch.randperm(bx.n, generator=g).to(uy.device)
        shuffled = Basis(uy[perm], by.s[:ky], by.x, by.method)
        draws[i] = float(canonical_correlations(Basis(ux, bx.s, bx.x, bx.method), shuffled,
                                                kx, ky).mean())
    return null_of(draws)


def pwcca_null(bx: Basis, by: Basis, variance: float, k: int | None, n_perm: int = 100,
               seed: int = 0) -> Null:
    """PWCCA against row-shuffled y: permuting rows permutes y's basis and centred view alike,
    so the decompositions are reused."""
    g = _generator(seed)
    draws = np.empty(n_perm)
    for i in range(n_perm):
        perm = torch.randperm(by.n, generator=g).to(by.u.device)
        draws[i] = pwcca_from_bases(bx, Basis(by.u[perm], by.s, by.x[perm], by.method),
                                    variance, k).score
    return null_of(draws)


def permutations(n: int, n_perm: int, seed: int) -> list[np.ndarray]:
    """The row shuffles of the generic permutation null, in order."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(n_perm)]


def permutation_null(measure: Callable[[Any, Any], float], x: np.ndarray, y: np.ndarray,
                     n_perm: int = 100, seed: int = 0) -> Null:
    """Any measure against row-shuffled y (recomputed in full each time)."""
    return null_of(np.array([float(measure(x, y[p])) for p in permutations(len(y), n_perm, seed)]))


def subsets(n: int, n_draws: int, seed: int, fraction: float = 0.5) -> list[np.ndarray]:
    """The draws of :func:`half_sampling`: ``round(fraction * n)`` of ``n`` rows without
    replacement, sorted, ``n_draws`` times from ``seed``."""
    m = int(round(fraction * n))
    if n_draws < 2 or not 1 < m < n:
        raise ValueError(f"subsampling needs at least 2 draws of 2 to n-1 examples; got "
                         f"{n_draws} draws of {m} of {n}")
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n, m, replace=False)) for _ in range(n_draws)]


def interval(draws: np.ndarray, n: int, m: int, score: float, ci: float = 0.95) -> Interval:
    """The subsampling interval around ``score`` from the measure's ``draws`` on ``m`` of ``n``
    rows: their spread times ``sqrt(m / (n - m))`` is the standard error."""
    sd = float(draws.std(ddof=1)) * (m / (n - m)) ** 0.5
    z = NormalDist().inv_cdf(0.5 + ci / 2)
    return Interval(score - z * sd, score + z * sd, score, sd, ci, draws)


def half_sampling(measure: Callable[[Any, Any], float], x: Any, y: Any, n_draws: int = 200,
                  ci: float = 0.95, seed: int = 0, score: float | None = None,
                  fraction: float = 0.5) -> Interval:
    """Subsampling interval of ``measure(x, y)`` (see the module docstring): ``m = fraction * n``
    examples without replacement per draw (0.5: half-sampling); the draws' spread times
    ``sqrt(m / (n - m))`` is the standard error, and the interval is centred on the score.
    ``measure`` must redo every data-dependent step itself; ``score`` is ``measure(x, y)`` when
    already known."""
    n = len(x)
    draws = subsets(n, n_draws, seed, fraction)
    s = float(measure(x, y)) if score is None else float(score)
    values = np.array([float(measure(x[idx], y[idx])) for idx in draws])
    return interval(values, n, len(draws[0]), s, ci)


def subsample_fraction(kx: float | None = None, ky: float | None = None, n: int = 0) -> float:
    """The share of examples in each draw: a half, or more when the kept directions need it, so
    that a draw keeps ``kx + ky <= m / 2`` like the full sample (at most 0.9: the standard error
    is the draws' spread times ``sqrt(m / (n - m))``)."""
    if not kx or not ky or not n:
        return 0.5
    return float(min(0.9, max(0.5, 2 * (kx + ky) / n)))


def adjust(score: float, null: Null) -> tuple[float, float]:
    """``(adjusted, z)``: ``(s - chance) / (1 - chance)`` and ``(s - chance) / sd(null)``."""
    adjusted = (score - null.mean) / (1 - null.mean) if null.mean < 1 else float("nan")
    z = (score - null.mean) / null.std if null.std > 0 else float("nan")
    return adjusted, z


def p_perm(score: float, null: Null) -> float:
    """The permutation p-value ``(1 + #(null >= score)) / (1 + n_perm)`` (one-sided: a score
    above chance); never below ``1 / (1 + n_perm)``."""
    if not np.isfinite(score) or not len(null.draws):
        return float("nan")
    return float((1 + np.sum(null.draws >= score)) / (1 + len(null.draws)))
