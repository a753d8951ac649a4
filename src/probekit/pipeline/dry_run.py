"""``--dry-run``: validate, resolve the data, say what would be recorded and what is missing,
and estimate the run's time (:mod:`.estimate`), without writing anything."""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from typing import Any

from ..errors import ProbekitError
from ..wrappers import ModelSpec, Wrapper
from .context import Run
from .extract import record_batch
from .inputs import Example, admit, examples_for, fleurs_configs
from .preflight import analysis_problem, audio_problem


def dry_run(run: Run, probe: bool = True) -> list[str]:
    """Print what the run would record and what is missing, and estimate its time: when the
    weights and the data are here (and ``probe``), a timed probe batch of each modality, and the
    analysis timed on views of its size. Returns what must be downloaded first (empty when the
    run can start here)."""
    from ..analysis.plan import stack_layers
    from ..wrappers import fidelity, load_model, wrapper_class

    recipe, spec, d, r = run.recipe, run.spec, run.data, run.recipe.record
    tiny = recipe.model.variant == "tiny"
    print(f"recipe {recipe.path}: model {run.model_label} "
          f"({'tiny random weights' if tiny else spec.checkpoint})")
    downloads: list[str] = []
    examples: list[Example] = []
    sentences = 0
    if d.source == "fleurs":
        from ..data import FLEURS_REPO, fleurs_missing
        missing = fleurs_missing(fleurs_configs(d.languages), d.split)
        if missing:
            downloads.append(f"dataset {FLEURS_REPO} (split {d.split}): {len(missing)} files "
                             f"not cached, e.g. {', '.join(missing[:2])}")
    rep: dict[str, Any] | None = None
    if not downloads:
        try:
            examples, rep = examples_for(d)
        except ProbekitError as e:  # a hub dataset not cached here (offline)
            if d.source != "hf":
                raise
            downloads.append(f"dataset {d.path} (data.source: hf): {e}")
    if rep is not None:
        sentences = rep["sentences"]
        unit = "paragraphs" if d.group_sentences > 1 else "sentences"
        mixed = sum(rep.get("code_switched", {}).values())
        print(f"data: {len(examples)} examples = {rep['sentences']} {unit} x "
              f"{len(d.languages)} languages x {len(d.modalities)} modalities"
              + (f" + {mixed} code-switched" if mixed else "")
              + f" ({rep['dropped_not_in_every_language']} {unit} not in every language "
              "dropped)")
    else:
        print(f"data: {d.source}, split {d.split}, {len(d.languages)} languages "
              f"({' '.join(d.languages)}) x {' + '.join(d.modalities)}; counted after download")
    if not tiny:
        by_origin: dict[str, list[str]] = {}
        needs = wrapper_class(spec.wrapper, spec.path).required_weights(
            spec, d.languages, "speech" in d.modalities)
        for name, origin, available in needs:
            state = {True: "available here", False: "NOT available here",
                     None: "fetched on first use if not cached"}[available]
            by_origin.setdefault(f"{origin}, {state}", []).append(name)
            if available is False:
                downloads.append(f"weights {name} ({origin})")
        for origin, names in by_origin.items():
            print(f"weights ({origin}): {', '.join(names)}")
        if all(available for _, _, available in needs):
            spec = with_checkpoint_sizes(spec)
            run = dataclasses.replace(run, spec=spec)
    stacks = r.stacks or list(spec.stacks)
    width_bytes = {"float32": 4, "float16": 2, "bfloat16": 2}[r.dtype]
    per_example = 0
    layer_names = load_model(spec, "tiny", check=False).layers(stacks) if tiny else []
    for stack in stacks:
        if tiny:
            names = stack_layers(spec.stacks[stack], layer_names)
            print(f"  record {stack}: {len(names)} layers ({', '.join(names[:2])}"
                  f"{', ...' if len(names) > 2 else ''}), pool {r.pool}")
        elif stack in spec.sizes:
            blocks, width = spec.sizes[stack]
            per_example += blocks * width * width_bytes
            print(f"  record {stack}: {blocks} layer{'s' if blocks > 1 else ''} x {width} "
                  f"({', '.join(spec.stacks[stack])}), pool {r.pool}")
        else:
            print(f"  record {stack}: {', '.join(spec.stacks[stack])}, pool {r.pool}")
    a = recipe.analysis
    print(f"analysis: {', '.join(a.measure_names)}, "
          + (f"k={a.k}" if a.k else f"{a.variance:g} variance rule")
          + f", chance from {a.n_perm} permutations per row"
          + (f", {a.ci:.0%} half-sampling intervals ({a.n_boot} draws) on "
             f"{', '.join(a.intervals)} rows" if a.n_boot else ", no intervals"))
    if a.control:
        print(f"control: {a.control}: the same recipe on {spec.name}'s architecture with random "
              f"weights, extracted again into OUT/control/store (doubles the extraction time)")
    for line in fidelity(spec):
        print(f"fidelity ({spec.name}, tested): {line}")
    if per_example:
        n = len(examples) or 1000 * len(d.languages) * len(d.modalities)
        tokens = " per token" if r.pool == "none" else ""
        print(f"estimated store size: up to {n * per_example / 1e9:.1f} GB{tokens} "
              f"for {n} examples "
              f"({per_example / 1e6:.2f} MB each, {r.dtype}"
              f"{'; at 1000 sentences' if not examples else ''})")
    problems = [p for p in (analysis_problem(run, sentences), audio_problem(examples)) if p]
    problems += estimate_time(run, examples, sentences, probe, downloads)
    if downloads:
        print("to download before this recipe can run here (each is fetched once and cached):")
        for item in downloads:
            print(f"  - {item}")
    elif problems:
        print("not ready: fix these first:")
        for item in problems:
            print(f"  - {item}")
    else:
        print("ready: everything this recipe needs is available here")
    return downloads + problems


