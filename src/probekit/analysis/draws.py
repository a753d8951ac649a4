"""Draws on subsets of sentences for a :class:`~.grid.Comparer`: each row's subsampling
interval and the draws of paired contrasts. A measure with ``on_subset`` is computed from the
subset's Gram matrices (:meth:`~.products.ViewProducts.subset_gram`), formed once per draw for
every measure of a pair of views; any other measure is recomputed on the subset's rows
(:meth:`SubsetDraws.resample_function`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import torch

from .products import ViewProducts
from .registry import Measure
from .rows import ComparerRow
from .stats import ESTIMAND, draw_seed, half_sampling, interval, subsample_fraction, subsets

Key = Hashable


def method(draws: int, fraction: float) -> str:
    """An interval's ``ci_method``: how it was drawn, and what it covers."""
    what = "half-sampling" if fraction == 0.5 else f"subsampling {fraction:.2f} n"
    return f"{what} x{draws} around the score: {ESTIMAND}"


class SubsetDraws:
    """The draws of a :class:`~.grid.Comparer` (which sets these attributes)."""
    choices: dict[str, tuple[Measure, Any]]
    views: ViewProducts
    variance: float
    k: int | None
    dtype: str
    device: str | None
    seed: int
    n_boot: int
    ci: float
    _on_subsets_kept: dict[tuple[Any, ...], np.ndarray]

    def array(self, key: Key) -> np.ndarray:
        """The view as loaded (float64), before centring or z-scoring."""
        return self.views.array(key)

    def _intervals(self, a: Key, b: Key, rows: list[ComparerRow]) -> None:
        """Each row's subsampling interval, from the pair's draws (:func:`~.stats.draw_seed`):
        the same subsets for every measure of the pair, so that each subset's Gram matrices are
        formed once for all the measures computed from them (:meth:`subset_values`)."""
        seed = draw_seed(self.seed, a, b)
        by_fraction: dict[float, list[ComparerRow]] = {}
        for row in rows:
            m, _ = self.choices[row["measure"]]
            fraction = subsample_fraction(row["kx"] if m.uses_bases else None, row["ky"],
                                          row["n"])
            by_fraction.setdefault(fraction, []).append(row)
        for fraction, group in by_fraction.items():
            n = group[0]["n"]
            draws = subsets(n, self.n_boot, seed, fraction)
            shared = [r["measure"] for r in group if self.choices[r["measure"]][0].on_subset]
            drawn: dict[str, np.ndarray] = {}
            if shared:  # one row per measure: the measures name the rows
                values = self.subset_values(shared, a, b)
                drawn = dict(zip(shared, np.array([values(idx) for idx in draws]).T,
                                 strict=True))
            for row in group:
                if row["measure"] in drawn:
                    iv = interval(drawn[row["measure"]], n, len(draws[0]), row["score"], self.ci)
                else:
                    iv = half_sampling(self.resample_function(row["measure"], a, b),
                                       self.array(a), self.array(b), self.n_boot, self.ci, seed,
                                       score=row["score"], fraction=fraction)
                row.update({"ci_low": iv.low, "ci_high": iv.high, "ci_sd": iv.sd,
                            "ci_method": method(self.n_boot, fraction)})
                if np.isfinite(row["chance"]) and row["chance"] < 1:
                    half = (iv.high - iv.low) / 2 / (1 - row["chance"])
                    row.update({"adjusted_ci_low": row["adjusted"] - half,
                                "adjusted_ci_high": row["adjusted"] + half})

    def on_subsets(self, measure: str, a: Key, b: Key, subsets: Sequence[np.ndarray],
                   tag: Hashable) -> np.ndarray:
        """The measure of views ``a`` and ``b`` on each subset of their rows, kept under
        ``tag`` (naming the subsets: a seed and sizes) for every later call with it."""
        key = (measure, a, b, tag)
        if key not in self._on_subsets_kept:
            on = self.subset_function(measure, a, b)
            self._on_subsets_kept[key] = np.array([on(idx) for idx in subsets])
        return self._on_subsets_kept[key]

    def subset_function(self, measure: str, a: Key, b: Key) -> Callable[[np.ndarray], float]:
        """The measure of views ``a`` and ``b`` on a subset of their rows (sorted indices), each
        centred (and z-scored, where asked) on those rows, as :meth:`resample_function` computes
        it: from the subset's Gram matrices where the measure can (:meth:`subset_values`)."""
        if self.choices[measure][0].on_subset is None:
            fn, x, y = self.resample_function(measure, a, b), self.array(a), self.array(b)
            return lambda idx: fn(x[idx], y[idx])
        values = self.subset_values([measure], a, b)
        return lambda idx: values(idx)[0]

    def subset_values(self, measures: Sequence[str], a: Key,
                      b: Key) -> Callable[[np.ndarray], list[float]]:
        """Measures computed from Gram matrices (``on_subset``) of views ``a`` and ``b`` on a
        subset of their rows: each view's Gram matrix of the subset
        (:meth:`~.products.ViewProducts.subset_gram`) formed once for all of them."""
        grams = self.views.subset_gram(a), self.views.subset_gram(b)
        widths = (self.array(a).shape[1], self.array(b).shape[1])
        device = self.device or "cpu"
        chosen = [self.choices[measure] for measure in measures]

        def on(idx: np.ndarray) -> list[float]:
            rows = torch.from_numpy(idx).to(device)
            gx, gy = grams[0](rows), grams[1](rows)
            with warnings.catch_warnings():  # k is checked (and flagged) on the full rows
                warnings.simplefilter("ignore")
                return [float(m.on_subset(gx, gy, widths, self.variance,  # type: ignore[misc]
                                          self.k, options)) for m, options in chosen]
        return on

    def _measure(self, measure: str) -> Callable[[np.ndarray, np.ndarray], float]:
        m, options = self.choices[measure]
        kw = dict(m.keywords(options), dtype=self.dtype, device=self.device)
        if m.uses_bases:
            kw.update(variance=self.variance, k=self.k)

            def quiet(x: np.ndarray, y: np.ndarray) -> float:
                with warnings.catch_warnings():  # k is checked (and flagged) on the full rows
                    warnings.simplefilter("ignore")
                    return float(m.compute(x, y, **kw))
            return quiet
        return lambda x, y: float(m.compute(x, y, **kw))

    def resample_function(self, measure: str, a: Key,
                          b: Key) -> Callable[[np.ndarray, np.ndarray], float]:
        """The measure of views ``a`` and ``b`` as a function of their raw rows, z-scoring each
        (where asked) on those rows: what intervals and paired contrasts redo in each draw."""
        plain = self._measure(measure)
        return lambda x, y: plain(self.views.prepared(x, a), self.views.prepared(y, b))
