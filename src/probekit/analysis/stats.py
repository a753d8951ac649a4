"""Chance levels and confidence intervals, seeded and reproducible.

- Permutation null: shuffle the pairing of rows (which example of y goes with which of x) and
  recompute. For SVCCA this reuses the decompositions: permuting rows leaves each view's column
  space intact, so only ``U_x^T P U_y`` is recomputed; the null is exact for the same n, d and k.
- Bootstrap: resample examples with replacement. For SVCCA the kept subspaces are held fixed
  (the resampled, re-centred projections are re-orthonormalised), so the interval reflects the
  sampling of the CCA step; for the other measures everything is recomputed. Resampling repeats
  rows, which inflates SVCCA and CKA (both are biased upwards at small n), so the interval is the
  spread of the bootstrap draws re-centred on the score ``s``: ``[s - (m - q_lo), s + (q_hi - m)]``
  with ``m`` the draws' median. It measures sampling variability; it does not correct the
  estimator's own bias (for that, compare with the chance level).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from .basis import Basis
from .measures import canonical_correlations


@dataclass
class Null:
    """The permutation null: its mean (the chance level), its spread and the draws."""
    mean: float
    std: float
    q95: float
    draws: np.ndarray


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


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
    return Null(float(draws.mean()), float(draws.std(ddof=1)) if n_perm > 1 else 0.0,
                float(np.quantile(draws, 0.95)), draws)


def svcca_bootstrap(bx: Basis, by: Basis, kx: int, ky: int, n_boot: int = 200,
                    ci: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of SVCCA over examples resampled with replacement (subspaces fixed)."""
    g = _generator(seed)
    ux, uy = bx.u[:, :kx] * bx.s[:kx], by.u[:, :ky] * by.s[:ky]  # projections of the views
    draws = np.empty(n_boot)
    for i in range(n_boot):
        idx = torch.randint(0, bx.n, (bx.n,), generator=g).to(ux.device)
        qx = torch.linalg.qr(ux[idx] - ux[idx].mean(0)).Q
        qy = torch.linalg.qr(uy[idx] - uy[idx].mean(0)).Q
        m = qx.T @ qy
        if kx > ky:
            m = m.T
        ev = torch.linalg.eigvalsh(m @ m.T)
        draws[i] = float(torch.sqrt(torch.clamp(ev, 0, 1)).mean())
    score = float(canonical_correlations(bx, by, kx, ky).mean())
    return _centred_interval(score, draws, ci)


def _centred_interval(score: float, draws: np.ndarray, ci: float) -> tuple[float, float]:
    q_lo, median, q_hi = np.quantile(draws, [(1 - ci) / 2, 0.5, 1 - (1 - ci) / 2])
    return float(score - (median - q_lo)), float(score + (q_hi - median))


def permutation_null(measure: Callable[[Any, Any], float], x: np.ndarray, y: np.ndarray,
                     n_perm: int = 100, seed: int = 0) -> Null:
    """Any measure against row-shuffled y (recomputed in full each time)."""
    rng = np.random.default_rng(seed)
    draws = np.array([float(measure(x, y[rng.permutation(len(y))])) for _ in range(n_perm)])
    return Null(float(draws.mean()), float(draws.std(ddof=1)) if n_perm > 1 else 0.0,
                float(np.quantile(draws, 0.95)), draws)


def bootstrap(measure: Callable[[Any, Any], float], x: np.ndarray, y: np.ndarray,
              n_boot: int = 200, ci: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of any measure over examples resampled with replacement."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        draws.append(float(measure(x[idx], y[idx])))
    return _centred_interval(float(measure(x, y)), np.asarray(draws), ci)