def with_checkpoint_sizes(spec: ModelSpec) -> ModelSpec:
    """``spec`` with the sizes of the checkpoint it names, read from its config (printed, with a
    warning where the spec's ``sizes`` disagree); the spec's own where the config cannot be
    read."""
    from ..layers import checkpoint_sizes

    try:
        found = checkpoint_sizes(spec)
    except Exception as e:  # offline, no config, a family that cannot say: the spec's sizes
        print(f"sizes: the spec's ({spec.path}); the checkpoint's config could not be read "
              f"({(str(e).splitlines() or [type(e).__name__])[0][:160]})")
        return spec
    if not found:
        return spec
    print(f"sizes: read from {spec.checkpoint}'s config: "
          + ", ".join(f"{s} {b} x {w}" for s, (b, w) in found.items()))
    for stack, size in found.items():
        given = spec.sizes.get(stack)
        if given and list(given) != size:
            print(f"warning: the spec's sizes.{stack} ({given[0]} x {given[1]}) disagree with "
                  f"the checkpoint's ({size[0]} x {size[1]}); the checkpoint's are used")
    return dataclasses.replace(spec, sizes={**spec.sizes, **found})


def probe_batches(run: Run, examples: list[Example], wrapper: Wrapper
                  ) -> tuple[dict[str, list[Example]], dict[str, float]]:
    """Per modality, a batch of the run's plan to time (the median by padded length) and the
    ratio of the plan's padded length per example to that batch's: the probe's time per example
    times the ratio is the plan's, with its batch budgets and its padding."""
    from ..batching import example_length, padded_cost, plan

    r = run.recipe.record
    lengths = [example_length(ex, wrapper.text_tokens) for ex in examples]
    length_of = {ex["id"]: n for ex, n in zip(examples, lengths, strict=True)}
    planned = plan(examples, r.batch_size, lengths, r.max_batch_tokens, r.max_batch_seconds,
                   r.sort_window)
    batches, share = {}, {}
    for m in run.data.modalities:
        mine = sorted((padded_cost(b, length_of), k) for k, b in enumerate(planned)
                      if b[0]["modality"] == m)
        if not mine:
            continue
        cost, k = mine[len(mine) // 2]
        batches[m] = planned[k]
        per_example = sum(c for c, _ in mine) / sum(len(planned[j]) for _, j in mine)
        share[m] = per_example / (cost / len(planned[k])) if cost > 0 else 1.0
    return batches, share


def _probe_extraction(run: Run, examples: list[Example]) -> tuple[float, Any, Wrapper, float]:
    """Load the model as extraction does, with its self-check (printed), and time a planned
    batch of each modality: the seconds to load, the probe, the wrapper and the extraction
    estimate."""
    from ..wrappers import load_model
    from .estimate import probe_extraction
    from .fidelity import self_check

    recipe, spec = run.recipe, run.spec
    if recipe.model.variant != "tiny":
        print("time: loading the weights for a probe batch (--no-probe skips it)")
    start = time.perf_counter()  # as extraction loads it, with the load-time self-check
    wrapper = load_model(spec, variant=recipe.model.variant, dtype=recipe.model.dtype,
                         check=False)
    load = time.perf_counter() - start
    measured = self_check(run, wrapper, examples, log_lines=False)  # printed below
    for line in measured.lines() if measured else ["batch independence not measured (check: "
                                                   "false, or every example runs alone)"]:
        print(f"fidelity ({spec.name}, measured): {line}")
    batches, share = probe_batches(run, examples, wrapper)
    found = probe_extraction(batches, lambda ex: admit(ex, wrapper, spec),
                             lambda batch: record_batch(wrapper, batch, recipe.record))
    counts = Counter(ex["modality"] for ex in examples)
    return load, found, wrapper, load + sum(found.seconds[m] * counts[m] * share[m]
                                            for m in counts)


def estimate_time(run: Run, examples: list[Example], sentences: int, probe: bool,
                  missing: list[str]) -> list[str]:
    """Print the estimated extraction time (a timed probe batch, when ``probe`` and nothing is
    ``missing``), analysis time and figure time (see :mod:`.estimate`). Returns the problems
    that would stop the run: a model that fails its self-check or its probe batch."""
    from .analyses import plan, registered
    from .analyses.claims import Claims
    from .analyze import CLAIM_ANALYSES, table_context
    from .estimate import analysis_cost, analysis_seconds, duration, time_figure

    spec, d, a = run.spec, run.data, run.recipe.analysis
    problems: list[str] = []
    layers: list[str] = []
    recorded: dict[str, set[str]] = {}
    widths = [width for _, width in spec.sizes.values()]
    extraction = None
    if probe and examples and not missing:
        try:
            load, found, wrapper, extraction = _probe_extraction(run, examples)
        except ProbekitError as e:
            print(f"time: extraction not estimated: loading or the probe batch failed ({e})")
            problems.append(str(e))
        else:
            device = next(wrapper.model.parameters()).device
            print(f"time: extraction probe on {device.type} ("
                  + ", ".join(f"{found.examples[m]} {m}: {found.seconds[m] * 1e3:.0f} ms/example"
                              for m in found.seconds)
                  + f"; loading the model {load:.1f} s; scaled to the planned batches' padded "
                  f"length): about {duration(extraction)} for {len(examples)} examples"
                  + (f", {duration(2 * extraction)} with the control" if a.control else ""))
            layers, recorded, widths = list(found.recorded), found.recorded, \
                list(found.widths.values())
            if a.control:
                extraction *= 2
    else:
        print("time: extraction not estimated "
              + ("(--no-probe)" if not probe else
                 f"until the {'data' if not examples else 'weights'} are here")
              + f"; fidelity ({spec.name}): batch independence is measured when the weights "
              "load, before extraction")
    if not widths:
        print("time: analysis not estimated (the spec gives no sizes; run it where the weights "
              "are)")
        return problems
    if layers:
        comparisons = plan(a, spec.stacks, d.modalities, layers,
                           lambda layer: recorded.get(layer, set()), d.code_switch.pairs)
    else:  # sizes from the spec; every stack counted on every modality (an upper bound)
        comparisons = plan(a, {s: [f"{s}.*"] for s in spec.sizes}, d.modalities,
                           [f"{s}.{i}" for s, (blocks, _) in spec.sizes.items()
                            for i in range(blocks)], lambda layer: set(d.modalities),
                           d.code_switch.pairs)
    n = sentences or 350
    cost = analysis_cost(comparisons, d.languages, a.intervals, a.n_boot,
                         len(d.code_switch.pairs))
    lb = a.length_bins
    bins = (len(lb.edges) - 1 if lb.edges else lb.quantiles) if lb.by else 0
    zscored = set(spec.zscore) if a.zscore is None else set(spec.sizes) if a.zscore else set()
    passes = (Claims.passes(a, n) if any(c.analysis == "cross_modal" for c in comparisons)
              else [])  # the claims' rows again: robust k, z-scored CKA, spectrum-matched views
    redrawn = (a.claims.enabled and len(d.languages) < 3
               and any(c.analysis == "cross_modal" for c in comparisons))
    workers = max(1, min(a.workers, os.cpu_count() or 1))
    stack_widths = {stack: spec.sizes[stack][1] if stack in spec.sizes else max(widths)
                    for c in comparisons for stack in c.stack.split("~")}
    analysis = analysis_seconds(a, comparisons, d.languages, n, stack_widths, zscored,
                                len(d.code_switch.pairs), bins, passes, CLAIM_ANALYSES, redrawn,
                                workers)
    print(f"time: analysis of {cost.rows + cost.rows_with_intervals} rows "
          f"({cost.rows_with_intervals} with {a.n_boot}-draw intervals) x {len(a.measure_names)} "
          f"measure(s), {cost.views} views to decompose, timed here on n={n}"
          f"{'' if sentences else ' (assumed: the data is not here)'} x each stack's width (up "
          f"to {max(widths)}): "
          f"about {duration(analysis)}{' with the control' if a.control else ''}"
          + (f" in {workers} processes (analysis.workers)" if workers > 1 else "")
          + (f", with every analysis again in each of {bins} length bins" if bins else "")
          + (f", and the claims' rows {len(passes)} more times (robustness, spectrum-matched "
             "views)" if passes else "")
          + (f"; with {len(d.languages)} language(s) the claims are redrawn over sentences "
             f"({max(a.n_boot, 200)} draws of each claim row)" if redrawn else ""))
    ctx = table_context(run)  # the same analyses that draw them count the figures
    figures = (sum(x.count_figures(comparisons, len(a.measure_names), ctx) for x in registered())
               if run.recipe.report.figures else 0)
    drawing = figures * time_figure(len(d.languages)) if figures else 0.0
    if figures:
        print(f"time: {figures} figures (PNG and PDF): about {duration(drawing)}")
    if extraction is not None:
        print(f"time: about {duration(extraction + analysis + drawing)} in all on this machine")
    return problems
