"""Synthetic views like trained layers, with known population similarity: for validating
statistics, and for the spectrum-matched null of a contrast.

:class:`SharedViews` draws views that share one latent per sentence. View ``v`` has eigenvalues
``lam_v`` (e.g. a power law ``i^-alpha``: no gap at any k) and loadings ``c_v``: its whitened
coordinates are ``Z_v O_v^T`` with ``Z_v[:, i] = c_v,i A_i + sqrt(1 - c_v,i^2) E_v,i`` (``A`` the
sentences' shared latent, ``E_v`` the view's own noise, ``O_v`` a random rotation that turns the
shared part away from the principal axes), scaled by ``sqrt(lam_v)``. Two views ``u, v`` then have
canonical correlations ``c_u,i c_v,i``, and

- population SVCCA at a fixed k is the mean singular value of ``(O_u C O_v^T)[:k, :k]`` with
  ``C = diag(c_u c_v)`` (each view's top-k principal directions are its first k coordinates);
- population linear CKA is ``||D_u O_u C O_v^T D_v||_F^2 / (||lam_u|| ||lam_v||)``,
  ``D = diag(sqrt(lam))``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np


def power_law(d: int, alpha: float) -> np.ndarray:
    """Eigenvalues ``i^-alpha``, i = 1..d."""
    return np.arange(1, d + 1, dtype=float) ** -float(alpha)


def decaying(p: int, top: float = 0.9, scale: float = 40.0) -> np.ndarray:
    """Canonical correlations ``top * exp(-(i - 1) / scale)``, i = 1..p: partial sharing that
    fades smoothly, with no gap."""
    return top * np.exp(-np.arange(p, dtype=float) / scale)


def rotation(d: int, rng: np.random.Generator, tilt: float | None = None) -> np.ndarray:
    """A random ``d x d`` rotation: uniform (None), or the orthogonal factor of
    ``I + tilt G / sqrt(d)`` (G Gaussian): each axis turned partly away from where it was."""
    g = rng.standard_normal((d, d))
    if tilt is not None:
        g = np.eye(d) + tilt * g / np.sqrt(d)
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diag(r))


@dataclass
class SharedViews:
    """Views ``key -> (eigenvalues, loadings)`` sharing one latent per sentence (see the module
    docstring); ``seed`` fixes the rotations (``tilt``: how far from the principal axes, see
    :func:`rotation`). ``sample(n, rng)`` draws n sentences of every view."""
    spectra: Mapping[Hashable, np.ndarray]
    loadings: Mapping[Hashable, np.ndarray]
    seed: int = 0
    tilt: float | None = None
    rotations: dict[Hashable, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        for key in self.spectra:
            lam, c = np.asarray(self.spectra[key], float), np.asarray(self.loadings[key], float)
            if len(c) > len(lam) or np.any(np.abs(c) > 1) or np.any(lam < 0):
                raise ValueError(f"view {key!r}: loadings must be at most as many as the "
                                 "eigenvalues and in [-1, 1], eigenvalues non-negative")
            self.rotations[key] = rotation(len(lam), rng, self.tilt)

    @property
    def shared(self) -> int:
        return max(len(c) for c in self.loadings.values())

    def sample(self, n: int, rng: np.random.Generator,
               keys: list[Hashable] | None = None) -> dict[Hashable, np.ndarray]:
        """``n`` sentences of each view (all of them, or ``keys``), ``(n, d_v)`` arrays."""
        latent = rng.standard_normal((n, self.shared))
        return {key: draw_view(self.spectra[key], self.loadings[key], self.rotations[key],
                               latent, rng)
                for key in (keys if keys is not None else list(self.spectra))}

    def _cross(self, u: Hashable, v: Hashable) -> np.ndarray:
        """``O_u C O_v^T``: the whitened cross-covariance of views u and v."""
        cu, cv = np.asarray(self.loadings[u], float), np.asarray(self.loadings[v], float)
        p = min(len(cu), len(cv))
        ou, ov = self.rotations[u], self.rotations[v]
        return (ou[:, :p] * (cu[:p] * cv[:p])) @ ov[:, :p].T

    def svcca(self, u: Hashable, v: Hashable, k: int) -> float:
        """Population SVCCA of views u and v keeping k directions of each."""
        m = self._cross(u, v)[:k, :k]
        return float(np.linalg.svd(m, compute_uv=False).mean())

    def linear_cka(self, u: Hashable, v: Hashable) -> float:
        """Population linear CKA of views u and v."""
        lu, lv = np.asarray(self.spectra[u], float), np.asarray(self.spectra[v], float)
        cross = np.sqrt(lu)[:, None] * self._cross(u, v) * np.sqrt(lv)[None, :]
        return float((cross ** 2).sum() / (np.linalg.norm(lu) * np.linalg.norm(lv)))


def pair_model(d: int, alpha: float, rho: np.ndarray, seed: int = 0,
               alpha_y: float | None = None, tilt: float | None = None) -> SharedViews:
    """Two views ``"x"``, ``"y"`` of width d with power-law spectra (exponents ``alpha`` and
    ``alpha_y``, default the same) and canonical correlations ``rho``."""
    c = np.sqrt(np.asarray(rho, float))
    return SharedViews({"x": power_law(d, alpha), "y": power_law(d, alpha_y or alpha)},
                       {"x": c, "y": c}, seed, tilt)


def draw_view(lam: np.ndarray, c: np.ndarray, o: np.ndarray, latent: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """One view of the sentences whose shared latent is ``latent`` (``(n, >= len(c))``):
    eigenvalues ``lam``, loadings ``c``, rotation ``o`` (see the module docstring)."""
    lam, c = np.asarray(lam, float), np.asarray(c, float)
    z = rng.standard_normal((len(latent), len(lam)))
    p = len(c)
    z[:, :p] = c * latent[:, :p] + np.sqrt(1 - c ** 2) * z[:, :p]
    return (z @ o.T) * np.sqrt(lam)


def matched_spectrum(x: np.ndarray) -> np.ndarray:
    """A view's sample eigenvalues (of its centred covariance), descending, its rank's worth
    (:func:`~probekit.analysis.spectra.eigenvalues`; one zero for a constant view)."""
    from .spectra import eigenvalues

    lam = eigenvalues(x)
    return lam if len(lam) else np.zeros(1)


TILT = 0.4  # the spectrum-matched views' rotation away from the principal axes (see rotation)


class SpectrumMatched:
    """A loader of Gaussian views like ``load``'s: each view has its own sample spectrum
    (:func:`matched_spectrum`), and every pair of views the same alignment, canonical
    correlations :func:`decaying` (0.9 falling smoothly) on shared directions turned by
    ``tilt`` away from the principal axes. Differences between their similarities come from
    the spectra (and widths) alone: run a contrast on them to see how large a difference the
    spectra produce. Views are drawn on demand, each from its own seed (``seed`` and the key),
    one shared latent per sentence."""

    def __init__(self, load: Callable[[Hashable], np.ndarray], seed: int = 0,
                 tilt: float | None = TILT):
        self.load, self.seed, self.tilt = load, int(seed), tilt
        self._latent: np.ndarray | None = None

    def digest(self, key: Hashable) -> str:
        """What view ``key`` is drawn from: the source view's data, the seed, the tilt and the
        key (a row cache's key, the same in every process, whatever its BLAS threads round)."""
        from .row_cache import digest

        named = getattr(self.load, "digest", None)
        source = (named(key) if named else None) or np.asarray(self.load(key), float)
        return digest("spectrum-matched", self.seed, self.tilt, key, source)

    def __call__(self, key: Hashable) -> np.ndarray:
        from .stats import row_seed

        x = np.asarray(self.load(key), float)
        n = len(x)
        if self._latent is None or len(self._latent) != n:
            self._latent = np.random.default_rng(self.seed).standard_normal((n, n))
        lam = matched_spectrum(x)
        rng = np.random.default_rng(row_seed(self.seed, "spectrum-matched", key))
        o = rotation(len(lam), rng, self.tilt)
        return draw_view(lam, np.sqrt(decaying(len(lam))), o, self._latent, rng)
