"""The analyze stage: similarities of the run's stores (and of its control's), the tables made
from them, written to ``results/``; skipped when the results are up to date."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ..store import Store
from .analyses import Row, RowContext, Rows, TableContext, Tables
from .context import Run
from .groups import distance_classes, groupings, resource_levels
from .publish import published

log = logging.getLogger("probekit")
CLAIM_ANALYSES = ("cross_modal", "cross_lingual", "adaptation")  # what claims are made of
PARTIAL = "analysis.partial.jsonl"  # the rows computed so far: a killed analysis resumes there
ROWS: ContextVar[Any] = ContextVar("rows", default=None)  # the analysis's RowCache, while it runs
SHARE: ContextVar[tuple[int, int] | None] = ContextVar("share", default=None)  # worker i of n
PASSES: ContextVar[list[int] | None] = ContextVar("passes", default=None)  # [done, planned]
THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def similarities(run: Run, store: Store, intervals: bool, quiet: bool, label: str,
                 sentences: Any = None, settings: dict[str, Any] | None = None,
                 synthetic: bool = False, only: set[str] | None = None) -> Rows:
    """Every analysis's rows of one store (:mod:`.analyses`), on ``sentences`` only when given
    (a length bin); ``intervals``: half-sampling intervals where ``analysis.intervals`` asks.
    ``settings`` replace Comparer arguments (``k``, ``measures``, ``zscore``, ``n_perm``);
    ``synthetic``: on spectrum-matched Gaussian views of the store's views
    (:class:`~probekit.analysis.simulate.SpectrumMatched`); ``only``: these analyses only."""
    from tqdm import tqdm

    from ..analysis import Comparer
    from .analyses import analysis_of, plan, registered

    a = run.recipe.analysis
    langs = run.data.languages

    def views_of(languages: list[str], modalities: list[str]) -> Any:
        views = paired_views_of(store, languages, modalities, sentences)
        if synthetic:
            from ..analysis.simulate import SpectrumMatched

            return SpectrumMatched(views, a.seed)
        return views

    views = views_of(langs, run.data.modalities)
    if not synthetic and not settings:
        log.info("analyze%s: %d sentences paired across every language and modality "
                 "(%d dropped)", label, len(views.sentences), views.dropped)

    def comparer(analysis: str, on: Any = views) -> Comparer:
        return comparer_of(run, store, on, intervals, analysis, settings)

    pairs = run.data.code_switch.pairs
    comparisons = [c for c in plan(a, run.spec.stacks, run.data.modalities, store.layers,
                                   lambda layer: set(store.recorded(layer)["modality"]), pairs)
                   if only is None or c.analysis in only]
    ctx = RowContext(langs, views_of, comparer, lambda n: bar.update(n), pairs,
                     set(zip(store.examples["lang"].astype(str), store.examples["modality"],
                             strict=True)))
    count, step = PASSES.get(), ""
    if count is not None:  # which of the analysis's passes over the store this is
        count[0] += 1
        count[1] = max(count)
        step = f" [{count[0]}/{count[1]}]"
    t0 = time.time()
    bar = tqdm(total=sum(analysis_of(c).layers_done(c, ctx) for c in comparisons),
               desc=f"analyze{step}{label}", unit="layer", disable=quiet)
    rows: dict[str, list[Row]] = {x.name: [] for x in registered()}
    for c in comparisons:
        rows[c.analysis] += analysis_of(c).rows(c, ctx)
    bar.close()
    log.info("analyze%s%s: %d rows in %.0f s", step, label, sum(map(len, rows.values())),
             time.time() - t0)
    return rows


def paired_views_of(store: Store, languages: list[str], modalities: list[str],
                    sentences: Any = None) -> Any:
    """The store's paired views of ``languages`` and ``modalities`` (on ``sentences`` only,
    when given)."""
    from ..analysis import paired_views

    views = paired_views(store, languages, modalities)
    return views if sentences is None else views.subset(sentences)


def comparer_of(run: Run, store: Store, views: Any, intervals: bool = False,
                analysis: str = "", settings: dict[str, Any] | None = None) -> Any:
    """The recipe's :class:`~probekit.analysis.Comparer` on ``views`` of ``store``: the
    spec's z-scored stacks (unless ``analysis.zscore`` says), intervals where asked,
    ``settings`` replacing any Comparer argument."""
    from ..analysis import comparer_for
    from ..analysis.plan import stack_layers

    a = run.recipe.analysis
    zscored = {layer for stack in run.spec.zscore for layer in
               stack_layers(run.spec.stacks.get(stack, []), store.layers)}
    settings = {"zscore": a.zscore if a.zscore is not None else
                (lambda key: key[0] in zscored), "cache": ROWS.get(), "share": SHARE.get(),
                **(settings or {})}
    return comparer_for(a, views, intervals=intervals, analysis_name=analysis, **settings)


def analyze(run: Run, quiet: bool = False, verify: bool = True) -> None:
    """Every analysis's tables of the run's stores (:mod:`.analyses`), written to
    ``results/``; skipped when they are up to date. ``verify`` checks every shard's checksum
    first (an extraction in the same command has just checked them)."""
    from ..store import open_store

    store = open_store(run.store)
    control = open_store(run.control.store) if run.control is not None else None
    key = analysis_key(run, store, control)
    stamp = run.out / "results" / "analysis.hash"
    if stamp.exists() and stamp.read_text() == key:
        log.info("analyze: results are up to date")
        return
    if verify:  # every shard's checksum, each byte read once
        for s in (store, control):
            if s is not None:
                s.check()
    from ..analysis.row_cache import RowCache

    t0, cache = time.time(), RowCache(run.out / PARTIAL)
    if len(cache):
        log.info("analyze: resuming: %d comparisons of an interrupted analysis are reused",
                 len(cache))
    workers = run.recipe.analysis.workers
    if workers > 1 and run.ranks.world == 1:
        log.info("analyze: %d processes compute the rows", workers)
        in_processes(run, workers, quiet)
        cache.absorb()
    elif run.ranks.world > 1:
        cache.absorb()  # every torchrun process's share (analyze_share)
    token = ROWS.set(cache)
    counting = PASSES.set(_planned(run))
    try:
        tables = _tables(run, store, control, quiet)
        with published(run.out / "results") as folder:  # the whole set, its stamp last
            write_tables(run, tables, folder)
            (folder / stamp.name).write_text(key)
    finally:
        ROWS.reset(token)
        PASSES.reset(counting)
        cache.close()
    cache.close(remove=True)
    if cache.hits:
        log.info("analyze: %d rows were computed already (by an interrupted run or other "
                 "processes) and reused; %d computed here", cache.hits, cache.added)
    log.info("analyze: %s in %.0f s", ", ".join(f"{k} {len(v)} rows" for k, v in tables.items()
                                                if v), time.time() - t0)


def analysis_key(run: Run, store: Store, control: Store | None) -> str:
    """What the results depend on: the analysis and model sections and the stores."""
    return run.recipe.section_hash("analysis", "model") + f"-{len(store)}-{store.recipe_hash}" + (
        f"-{len(control)}-{control.recipe_hash}" if control is not None else "")


def analyze_share(run: Run, worker: int, workers: int, quiet: bool = True) -> None:
    """Worker ``worker`` of ``workers``: its share of the rows (those whose key falls to it)
    into its own rows file beside the run's, for :func:`analyze` to make the tables from."""
    from ..analysis.row_cache import RowCache
    from ..store import open_store

    store = open_store(run.store)
    control = open_store(run.control.store) if run.control is not None else None
    stamp = run.out / "results" / "analysis.hash"
    if stamp.exists() and stamp.read_text() == analysis_key(run, store, control):
        return
    cache = RowCache(run.out / PARTIAL, worker)
    count = _planned(run)
    tokens = ROWS.set(cache), SHARE.set((worker, workers)), PASSES.set(count)
    try:
        rows = _with_control(run, store, control, True, quiet)
        passes = _claim_passes(run, rows)
        count[1] += len(passes)
        for label, settings, synthetic in passes:
            similarities(run, store, False, quiet, f" (claims: {label})", settings=settings,
                         synthetic=synthetic, only=set(CLAIM_ANALYSES))
    finally:
        ROWS.reset(tokens[0])
        SHARE.reset(tokens[1])
        PASSES.reset(tokens[2])
        cache.close()


