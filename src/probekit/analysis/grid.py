"""Compare many views fast: each view is decomposed once and reused by every comparison and measure.

A *view* is one ``(n, d)`` matrix, e.g. a layer's pooled outputs for one language and modality,
rows in a shared sentence order; it is named by any hashable key. ``Comparer.compare(a, b)``
returns one result row per measure; ``compare_many(a, bs)`` batches the products for SVCCA.

Every row carries the score, its permutation chance level, the chance-adjusted score
``(s - chance) / (1 - chance)`` and a z-score against the null, a half-sampling interval (method and
level recorded), the kept directions, warning flags, and the seed its chance and interval were
drawn with (derived from the comparer's seed and the row's key, so rows are independent).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any, Callable, Hashable, Iterable, Iterator, Sequence

import numpy as np
import torch

from .basis import AnalysisError, Basis, ConstantViewError, as_matrix, check_pair, centre, decompose
from .measures import MEASURES, pwcca_from_bases
from .stats import (Null, adjust, half_sampling, permutation_null, pwcca_null, row_seed,
                    subsample_fraction, svcca_null)

Key = Hashable
log = logging.getLogger("probekit.analysis")
BASIS_MEASURES = ("svcca", "pwcca")


@contextlib.contextmanager
def torch_single_thread(device: str | None) -> Iterator[None]:
    """torch on one thread while a grid runs on the CPU. Its products here are small, while
    numpy's BLAS does the heavy Gram products and eigendecompositions: with both thread pools
    awake, torch's spinning workers starved numpy's (the demo's analysis took 66 s instead of
    20 s on 2 cores)."""
    if device not in (None, "cpu"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _method(draws: int, fraction: float) -> str:
    what = "half-sampling" if fraction == 0.5 else f"subsampling {fraction:.2f} n"
    return f"{what} x{draws}, bias-corrected"


class LargeKError(AnalysisError):
    """SVCCA/PWCCA would keep more directions than the examples can support."""


class Comparer:
    """Caches decompositions of views loaded by ``load(key)`` and compares pairs of them.

    Args:
        load: returns the ``(n, d)`` array of a view.
        measures: names in :data:`probekit.analysis.MEASURES` (one name or a list); the
            decompositions are shared by all of them.
        variance, k: the SVCCA/PWCCA truncation rule (fixed ``k`` wins).
        zscore: z-score each feature first (recommended for LLM hidden states, whose few
            "massive activation" features otherwise take all of the variance); or a function
            of the view's key saying which views to z-score (rows then record it per pair).
        n_perm: permutations for the chance level of each comparison (0: none).
        n_boot: half-samples for the confidence interval (0: none; see :mod:`.stats`).
        ci: the interval's nominal level.
        seed: the root of every row's own seed.
        allow_large_k: when kx + ky > n / 2, where canonical correlations approach 1 for any
            data, go on and flag the row ``large_k`` instead of refusing.
        options: extra keyword arguments of the non-CCA measures (e.g. ``debiased``).
    """

    def __init__(self, load: Callable[[Key], Any], measures: str | Sequence[str] = "svcca", *,
                 variance: float = 0.99, k: int | None = None,
                 zscore: bool | Callable[[Key], bool] = False,
                 dtype: str = "float64", device: str | None = None, n_perm: int = 0,
                 n_boot: int = 0, ci: float = 0.95, seed: int = 0, allow_large_k: bool = False,
                 options: dict | None = None):
        self.measures = [measures] if isinstance(measures, str) else list(measures)
        unknown = [m for m in self.measures if m not in MEASURES]
        if unknown or not self.measures:
            raise AnalysisError(f"unknown measure {unknown[0] if unknown else None!r}; choose "
                                f"from {', '.join(MEASURES)}")
        self.load = load
        self.variance, self.k, self.zscore = variance, k, zscore
        self.dtype, self.device = dtype, device
        self.n_perm, self.n_boot, self.ci, self.seed = n_perm, n_boot, ci, seed
        self.allow_large_k = allow_large_k
        self.options = dict(options or {})
        self._bases: dict[Key, Basis] = {}
        self._arrays: dict[Key, np.ndarray] = {}

    def basis(self, key: Key) -> Basis:
        """The decomposition of a view (computed on first use)."""
        if key not in self._bases:
            x = as_matrix(self.array(key), self.dtype, self.device, name=str(key))
            self._bases[key] = decompose(x, self._z(key), name=f"view {key}")
        return self._bases[key]

    def array(self, key: Key) -> np.ndarray:
        """The view as loaded (float64), before centring or z-scoring."""
        if key not in self._arrays:
            self._arrays[key] = np.asarray(self.load(key), dtype=np.float64)
        return self._arrays[key]

    def forget(self, keep: Iterable[Key] = ()) -> None:
        """Drop cached views (all but ``keep``) to bound memory."""
        keep = set(keep)
        self._bases = {k: v for k, v in self._bases.items() if k in keep}
        self._arrays = {k: v for k, v in self._arrays.items() if k in keep}

    def _z(self, key: Key) -> bool:
        return bool(self.zscore(key)) if callable(self.zscore) else bool(self.zscore)

    def compare(self, a: Key, b: Key) -> list[dict[str, Any]]:
        """Rows (one per measure): score, chance, adjusted score, interval, how computed."""
        return self.compare_many(a, [b])

    def compare_many(self, a: Key, bs: list[Key]) -> list[dict[str, Any]]:
        """Compare view ``a`` with each of ``bs``: rows for each ``b`` in order, one per measure."""
        rows: dict[tuple[Key, str], dict[str, Any]] = {}
        with torch_single_thread(self.device):
            for measure in self.measures:
                if measure in BASIS_MEASURES:
                    found = self._with_bases(measure, a, bs)
                else:
                    found = [self._with_arrays(measure, a, b) for b in bs]
                rows.update({(b, measure): row for b, row in zip(bs, found)})
        return [rows[(b, m)] for b in bs for m in self.measures]

    # -- rows --------------------------------------------------------------------------------
    def _row(self, measure: str, a: Key, b: Key, score: float, n: int, kx: Any = np.nan,
             ky: Any = np.nan, flags: Sequence[str] = ()) -> dict[str, Any]:
        za, zb = self._z(a), self._z(b)
        row = {"a": a, "b": b, "measure": measure, "score": score, "n": n, "kx": kx, "ky": ky,
               "zscore": za if za == zb else ("a only" if za else "b only"),
               "dtype": self.dtype, "variance": np.nan, "k": np.nan,
               "chance": np.nan, "chance_std": np.nan, "adjusted": np.nan, "z": np.nan,
               "score_bc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "ci_sd": np.nan,
               "adjusted_ci_low": np.nan, "adjusted_ci_high": np.nan,
               "ci_level": self.ci if self.n_boot else np.nan,
               "ci_method": _method(self.n_boot, 0.5) if self.n_boot else "",
               "n_perm": self.n_perm, "n_boot": self.n_boot, "seed": self.seed,
               "row_seed": row_seed(self.seed, measure, a, b), "flags": ";".join(flags)}
        if measure in BASIS_MEASURES:
            row.update(variance=np.nan if self.k else self.variance,
                       k=self.k if self.k else np.nan)
        return row

    def _dead(self, measure: str, a: Key, b: Key, error: ConstantViewError) -> dict[str, Any]:
        log.warning("%s of %s and %s: %s; the row is NaN, flagged constant_view", measure, a, b,
                    error)
        return self._row(measure, a, b, np.nan, len(self.array(a)), flags=["constant_view"])

    def _finish(self, row: dict[str, Any], null: Null | None,
                fn: Callable[[np.ndarray, np.ndarray], float], a: Key, b: Key) -> dict[str, Any]:
        """Add the chance level, the adjusted scores and the interval to a row."""
        if null is not None:
            row.update(chance=null.mean, chance_std=null.std)
            row["adjusted"], row["z"] = adjust(row["score"], null)
        if self.n_boot:
            fraction = subsample_fraction(row["kx"] if row["measure"] in BASIS_MEASURES else None,
                                          row["ky"], row["n"])
            iv = half_sampling(fn, self.array(a), self.array(b), self.n_boot, self.ci,
                               row["row_seed"] + 1, score=row["score"], fraction=fraction)
            row.update(score_bc=iv.centre, ci_low=iv.low, ci_high=iv.high, ci_sd=iv.sd,
                       ci_method=_method(self.n_boot, fraction))
            if null is not None and null.mean < 1:
                half = (iv.high - iv.low) / 2 / (1 - null.mean)
                row.update(adjusted_ci_low=row["adjusted"] - half,
                           adjusted_ci_high=row["adjusted"] + half)
        return row

    def _check_k(self, measure: str, a: Key, b: Key, kx: int, ky: int, n: int) -> list[str]:
        if kx + ky <= n // 2:
            return []
        if not self.allow_large_k:
            rule = f"k={self.k}" if self.k else f"the {self.variance:g} variance rule"
            raise LargeKError(
                f"{measure} of {a} and {b}: {rule} keeps kx={kx} + ky={ky} directions for n={n} "
                f"examples, more than n/2, where canonical correlations approach 1 for any data "
                f"(chance near the score). Set a fixed analysis.k (at most {max(1, n // 8)} for "
                f"these {n} examples), use more sentences, or set analysis.allow_large_k: true to "
                "go on with such rows flagged large_k")
        return ["large_k"]

    # -- SVCCA and PWCCA: shared decompositions ------------------------------------------------
    def _with_bases(self, measure: str, a: Key, bs: list[Key]) -> list[dict[str, Any]]:
        try:
            ba = self.basis(a)
        except ConstantViewError as e:
            return [self._dead(measure, a, b, e) for b in bs]
        kx = ba.keep(self.variance, self.k)
        rows: list[dict[str, Any] | None] = [None] * len(bs)
        live = []
        for i, b in enumerate(bs):
            try:
                bb = self.basis(b)
            except ConstantViewError as e:
                rows[i] = self._dead(measure, a, b, e)
                continue
            if bb.n != ba.n:
                raise AnalysisError(f"views {a!r} and {b!r} have {ba.n} and {bb.n} examples; "
                                    "they must be paired")
            live.append((i, b, bb, bb.keep(self.variance, self.k)))
        if measure == "svcca" and live:
            products = ba.u[:, :kx].T @ torch.cat([bb.u[:, :ky] for _, _, bb, ky in live], 1)
            start = 0
            for i, b, bb, ky in live:
                m = products[:, start:start + ky]
                start += ky
                if kx > ky:
                    m = m.T
                rho = torch.sqrt(torch.clamp(torch.linalg.eigvalsh(m @ m.T), 0, 1))
                rows[i] = self._basis_row(measure, a, b, float(rho.mean()), ba, bb, kx, ky)
        else:
            for i, b, bb, ky in live:
                score = pwcca_from_bases(ba, bb, self.variance, self.k).score
                rows[i] = self._basis_row(measure, a, b, score, ba, bb, kx, ky)
        return rows  # type: ignore[return-value]

    def _basis_row(self, measure: str, a: Key, b: Key, score: float, ba: Basis, bb: Basis,
                   kx: int, ky: int) -> dict[str, Any]:
        flags = self._check_k(measure, a, b, kx, ky, ba.n)
        row = self._row(measure, a, b, score, ba.n, kx, ky, flags)
        null = None
        if self.n_perm:
            if measure == "svcca":
                null = svcca_null(ba, bb, kx, ky, self.n_perm, row["row_seed"])
            else:
                null = pwcca_null(ba, bb, self.variance, self.k, self.n_perm, row["row_seed"])
        return self._finish(row, null, self._resample_fn(measure, a, b), a, b)

    # -- other measures: recomputed from the arrays ------------------------------------------
    def _with_arrays(self, measure: str, a: Key, b: Key) -> dict[str, Any]:
        x, y = self.array(a), self.array(b)
        check_pair(as_matrix(x, name=str(a)), as_matrix(y, name=str(b)))
        fn = self._resample_fn(measure, a, b)
        try:
            score = fn(x, y)
        except ConstantViewError as e:
            return self._dead(measure, a, b, e)
        row = self._row(measure, a, b, score, len(x))
        null = None
        if self.n_perm:
            xs, ys = self._prepared(x, a), self._prepared(y, b)  # permuting rows keeps these
            plain = self._measure(measure)
            null = permutation_null(plain, xs, ys, self.n_perm, row["row_seed"])
        return self._finish(row, null, fn, a, b)

    def _measure(self, measure: str) -> Callable[[np.ndarray, np.ndarray], float]:
        fn = MEASURES[measure]
        if measure in BASIS_MEASURES:
            def quiet(x: np.ndarray, y: np.ndarray) -> float:
                with warnings.catch_warnings():  # k is checked (and flagged) on the full rows
                    warnings.simplefilter("ignore")
                    return fn(x, y, variance=self.variance, k=self.k, dtype=self.dtype,
                              device=self.device).score
            return quiet
        return lambda x, y: fn(x, y, dtype=self.dtype, device=self.device, **self.options).score

    def _prepared(self, x: np.ndarray, key: Key) -> np.ndarray:
        return centre(torch.from_numpy(x), True).numpy() if self._z(key) else x

    def _resample_fn(self, measure: str, a: Key, b: Key) -> Callable[[np.ndarray, np.ndarray],
                                                                       float]:
        """The measure on raw rows, z-scoring each view (where asked) on those rows."""
        plain = self._measure(measure)
        return lambda x, y: plain(self._prepared(x, a), self._prepared(y, b))

