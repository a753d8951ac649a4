"""Compare many views fast: each view is decomposed once and reused by every comparison and measure.

A *view* is one ``(n, d)`` matrix, e.g. a layer's pooled outputs for one language and modality,
rows in a shared sentence order; it is named by any hashable key. ``Comparer.compare(a, b)``
returns one result row per measure; ``compare_many(a, bs)`` batches the products for SVCCA.

Every row carries the score, its permutation chance level, the chance-adjusted score
``(s - chance) / (1 - chance)`` and a z-score against the null, a half-sampling interval (method and
level recorded), the permutation p-value, the kept directions, warning flags (``large_k``,
``constant_view``, ``outlier_feature``: one feature of a view that is not z-scored holds more than
:data:`OUTLIER_SHARE` of its variance, so that feature alone drives SVCCA's top direction and
linear CKA), and the seeds its chance (``row_seed``) and interval (``draw_seed``) were drawn with,
derived from the comparer's seed and the row's key (the interval's from the pair of views: its
measures share the subsets), so rows are independent.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from .basis import (
    AnalysisError,
    Basis,
    ConstantViewError,
    as_matrix,
    check_pair,
    torch_single_thread,
)
from .draws import SubsetDraws, method
from .products import ViewProducts
from .registry import Measure, describe_options, measure, split_measure
from .rows import ComparerRow
from .stats import (
    Null,
    adjust,
    draw_seed,
    null_of,
    p_perm,
    permutation_null,
    permutations,
    row_seed,
)

Key = Hashable
log = logging.getLogger("probekit.analysis")


OUTLIER_SHARE = 0.25  # one feature holding more of a view's variance flags its rows


class LargeKError(AnalysisError):
    """SVCCA/PWCCA would keep more directions than the examples can support."""


class Comparer(SubsetDraws):
    """Caches decompositions of views loaded by ``load(key)`` and compares pairs of them.

    Args:
        load: returns the ``(n, d)`` array of a view.
        measures: measures of :data:`probekit.analysis.MEASURES`, one or a list, each a name,
            ``(name, options)`` or ``{name: options}`` (options: a mapping or the measure's
            options dataclass); the decompositions are shared by all of them. Rows show
            options that differ from the defaults in ``measure_options`` (``sigma=0.5``).
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
        options: options for every measure that takes them (e.g. ``debiased``), under each
            measure's own options (kept for older callers).
        cache: a :class:`~.row_cache.RowCache`: rows found there (same measures, settings, view
            keys and view data) are reused, new ones added.
        share: ``(i, n)``: compute only the rows whose key falls to worker ``i`` of ``n`` (the
            others are NaN placeholders; a worker filling a shared cache).
    """

    def __init__(self, load: Callable[[Key], Any], measures: Any = "svcca", *,
                 variance: float = 0.99, k: int | None = None,
                 zscore: bool | Callable[[Key], bool] = False,
                 dtype: str = "float64", device: str | None = None, n_perm: int = 0,
                 n_boot: int = 0, ci: float = 0.95, seed: int = 0, allow_large_k: bool = False,
                 options: dict | None = None, cache: Any = None,
                 share: tuple[int, int] | None = None):
        one = isinstance(measures, (str, dict)) or (isinstance(measures, tuple) and len(
            measures) == 2 and isinstance(measures[0], str) and not isinstance(measures[1], str))
        items = [measures] if one else list(measures)
        if not items:
            raise AnalysisError("Comparer: name at least one measure")
        self.options = dict(options or {})
        self.choices = _choose(items, self.options)  # name -> (Measure, options instance)
        self.measures = list(self.choices)
        self.load = load
        self.variance, self.k, self.zscore = variance, k, zscore
        self.dtype, self.device = dtype, device
        self.n_perm, self.n_boot, self.ci, self.seed = n_perm, n_boot, ci, seed
        self.allow_large_k = allow_large_k
        self.views = ViewProducts(load, self.choices, zscore, dtype, device, n_boot)
        self._digests: dict[Key, str] = {}
        self._on_subsets_kept: dict[tuple[Any, ...], np.ndarray] = {}  # kept by forget()
        self.cache, self.share = cache, share

    # -- each view's products (:class:`~.products.ViewProducts`) ------------------------------
    def basis(self, key: Key) -> Basis:
        """The decomposition of a view (computed on first use)."""
        return self.views.basis(key)

    def prepare(self, key: Key) -> None:
        """Everything of view ``key`` that its rows share (decomposition, kernel matrices)."""
        self.views.prepare(key)

    def examples(self, key: Key) -> int:
        """How many examples (rows) view ``key`` has (remembered after :meth:`forget`)."""
        return self.views.examples(key)

    def zscored(self, key: Key) -> bool:
        """Whether view ``key`` is z-scored before it is compared."""
        return self.views.zscored(key)

    def forget(self, keep: Iterable[Key] = ()) -> None:
        """Drop cached views (all but ``keep``) to bound memory; draws kept by
        :meth:`on_subsets` stay."""
        self.views.forget(keep)
        self._digests = {k: v for k, v in self._digests.items() if k in set(keep)}

    def _outlier(self, key: Key) -> bool:
        return not self.zscored(key) and self.views.feature_share(key) > OUTLIER_SHARE

    def compare(self, a: Key, b: Key) -> list[ComparerRow]:
        """Rows (one per measure): score, chance, adjusted score, interval, how computed."""
        return self.compare_many(a, [b])

    def compare_many(self, a: Key, bs: list[Key]) -> list[ComparerRow]:
        """Compare view ``a`` with each of ``bs``: rows for each ``b`` in order, one per measure."""
        if self.cache is None and self.share is None:
            return self._compare_many(a, bs)
        keys = {b: self.row_key(a, b) for b in bs}
        found: dict[Key, list[ComparerRow]] = {}
        for b in bs:
            cached = self.cache.get(keys[b]) if self.cache is not None else None
            if cached is not None:
                found[b] = cached
            elif self.share is not None and int(keys[b][:8], 16) % self.share[1] != self.share[0]:
                found[b] = [self._row(m, a, b, np.nan, len(self.array(a)))
                            for m in self.measures]  # another worker's
        todo = [b for b in bs if b not in found]
        new = self._compare_many(a, todo)
        for i, b in enumerate(todo):
            found[b] = new[i * len(self.measures):(i + 1) * len(self.measures)]
            if self.cache is not None:
                self.cache.put(keys[b], found[b])
        return [row for b in bs for row in found[b]]

    def row_key(self, a: Key, b: Key) -> str:
        """Everything a row of ``a`` and ``b`` depends on, as a key (:mod:`.row_cache`)."""
        from .row_cache import digest

        for key in (a, b):
            if key not in self._digests:  # a loader may name its views (checksums, a source)
                named = getattr(self.load, "digest", None)
                self._digests[key] = (named(key) if named else None) or digest(self.array(key))
        settings = (self.variance, self.k, self.zscored(a), self.zscored(b), self.dtype,
                    str(self.device), self.n_perm, self.n_boot, self.ci, self.seed,
                    self.allow_large_k, "draws shared by a pair's measures")
        measures = [(m, describe_options(o)) for m, (_, o) in self.choices.items()]
        return digest(measures, settings, a, b, self._digests[a], self._digests[b])

    def _compare_many(self, a: Key, bs: list[Key]) -> list[ComparerRow]:
        rows: dict[tuple[Key, str], ComparerRow] = {}
        if not bs:
            return []
        with torch_single_thread(self.device):
            for measure in self.measures:
                if self.choices[measure][0].uses_bases:
                    found = self._with_bases(measure, a, bs)
                elif self.choices[measure][0].kernel is not None:
                    found = [self._with_kernels(measure, a, b) for b in bs]
                else:
                    found = [self._with_arrays(measure, a, b) for b in bs]
                rows.update({(b, measure): row for b, row in zip(bs, found, strict=True)})
            if self.n_boot:
                for b in bs:
                    self._intervals(a, b, [rows[(b, m)] for m in self.measures
                                           if "constant_view" not in rows[(b, m)]["flags"]])
        return [rows[(b, m)] for b in bs for m in self.measures]

    # -- rows --------------------------------------------------------------------------------
    def _row(self, measure: str, a: Key, b: Key, score: float, n: int, kx: Any = np.nan,
             ky: Any = np.nan, flags: Sequence[str] = ()) -> ComparerRow:
        za, zb = self.zscored(a), self.zscored(b)
        m, options = self.choices[measure]
        if np.isfinite(score) and (self._outlier(a) or self._outlier(b)):
            flags = [*flags, "outlier_feature"]
        row: ComparerRow = {
            "a": a, "b": b, "measure": measure, "measure_options": describe_options(options),
            "score": score, "n": n, "kx": kx, "ky": ky,
            "zscore": za if za == zb else ("a only" if za else "b only"),
            "dtype": self.dtype, "variance": np.nan, "k": np.nan,
            "chance": np.nan, "chance_std": np.nan, "adjusted": np.nan, "z": np.nan,
            "p_perm": np.nan, "ci_low": np.nan, "ci_high": np.nan, "ci_sd": np.nan,
            "adjusted_ci_low": np.nan, "adjusted_ci_high": np.nan,
            "ci_level": self.ci if self.n_boot else np.nan,
            "ci_method": method(self.n_boot, 0.5) if self.n_boot else "",
            "n_perm": self.n_perm, "n_boot": self.n_boot, "seed": self.seed,
            "row_seed": row_seed(self.seed, measure, a, b),
            "draw_seed": draw_seed(self.seed, a, b), "flags": ";".join(flags)}
        if m.uses_bases:
            row.update({"variance": np.nan if self.k else self.variance,
                        "k": self.k if self.k else np.nan})
        return row

    def _dead(self, measure: str, a: Key, b: Key, error: ConstantViewError) -> ComparerRow:
        log.warning("%s of %s and %s: %s; the row is NaN, flagged constant_view", measure, a, b,
                    error)
        return self._row(measure, a, b, np.nan, len(self.array(a)), flags=["constant_view"])

    def _finish(self, row: ComparerRow, null: Null | None) -> ComparerRow:
        """Add the chance level and the adjusted scores to a row (its interval comes after
        every measure of the pair: :meth:`_intervals`)."""
        if null is not None:
            row.update({"chance": null.mean, "chance_std": null.std})
            row["adjusted"], row["z"] = adjust(row["score"], null)
            row["p_perm"] = p_perm(row["score"], null)
        return row

    def _check_k(self, measure: str, a: Key, b: Key, kx: int, ky: int, n: int) -> list[str]:
        if kx + ky <= n // 2:
            return []
        if not self.allow_large_k:
            rule = f"k={self.k}" if self.k else f"the {self.variance:g} variance rule"
            raise LargeKError(
                f"{measure} of {a} and {b}: {rule} keeps kx={kx} + ky={ky} directions for n={n} "
                f"examples, more than n/2, where canonical correlations approach 1 for any data "
                f"(chance near the score). Set a fixed analysis.k (at most {max(1, n // 4)} "
                f"for these {n} examples: kx + ky <= n/2), use more sentences, or set "
                "analysis.allow_large_k: true to go on with such rows flagged large_k")
        return ["large_k"]

    # -- measures from the shared decompositions (SVCCA, PWCCA) --------------------------------
    def _with_bases(self, measure: str, a: Key, bs: list[Key]) -> list[ComparerRow]:
        m, options = self.choices[measure]
        try:
            ba = self.basis(a)
        except ConstantViewError as e:
            return [self._dead(measure, a, b, e) for b in bs]
        kx = ba.keep(self.variance, self.k)
        rows: list[ComparerRow | None] = [None] * len(bs)
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
        if m.many_from_bases is not None:  # one product for all of bs
            scores = m.many_from_bases(ba, kx, [(bb, ky) for _, _, bb, ky in live])
        else:  # the ignore below: a measure that uses_bases has from_bases
            kw = m.keywords(options)
            scores = [float(m.from_bases(ba, bb, self.variance, self.k, **kw))  # type: ignore[misc]
                      for _, _, bb, _ in live]
        for (i, b, bb, ky), score in zip(live, scores, strict=True):
            rows[i] = self._basis_row(measure, a, b, score, ba, bb, kx, ky)
        return rows  # type: ignore[return-value]  # every slot is filled above

    def _basis_row(self, measure: str, a: Key, b: Key, score: float, ba: Basis, bb: Basis,
                   kx: int, ky: int) -> ComparerRow:
        flags = self._check_k(measure, a, b, kx, ky, ba.n)
        row = self._row(measure, a, b, score, ba.n, kx, ky, flags)
        m, options = self.choices[measure]
        null = None
        if self.n_perm and m.exact_null is not None:
            null = m.exact_null(ba, bb, kx, ky, self.variance, self.k, self.n_perm,
                                row["row_seed"], **m.keywords(options))
        elif self.n_perm:
            null = self._permuted(measure, a, b, row["row_seed"])
        return self._finish(row, null)

    # -- kernel measures (CKA): each view's kernel matrix formed once ---------------------------
    def _with_kernels(self, measure: str, a: Key, b: Key) -> ComparerRow:
        m, options = self.choices[measure]
        assert m.kernel is not None
        try:
            gx, gy = self.views.gram(measure, a), self.views.gram(measure, b)
        except ConstantViewError as e:
            return self._dead(measure, a, b, e)
        if gx.shape != gy.shape:
            raise AnalysisError(f"views {a!r} and {b!r} have {len(gx)} and {len(gy)} examples; "
                                "they must be paired")
        row = self._row(measure, a, b, float(m.kernel.score(gx, gy, options)), len(gx))
        null = null_of(np.array(m.kernel.permuted(gx, gy, options, permutations(
            len(gy), self.n_perm, row["row_seed"])))) if self.n_perm else None
        return self._finish(row, null)

    # -- other measures: recomputed from the arrays ------------------------------------------
    def _with_arrays(self, measure: str, a: Key, b: Key) -> ComparerRow:
        x, y = self.array(a), self.array(b)
        check_pair(as_matrix(x, name=str(a)), as_matrix(y, name=str(b)))
        fn = self.resample_function(measure, a, b)
        try:
            score = fn(x, y)
        except ConstantViewError as e:
            return self._dead(measure, a, b, e)
        row = self._row(measure, a, b, score, len(x))
        null = self._permuted(measure, a, b, row["row_seed"]) if self.n_perm else None
        return self._finish(row, null)

    def _permuted(self, measure: str, a: Key, b: Key, seed: int) -> Null:
        """The generic permutation null: the measure recomputed on row-shuffled views."""
        views = self.views  # permuting each view's rows, z-scored on the whole view
        xs, ys = views.prepared(self.array(a), a), views.prepared(self.array(b), b)
        return permutation_null(self._measure(measure), xs, ys, self.n_perm, seed)



def _choose(items: Sequence[Any], common: dict[str, Any]) -> dict[str, tuple[Measure, Any]]:
    """Each measure with its options instance; ``common`` options go to every measure that
    takes them (a measure's own options win)."""
    chosen: dict[str, tuple[Measure, Any]] = {}
    for item in items:
        name, options = split_measure(item)
        m = measure(name)
        if name in chosen:
            raise AnalysisError(f"Comparer: measure {name!r} is named twice")
        if common and not isinstance(options, m.options):
            fields = {f.name for f in dataclasses.fields(m.options)}
            options = {**{k: v for k, v in common.items() if k in fields}, **(options or {})}
        chosen[name] = (m, m.configure(options, name, "Comparer"))
    taken = {f.name for m, _ in chosen.values() for f in dataclasses.fields(m.options)}
    for key in common:
        if key not in taken:
            raise AnalysisError(f"Comparer: option {key!r} is taken by none of the measures "
                                f"{', '.join(chosen)}")
    return chosen
