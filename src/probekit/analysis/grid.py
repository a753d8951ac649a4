"""Compare many views fast: each view is decomposed once and reused by every comparison.

A *view* is one ``(n, d)`` matrix, e.g. a layer's pooled outputs for one language and modality,
rows in a shared sentence order; it is named by any hashable key. ``Comparer.compare(a, b)``
returns one result row; ``compare_many(a, bs)`` batches the products for SVCCA.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable

import numpy as np
import torch

from .basis import AnalysisError, Basis, as_matrix, check_pair, decompose
from .measures import MEASURES, _warn_k, pwcca_from_bases
from .stats import bootstrap, permutation_null, svcca_bootstrap, svcca_null

Key = Hashable


class Comparer:
    """Caches decompositions of views loaded by ``load(key)`` and compares pairs of them.

    Args:
        load: returns the ``(n, d)`` array of a view.
        measure: a name in :data:`probekit.analysis.MEASURES`.
        variance, k: the SVCCA/PWCCA truncation rule (fixed ``k`` wins).
        zscore: z-score each feature first (recommended for LLM hidden states, whose few
            "massive activation" features otherwise take all of the variance); or a function
            of the view's key saying which views to z-score (rows then record it per pair).
        n_perm: permutations for the chance level of each comparison (0: none).
        n_boot: bootstrap resamples for the confidence interval (0: none).
        seed: seeds both.
    """

    def __init__(self, load: Callable[[Key], Any], measure: str = "svcca", *,
                 variance: float = 0.99, k: int | None = None,
                 zscore: bool | Callable[[Key], bool] = False,
                 dtype: str = "float64", device: str | None = None, n_perm: int = 0,
                 n_boot: int = 0, ci: float = 0.95, seed: int = 0, options: dict | None = None):
        if measure not in MEASURES:
            raise AnalysisError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
        self.load, self.measure = load, measure
        self.variance, self.k, self.zscore = variance, k, zscore
        self.dtype, self.device = dtype, device
        self.n_perm, self.n_boot, self.ci, self.seed = n_perm, n_boot, ci, seed
        self.options = dict(options or {})
        self._warned = False
        self._bases: dict[Key, Basis] = {}
        self._arrays: dict[Key, np.ndarray] = {}

    @property
    def uses_bases(self) -> bool:
        return self.measure in ("svcca", "pwcca")

    def basis(self, key: Key) -> Basis:
        """The decomposition of a view (computed on first use)."""
        if key not in self._bases:
            x = as_matrix(self.load(key), self.dtype, self.device, name=str(key))
            self._bases[key] = decompose(x, self._z(key))
        return self._bases[key]

    def array(self, key: Key) -> np.ndarray:
        if key not in self._arrays:
            x = np.asarray(self.load(key), dtype=np.float64)
            if self._z(key):
                x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
            self._arrays[key] = x
        return self._arrays[key]

    def forget(self, keep: Iterable[Key] = ()) -> None:
        """Drop cached views (all but ``keep``) to bound memory."""
        keep = set(keep)
        self._bases = {k: v for k, v in self._bases.items() if k in keep}
        self._arrays = {k: v for k, v in self._arrays.items() if k in keep}

    def _z(self, key: Key) -> bool:
        return bool(self.zscore(key)) if callable(self.zscore) else bool(self.zscore)

    def _params(self, a: Key, b: Key) -> dict[str, Any]:
        za, zb = self._z(a), self._z(b)
        p = {"measure": self.measure, "zscore": za if za == zb else ("a only" if za else "b only"),
             "dtype": self.dtype, "n_perm": self.n_perm, "n_boot": self.n_boot, "seed": self.seed}
        if self.uses_bases:
            p.update(variance=None if self.k else self.variance, k=self.k)
        return p

    def compare(self, a: Key, b: Key) -> dict[str, Any]:
        """One result row: score, chance level, interval and how they were computed."""
        return self.compare_many(a, [b])[0]

    def compare_many(self, a: Key, bs: list[Key]) -> list[dict[str, Any]]:
        """Compare view ``a`` with each of ``bs`` (one stacked product for SVCCA)."""
        if not bs:
            return []
        if not self.uses_bases:
            return [self._compare_arrays(a, b) for b in bs]
        ba = self.basis(a)
        kx = ba.keep(self.variance, self.k)
        others = [self.basis(b) for b in bs]
        for bb in others:
            if bb.n != ba.n:
                raise AnalysisError(f"views {a!r} and {bs[others.index(bb)]!r} have {ba.n} and "
                                    f"{bb.n} examples; they must be paired")
        kys = [bb.keep(self.variance, self.k) for bb in others]
        rows = []
        if self.measure == "svcca":
            products = ba.u[:, :kx].T @ torch.cat([bb.u[:, :ky] for bb, ky in zip(others, kys)], 1)
            start = 0
            for b, bb, ky in zip(bs, others, kys):
                m = products[:, start:start + ky]
                start += ky
                if kx > ky:
                    m = m.T
                rho = torch.sqrt(torch.clamp(torch.linalg.eigvalsh(m @ m.T), 0, 1))
                if not self._warned and kx + ky > ba.n // 2:
                    self._warned = True  # once per grid, not once per pair
                    _warn_k(kx, ky, ba.n)
                rows.append(self._base_row(a, b, float(rho.mean()), ba.n, kx, ky, ba, bb))
        else:
            for b, bb, ky in zip(bs, others, kys):
                sim = pwcca_from_bases(ba, bb, self.variance, self.k)
                rows.append(self._base_row(a, b, sim.score, ba.n, kx, ky, ba, bb))
        return rows

    def _row(self, a: Key, b: Key, score: float, n: int, kx: Any, ky: Any) -> dict[str, Any]:
        return {"a": a, "b": b, "score": score, "n": n, "kx": kx, "ky": ky, **self._params(a, b),
                "chance": np.nan, "chance_std": np.nan, "ci_low": np.nan, "ci_high": np.nan}

    def _base_row(self, a: Key, b: Key, score: float, n: int, kx: int, ky: int, ba: Basis,
                  bb: Basis) -> dict[str, Any]:
        row = self._row(a, b, score, n, kx, ky)
        if self.measure != "svcca":  # PWCCA: chance and interval recomputed in full
            return self._add_stats(row, ba.x.cpu().numpy(), bb.x.cpu().numpy())
        if self.n_perm:
            null = svcca_null(ba, bb, kx, ky, self.n_perm, self.seed)
            row.update(chance=null.mean, chance_std=null.std)
        if self.n_boot:
            row["ci_low"], row["ci_high"] = svcca_bootstrap(ba, bb, kx, ky, self.n_boot,
                                                            self.ci, self.seed)
        return row

    def _add_stats(self, row: dict[str, Any], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """Permutation chance level and bootstrap interval of any measure, recomputed in full."""
        fn = self._measure_fn()
        if self.n_perm:
            null = permutation_null(fn, x, y, self.n_perm, self.seed)
            row.update(chance=null.mean, chance_std=null.std)
        if self.n_boot:
            row["ci_low"], row["ci_high"] = bootstrap(fn, x, y, self.n_boot, self.ci, self.seed)
        return row

    def _measure_fn(self) -> Callable[[Any, Any], float]:
        fn = MEASURES[self.measure]
        if self.uses_bases:
            return lambda x, y: fn(x, y, variance=self.variance, k=self.k, dtype=self.dtype).score
        return lambda x, y: fn(x, y, dtype=self.dtype, **self.options).score

    def _compare_arrays(self, a: Key, b: Key) -> dict[str, Any]:
        x, y = self.array(a), self.array(b)
        check_pair(as_matrix(x, name=str(a)), as_matrix(y, name=str(b)))
        row = self._row(a, b, self._measure_fn()(x, y), len(x), np.nan, np.nan)
        return self._add_stats(row, x, y)