def _planned(run: Run) -> list[int]:
    """``[0, passes]``: the analysis's passes over the stores known before the first (the store
    and its control, in each length bin too); the claims' are added once the sentences are
    known."""
    lb = run.recipe.analysis.length_bins
    bins = (len(lb.edges) - 1 if lb.edges else lb.quantiles) if lb.by else 0
    return [0, (1 + bins) * (2 if run.control is not None else 1)]


def _claim_passes(run: Run, rows: Rows) -> list[tuple[str, dict[str, Any], bool]]:
    """The claims' analyses again (:meth:`~.analyses.claims.Claims.passes`), for the run's
    sentence count."""
    from .analyses.claims import Claims

    cm = rows.get("cross_modal", [])
    return Claims.passes(run.recipe.analysis, int(cm[0]["n"])) if cm else []


def _share_in_process(recipe: Any, out: Path, worker: int, workers: int, quiet: bool) -> None:
    """One worker's share; with ``PROBEKIT_PROFILE_WORKERS=PATH`` (benchmarks/paper_scale.py
    --profile) profiled by cProfile into ``PATH.wN``."""
    from ..allocator import keep_freed_memory
    from .context import resolve_run

    keep_freed_memory()  # a process of the command, as its main process
    profile = os.environ.get("PROBEKIT_PROFILE_WORKERS")
    if not profile:
        analyze_share(resolve_run(recipe, out), worker, workers, quiet)
        return
    import cProfile

    with cProfile.Profile() as p:
        analyze_share(resolve_run(recipe, out), worker, workers, quiet)
    p.dump_stats(f"{profile}.w{worker}")


