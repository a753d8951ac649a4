"""How long a recipe will take, measured on this machine: a timed probe batch of each modality
(extraction) and timed comparisons of views of the recipe's size (analysis), scaled by counts."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis.plan import Comparison
from ..data import Example


@dataclass
class Probe:
    """Extraction seconds per example of each modality (reading the example and the forward
    pass under the recorder), and what the probe recorded."""
    seconds: dict[str, float] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)
    recorded: dict[str, set[str]] = field(default_factory=dict)   # layer -> modalities
    widths: dict[str, int] = field(default_factory=dict)          # layer -> width


def probe_extraction(batches: dict[str, list[Example]], prepare: Callable[[Example], Example],
                     forward: Callable[[list[Example]], dict[str, Any]]) -> Probe:
    """Time one batch per modality: ``prepare`` each example (read its audio, check it), then
    ``forward`` the batch (returning the recorded ``{layer: array}``). A batch of two runs first,
    untimed, so one-off costs (lazy initialisation, first allocations) are left out."""
    probe = Probe()
    for modality, batch in batches.items():
        forward([prepare(ex) for ex in batch[:2]])
        start = time.perf_counter()
        layers = forward([prepare(ex) for ex in batch])
        probe.seconds[modality] = (time.perf_counter() - start) / len(batch)
        probe.examples[modality] = len(batch)
        for name, value in layers.items():
            probe.recorded.setdefault(name, set()).add(modality)
            first = value[0] if isinstance(value, list) else value
            probe.widths[name] = int(np.shape(first)[-1])
    return probe


@dataclass
class AnalysisCost:
    """Views to decompose and rows to compute (with and without intervals) for one store."""
    views: int = 0
    rows: int = 0
    rows_with_intervals: int = 0


def analysis_cost(comparisons: Sequence[Comparison], languages: Sequence[str],
                  intervals: Sequence[str], n_boot: int, mixed_pairs: int = 0) -> AnalysisCost:
    """Counts for the ``comparisons`` of :func:`probekit.pipeline.analyses.plan` over
    ``languages`` and ``mixed_pairs`` code-switched pairs, as each analysis counts them
    (:meth:`~probekit.pipeline.analyses.Analysis.cost`); each comparison decomposes its own
    views."""
    from .analyses import analysis_of

    cost = AnalysisCost()
    for c in comparisons:
        analysis = analysis_of(c)
        rows, views = analysis.cost(c, len(languages), mixed_pairs)
        cost.views += views
        if n_boot and analysis.interval_name in intervals:
            cost.rows_with_intervals += rows
        else:
            cost.rows += rows
    return cost


@dataclass
class ComparisonTimes:
    """Seconds to prepare one view (its decomposition and Gram or kernel matrices, shared by
    its rows), and to compare two prepared views by every measure with the chance level,
    without and with the interval."""
    decompose: float
    compare: float
    compare_with_interval: float

    def total(self, cost: AnalysisCost, intervals: bool = True) -> float:
        with_ci = self.compare_with_interval if intervals else self.compare
        return (cost.views * self.decompose + cost.rows * self.compare
                + cost.rows_with_intervals * with_ci)


def _timing_views(n: int, width: int, count: int, seed: int) -> dict[Hashable, np.ndarray]:
    """``count`` random views of ``n`` x ``width`` to time comparisons on."""
    rng = np.random.default_rng(seed)
    return {i: rng.standard_normal((n, width)) for i in range(count)}


def _timing_k(k: int | None, n: int, width: int) -> int | None:
    """The recipe's ``k``, at most half of what views of ``n`` x ``width`` have."""
    return min(k, min(n, width) // 2) if k else None


def time_comparisons(analysis: Any, n: int, width: int, repeats: int = 3,
                     budget: float = 4.0, settings: dict[str, Any] | None = None,
                     synthetic: bool = False) -> ComparisonTimes:
    """Time the recipe's :class:`~probekit.analysis.Comparer` settings (``settings`` replacing
    any of them, e.g. a claims pass's ``k`` or measures) on random views of ``n`` sentences by
    ``width`` features: the best of up to ``repeats`` (fewer once ``budget`` seconds are
    spent). Permutations are timed on up to 20 (with 4, the null's fixed cost was scaled up
    with them: 21 vs 12 ms per row measured) and interval draws on up to 10, and scaled.
    ``synthetic``: the views are spectrum-matched Gaussian views, whose drawing is counted with
    each view's preparation."""
    from ..analysis import Comparer, comparer_for
    from ..analysis.simulate import SpectrumMatched

    arrays = _timing_views(n, width, 2 * repeats + 2, 0)
    views: Callable[[Hashable], np.ndarray] = (SpectrumMatched(arrays.__getitem__, 0)
                                               if synthetic else arrays.__getitem__)
    settings = dict(settings or {})
    n_perm = int(settings.pop("n_perm", analysis.n_perm))
    k = _timing_k(settings.pop("k", analysis.k), n, width)
    perms, draws = min(n_perm, 20), min(analysis.n_boot, 10)  # a null's fixed cost counts

    def comparer(n_perm: int, n_boot: int) -> Comparer:
        return comparer_for(analysis, views, k=k, n_perm=n_perm, n_boot=n_boot,
                            allow_large_k=True, **{"zscore": False, **settings})

    def timed(c: Comparer, a: int, b: int) -> float:
        c.prepare(a)  # shared by every row of the view: counted per view
        c.prepare(b)
        start = time.perf_counter()
        c.compare(a, b)
        return time.perf_counter() - start

    bare, chance, interval = comparer(0, 0), comparer(perms, 0), comparer(perms, draws)
    decompose, compare, per_perm, per_draw = [], [], [], []
    warm = 2 * repeats  # one untimed comparison first: one-off costs (first calls) left out
    timed(interval, warm, warm + 1)
    began = time.perf_counter()
    for r in range(repeats):
        a, b = 2 * r, 2 * r + 1
        start = time.perf_counter()
        interval.prepare(a)
        decompose.append(time.perf_counter() - start)
        compare.append(timed(bare, a, b))
        with_chance = timed(chance, a, b) if perms else compare[-1]
        per_perm.append(max(with_chance - compare[-1], 0.0) / max(perms, 1))
        if draws:
            per_draw.append(max(timed(interval, a, b) - with_chance, 0.0) / draws)
        if time.perf_counter() - began > budget:
            break
    plain = min(compare) + min(per_perm) * n_perm
    return ComparisonTimes(min(decompose), plain,
                           plain + (min(per_draw) * analysis.n_boot if per_draw else 0.0))


def time_subset_draws(analysis: Any, n: int, width: int, measure: str,
                      settings: dict[str, Any] | None = None, draws: int = 10) -> float:
    """Seconds for one pair of views of ``n`` x ``width`` on one draw of sentences, by
    ``measure``, as the claims' paired contrasts compute it with fewer than 3 languages (the
    views' Gram matrices formed once, counted in; the best of two tries of ``draws`` draws)."""
    from ..analysis import comparer_for
    from ..analysis.stats import subsample_fraction

    arrays, rng = _timing_views(n, width, 4, 1), np.random.default_rng(1)
    settings = {"zscore": False, **(settings or {})}
    k = _timing_k(settings.pop("k", analysis.k), n, width)
    m = max(2, int(round(subsample_fraction(k, k, n) * n)))
    subsets = [np.sort(rng.choice(n, m, replace=False)) for _ in range(draws)]
    best = np.inf
    for a in (0, 2):
        c = comparer_for(analysis, arrays.__getitem__, k=k, n_perm=0, n_boot=0,
                         allow_large_k=True, **{**settings, "measures": [
                             item for item, name in zip(analysis.measures, analysis.measure_names,
                                                        strict=True) if name == measure]
                             or [measure]})
        start = time.perf_counter()
        c.on_subsets(measure, a, a + 1, subsets, "timing")
        best = min(best, (time.perf_counter() - start) / draws)
    return best


def analysis_seconds(analysis: Any, comparisons: Sequence[Comparison], languages: Sequence[str],
                     n: int, widths: dict[str, int], zscored: set[str], mixed_pairs: int,
                     bins: int, passes: Sequence[tuple[Any, dict[str, Any], bool]],
                     claim_analyses: Sequence[str], redrawn: bool, workers: int = 1) -> float:
    """Seconds for the analysis of ``comparisons`` in ``workers`` processes (each worker timed
    as it runs: on one BLAS thread, in a process of its own; the rows split evenly).

    Each group of comparisons with the same width (``widths`` of a stack, the widest of a
    pair's; else the widest of all) and z-scoring (a ``zscored`` stack in it: its interval draws
    form each subset's Gram matrix from the features) is timed on views of that shape and scaled
    by its counts. Added: the control without intervals; each of ``bins`` length bins as the
    whole analysis again without intervals (an upper bound); the claims' ``passes``; and, when
    ``redrawn`` (fewer than 3 languages), each claim row's sentence draws."""
    args = (analysis, comparisons, languages, n, widths, zscored, mixed_pairs, bins, passes,
            claim_analyses, redrawn)
    if workers > 1:
        import multiprocessing

        from ..allocator import keep_freed_memory
        from .analyze import one_blas_thread

        with one_blas_thread(), multiprocessing.get_context("spawn").Pool(
                1, initializer=keep_freed_memory) as pool:  # timed as a worker runs
            return pool.apply(analysis_seconds, args) / workers
    a = analysis
    widest = max(widths.values(), default=1)

    def width_of(stack: str) -> int:
        return widths.get(stack, widest)

    control = 1 + bool(a.control)
    groups: dict[tuple[bool, int], list[Comparison]] = {}
    for c in comparisons:
        stacks = c.stack.split("~")
        key = (bool(set(stacks) & zscored), max(width_of(s) for s in stacks))
        groups.setdefault(key, []).append(c)
    seconds = 0.0
    for (z, width), part in sorted(groups.items()):
        times = time_comparisons(a, n, width, settings={"zscore": z})
        cost = analysis_cost(part, languages, a.intervals, a.n_boot, mixed_pairs)
        seconds += times.total(cost) + (control - 1) * times.total(cost, intervals=False)
        seconds += bins * control * times.total(cost, intervals=False)
    claims = [c for c in comparisons if c.analysis in claim_analyses]
    claim_cost = analysis_cost(claims, languages, (), 0, mixed_pairs)
    for _, settings, synthetic in passes:  # each pass timed with its own measures and k
        seconds += time_comparisons(a, n, widest, 2, 1.0, settings, synthetic).total(
            claim_cost, intervals=False)
    if not redrawn:
        return seconds
    for (z, width), part in sorted(groups.items()):  # draws once per setting, kept for claims
        rows = analysis_cost([c for c in part if c.analysis in claim_analyses], languages, (),
                             0, mixed_pairs).rows
        if not rows:
            continue
        draws = max(a.n_boot, 200) * rows
        for measure in a.measure_names:
            seconds += control * draws * time_subset_draws(a, n, width, measure, {"zscore": z})
        for _, settings, synthetic in passes:
            for measure in settings.get("measures", []) if not synthetic else []:
                seconds += draws * time_subset_draws(a, n, width, measure, {
                    "zscore": z, **{k: v for k, v in settings.items()
                                    if k not in ("measures", "n_perm")}})
    return seconds


def duration(seconds: float) -> str:
    """``seconds`` for a person: 42 s, 7.5 min, 3.2 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def time_figure(languages: int = 10, depths: int = 4) -> float:
    """Seconds to draw and save (PNG and PDF) one layer-curve figure of ``languages`` lines
    (after one untimed, which pays for the imports and the font cache)."""
    import tempfile
    from pathlib import Path

    from ..report import plot_layer_curves, save_figure, table

    rows = [{"analysis": "cross_modal", "measure": "svcca", "depth": d, "lang_a": f"l{i}",
             "adjusted": 0.5, "adjusted_ci_low": 0.4, "adjusted_ci_high": 0.6}
            for i in range(languages) for d in range(depths)]
    with tempfile.TemporaryDirectory() as folder:
        save_figure(plot_layer_curves(table(rows)), Path(folder) / "warm-up")  # imports, fonts
        start = time.perf_counter()
        save_figure(plot_layer_curves(table(rows)), Path(folder) / "probe")
        return time.perf_counter() - start