def in_processes(run: Run, workers: int, quiet: bool = False) -> None:
    """:func:`analyze_share` in ``workers`` fresh processes, each on one BLAS thread; the
    first shows its progress (the shares are even)."""
    import multiprocessing

    with one_blas_thread(), multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.starmap(_share_in_process, [(run.recipe, run.out, i, workers, quiet or i > 0)
                                         for i in range(workers)])


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Processes spawned in this block run numpy's and torch's BLAS on one thread (the
    variables are read when a child imports them); restored after."""
    before = {k: os.environ.get(k) for k in THREADS}
    os.environ.update({k: "1" for k in THREADS})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _tables(run: Run, store: Store, control: Store | None, quiet: bool) -> Tables:
    """Every analysis's tables of the store (and its control)."""
    from .analyses import registered

    rows = _with_control(run, store, control, True, quiet)
    count = PASSES.get()
    if count is not None:
        count[1] += len(_claim_passes(run, rows))
    ctx = table_context(run, store, lambda sentences, label: _with_control(
        run, store, control, False, quiet, sentences, label))
    ctx.recompute = lambda settings, synthetic, label: similarities(
        run, store, False, quiet, label, settings=settings, synthetic=synthetic,
        only=set(CLAIM_ANALYSES))

    comparers: dict[str, Any] = {}  # one per settings: what it computed on draws is reused

    def views_comparer(settings: dict[str, Any], of_control: bool) -> Any:
        key = repr((sorted(settings.items()), of_control))
        if key not in comparers:
            r, s = (run.control, control) if of_control and run.control else (run, store)
            assert s is not None
            comparers[key] = comparer_of(
                r, s, paired_views_of(s, run.data.languages, run.data.modalities),
                settings={"n_perm": 0, **settings})
        return comparers[key]
    ctx.comparer = views_comparer
    analyses = registered()
    tables: Tables = {"similarities": [r for x in analyses if x.similarities
                                       for r in rows[x.name]]}
    for x in analyses:
        began = time.perf_counter()
        tables.update(x.tables(rows, ctx))
        if time.perf_counter() - began > 5:  # e.g. claims redrawn over sentences (< 3 languages)
            log.info("analyze: the %s tables took %.0f s", x.name, time.perf_counter() - began)
    return tables


def table_context(run: Run, store: Store | None = None,
                  rows_in: Callable[[Any, str], Rows] | None = None) -> TableContext:
    """What the analyses' tables (and the dry run's figure count) are made with."""
    a, langs = run.recipe.analysis, run.data.languages
    return TableContext(a, langs, run.data.modalities, resource_levels(langs, a),
                        groupings(langs, a), distance_classes(langs) > 1, store, rows_in)


def write_tables(run: Run, tables: Tables, results: Path) -> None:
    """Each table as CSV (and Parquet) in ``results``, stamped with what made it; the group
    means also as paper tables (Markdown and LaTeX), one per grouping."""
    import pandas as pd

    from ..report import claims_paper_table, paper_table, to_latex, to_markdown, write_table
    from ..report.common import OWN_TARGET, RANDOM, decoder_note
    from ..report.tables import GROUP_COLUMNS

    spec, a = run.spec, run.recipe.analysis
    stamp_columns = {  # what made every table: model, weights, the decoder's target, recipe
        "model": run.model_label,
        "checkpoint": f"none ({RANDOM})" if run.random_weights else spec.checkpoint,
        "revision": RANDOM if run.random_weights else spec.revision,
        "decoder_target": run.data.target_language or OWN_TARGET,
        "recipe_hash": run.recipe.section_hash("data", "model", "record", "analysis")}
    for name, table_rows in tables.items():
        if not table_rows:
            continue
        df = pd.DataFrame(table_rows)
        for i, (column, value) in enumerate(stamp_columns.items()):
            df.insert(1 + i, column, value)
        if "ci_level" not in df:
            df["ci_level"] = a.ci
        write_table(df, results / name)
        if name == "group_means":  # as paper tables: one per grouping
            md, tex = [], []
            for (grouping, kind), part in df.groupby(["grouping", "analysis"], sort=False):
                wide = paper_table(part)
                what = kind.replace("_", "-")
                caption = (
                    f"{run.weights_label}: mean chance-adjusted {what} similarity by "
                    f"{grouping}, {a.ci:.0%} delete-one-language jackknife intervals over "
                    "languages, at these sentences, n and k (none for fewer than 3); "
                    f"control: {a.control or 'none'}. {GROUP_COLUMNS}"
                    + (f" {note.capitalize()}." if (note := decoder_note(part, part["stack"]))
                       else ""))
                md.append(f"## {what} by {grouping}\n\n{caption}\n\n{to_markdown(wide)}")
                tex.append(to_latex(wide, caption))
            (results / "group_means.md").write_text("\n".join(md))
            (results / "group_means.tex").write_text("\n".join(tex))
        if name == "claims":  # the paper's findings, as a paper table
            wide = claims_paper_table(df)
            method = str(df["ci_method"].iloc[0])
            caption = (f"{run.weights_label}: the paper's findings as contrasts of "
                       f"{df['score'].iloc[0]}s (> 0 supports the finding), {a.ci:.0%} "
                       f"intervals ({method}), Holm-adjusted p-values; control: "
                       f"{a.control or 'none'}")
            (results / "claims.md").write_text(f"{caption}\n\n{to_markdown(wide)}")
            (results / "claims.tex").write_text(to_latex(wide, caption))


def _with_control(run: Run, store: Store, control: Store | None, intervals: bool, quiet: bool,
                  sentences: Any = None, label: str = "") -> Rows:
    """:func:`similarities` of the store, with the control store's scores beside each row."""
    from ..analysis import with_control

    rows = similarities(run, store, intervals, quiet, label, sentences)
    if control is not None and run.control is not None:
        name = str(run.recipe.analysis.control)
        other = similarities(run.control, control, False, quiet,
                              f"{label} (control: {name})", sentences)
        rows = {k: with_control(v, other[k], name) for k, v in rows.items()}
    return rows
