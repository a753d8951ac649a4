"""``python -m probekit.run RECIPE [--out DIR] [--stage extract|analyze|report|all] [--dry-run]
[--quiet] [key=value ...]``: run a recipe from data to figures, resuming where it stopped.

Output folder: ``store/`` (activations), ``results/*.csv`` (tidy tables), ``figures/`` (PNG and
PDF), ``recipe.yaml`` (the resolved recipe and its hash) and ``run.log``. Extraction resumes from
the store's manifest; analysis is redone only when the analysis section or the store changed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .distributed import Group, Ranks, ranks_from_env
from .errors import ProbekitError, StoreLockedError, write_failure
from .recipe import Recipe, load_recipe, resolve_path, spec_of

log = logging.getLogger("probekit")


# -- data ------------------------------------------------------------------------------------
def examples_for(recipe: Recipe) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from . import data as D

    d = recipe.data
    if d.source == "manifest":
        rows = D.read_manifest(resolve_path(recipe, d.path))
    else:
        configs = fleurs_configs(d.languages)
        rows = (D.read_fleurs_local(resolve_path(recipe, d.path), configs, d.split)
                if d.source == "fleurs_local" else D.read_fleurs_hub(configs, d.split))
    if d.group_sentences > 1:  # paragraphs of k consecutive sentences of one document
        from .transforms import group_sentences, read_documents

        documents = read_documents(resolve_path(recipe, d.documents)) if d.documents else None
        rows, grouped = group_sentences(rows, d.languages, d.group_sentences, d.group_silence,
                                        documents)
        if not grouped["paragraphs"]:
            raise D.DataError(f"data.group_sentences: {d.group_sentences}: no run of "
                              f"{d.group_sentences} consecutive sentences of one document is in "
                              "every language; lower it, or check the sentence ids and documents")
        log.info("data: %d paragraphs of %d sentences (%d sentences left over at documents' "
                 "ends or gaps)", grouped["paragraphs"], d.group_sentences,
                 grouped["sentences_dropped"])
    examples, report = D.parallel_examples(rows, d.languages, d.modalities, d.max_sentences)
    cs = d.code_switch
    if cs.pairs:
        from .transforms import code_switched

        mixed, made = code_switched(
            examples, cs.pairs, cs.ratio, cs.boundary, d.modalities,
            audio=resolve_path(recipe, cs.audio) if cs.audio else None,
            alignments=resolve_path(recipe, cs.alignments) if cs.alignments else None)
        examples += mixed
        report["code_switched"] = made
    if d.target_language:
        texts = {(ex["lang"], ex["sentence"]): ex["text"] for ex in examples}
        for ex in examples:
            ex["target_lang"] = d.target_language
            ex["target_text"] = texts.get((d.target_language, ex["sentence"]), ex["text"])
    return examples, report


def fleurs_configs(langs: list[str]) -> dict[str, str]:
    from .languages import fleurs_config

    return {lang: fleurs_config(lang) for lang in langs}


# -- stages ----------------------------------------------------------------------------------
def store_recipe_hash(recipe: Recipe) -> str:
    """What made a store's data: the data, model and record sections and how inputs enter."""
    from .provenance import stable_hash
    from .wrappers import describe_inputs

    inputs = describe_inputs(spec_of(recipe))
    return stable_hash([recipe.section_hash("data", "model", "record"), inputs])


def data_root(recipe: Recipe) -> Path:
    """The folder audio paths are stored relative to (recorded once, in the store's provenance)."""
    from .data import fleurs_cache_root

    d = recipe.data
    if d.source == "fleurs":
        return fleurs_cache_root()
    path = resolve_path(recipe, d.path)
    return Path(os.path.abspath(path if d.source == "fleurs_local" else path.parent))


CONSECUTIVE_FAILURES = 10  # examples failing in a row: not bad examples, a broken run


def admit(ex: dict[str, Any], wrapper: Any, spec: Any) -> dict[str, Any]:
    """``ex`` ready to run (its audio loaded), or a DataError saying why it cannot run: a clip
    that is not a regular file, unreadable, non-finite, silent, too short or too long; a text
    (or decoder target) of more tokens than the model takes."""
    from .data import DataError, input_language, load_example_audio
    from .wrappers.spec import limit

    most = int(limit(spec, "max_text_tokens"))
    ex = dict(ex)
    for key in ("text", "target_text"):
        text = ex.get(key)
        if text and (key == "text" or len(text) > most):  # a token has at least one character;
            try:                                           # the text's count is stored
                n = wrapper.text_tokens(text, input_language(ex) if key == "text"
                                        else ex["target_lang"])
            except NotImplementedError:  # a model without a tokenizer (speech only)
                if len(text) > most:  # a token has at least one character
                    raise
                continue
            if n > most:
                raise DataError(f"{key.replace('_', ' ')} of {n} tokens ({len(text)} characters) "
                                f"is longer than the model takes ({most}, options.max_text_tokens)")
            if key == "text":
                ex["length"] = n  # tokens of the text (of a clip's transcript, for speech)
    if ex["modality"] == "speech":
        ex["audio"] = load_example_audio(ex, limit(spec, "max_seconds"),
                                         limit(spec, "min_seconds"))
        ex["duration"] = ex["audio"].size / 16000
    return ex


def record_batch(wrapper: Any, batch: list[dict[str, Any]], record: Any) -> Any:
    """One batch through the model under a Recorder (whose hooks leave whatever happens)."""
    from .batch import capture

    rec, _ = capture(wrapper, batch, record.stacks, pool=record.pool, dtype=record.dtype,
                     token_stride=record.token_stride, max_positions=record.max_positions)
    return rec.collect()


def take_rows(layers: dict[str, Any], keep: list[int], b: int) -> dict[str, Any]:
    """The rows ``keep`` of a batch of ``b`` examples' recorded layers."""
    out = {}
    for name, value in layers.items():
        if isinstance(value, (list, tuple)):
            if len(value) != b:
                raise ValueError(f"layer {name!r}: {len(value)} token arrays for {b} examples")
            out[name] = [value[k] for k in keep]
        else:
            out[name] = value[keep]
    return out


def _stored(key: str, value: Any, root: Path) -> Any:
    """An example column as the store keeps it: audio paths relative to the data root (parts
    of a joined clip separated by ``|``), lists as text."""
    if key == "audio_path":
        paths = [value] if isinstance(value, str) else value
        return "|".join(os.path.relpath(p, root) for p in paths)
    return str(value) if isinstance(value, (list, tuple)) else value


def _failure(e: BaseException) -> str:
    text = str(e).splitlines()[0][:200] if str(e) else ""
    return f"the model failed on it alone: {type(e).__name__}" + (f": {text}" if text else "")


def plan_batches(recipe: Recipe, examples: list[dict[str, Any]], wrapper: Any,
                 ranks: Ranks) -> list[list[dict[str, Any]]]:
    """This process's batches of the run's plan (:mod:`probekit.batching`): all of them in a
    single process, its share (balanced by padded length) under torchrun."""
    from . import batching
    from .distributed import assign

    r = recipe.record
    lengths = None
    if ranks.world > 1 or r.max_batch_tokens is not None or r.max_batch_seconds is not None:
        t0 = time.time()
        lengths = [batching.example_length(ex, wrapper.text_tokens) for ex in examples]
        log.info("%sextract: lengths of %d examples measured in %.1f s", ranks.tag,
                 len(examples), time.time() - t0)
    batches = batching.plan(examples, r.batch_size, lengths, r.max_batch_tokens,
                            r.max_batch_seconds, r.sort_window)
    if ranks.world == 1:
        return batches
    length_of = {ex["id"]: n for ex, n in zip(examples, lengths or [])}
    costs = [batching.padded_cost(b, length_of) for b in batches]
    owners = assign(costs, ranks.world)
    mine = [b for b, o in zip(batches, owners) if o == ranks.rank]
    log.info("%sextract: %d of %d batches (%.0f%% of the padded length)", ranks.tag, len(mine),
             len(batches), 100 * sum(c for c, o in zip(costs, owners) if o == ranks.rank)
             / max(sum(costs), 1e-9))
    return mine


def open_writer(recipe: Recipe, out: Path, provenance: dict[str, Any], overwrite: bool,
                group: Group) -> Any:
    """This process's writer of ``out/store``; under torchrun rank 0 opens (or deletes, with
    ``overwrite``) the store first, then the others open theirs."""
    from .store import StoreWriter

    def open_() -> Any:
        return StoreWriter(out / "store", backend=recipe.record.backend,
                           shard_size=recipe.record.shard_size,
                           recipe_hash=store_recipe_hash(recipe), provenance=provenance,
                           overwrite=overwrite and group.ranks.main, rank=group.ranks.rank)

    writer = open_() if group.ranks.main else None
    if writer is not None:
        adopt_orphans(writer, group.ranks.world)
    group.barrier()
    writer = writer or open_()
    group.barrier()  # every writer open: what killed runs left is cleaned up
    return writer


def adopt_orphans(writer: Any, world: int) -> None:
    """Close the writer ranks of an earlier run with more processes (rank >= ``world``): their
    shards are checked (a damaged one is dropped, so its examples are redone now), what they
    left is removed, and they are marked complete; their missing examples are this run's."""
    from .store import StoreWriter, layout

    for path in layout.manifests(writer.root):
        rank = int(path.stem.removeprefix("manifest-r"))
        if rank < world:
            continue
        try:
            orphan = StoreWriter(writer.root, backend=writer.backend, rank=rank,
                                 recipe_hash=writer.recipe_hash, shard_size=writer.shard_size)
        except StoreLockedError as e:  # a process of another launch still writes it
            log.warning("writer rank %d is still held: %s", rank, e)
            continue
        orphan.close()
        log.info("extract: writer rank %d of an earlier run with more processes checked (%d "
                 "damaged shards dropped) and closed; this run records what it lacks", rank,
                 len(orphan.repaired))


def extract(recipe: Recipe, out: Path, quiet: bool = False, overwrite: bool = False,
            group: Group | None = None) -> None:
    """Record every example of ``recipe`` into ``out/store``, resuming what is there. An example
    that cannot run is skipped with its reason recorded in the store (``data.fail_fast`` stops
    instead); a batch that fails is rerun example by example, so one bad example costs only
    itself, and :data:`CONSECUTIVE_FAILURES` failing in a row stop the run (the model, not the
    data, is at fault), leaving them to the next run. Under torchrun (``group``) each process
    records its share of the batches as its own writer rank."""
    from tqdm import tqdm

    from .data import DataError
    from .provenance import library_versions
    from .store import committed_ids
    from .wrappers import describe_inputs, load_model

    examples, report = examples_for(recipe)
    unit = "paragraphs" if recipe.data.group_sentences > 1 else "sentences"
    log.info("data: %d %s x %d languages x %d modalities%s; %d %s missing in some language "
             "dropped everywhere; %d empty texts", report["sentences"], unit,
             len(recipe.data.languages), len(recipe.data.modalities),
             f" + {sum(report['code_switched'].values())} code-switched examples"
             if "code_switched" in report else "",
             report["dropped_not_in_every_language"], unit, report["empty_text"])
    spec = spec_of(recipe)
    root = data_root(recipe)
    provenance = {"model": spec.name, "checkpoint": spec.checkpoint, "revision": spec.revision,
                  "variant": recipe.model.variant, "model_dtype": recipe.model.dtype or spec.dtype,
                  "pool": recipe.record.pool, "dtype": recipe.record.dtype,
                  "inputs": describe_inputs(spec), "data_root": str(root),
                  "stacks": {s: list(spec.stacks[s]) for s in recipe.record.stacks or spec.stacks},
                  "versions": library_versions()}
    fail_fast = recipe.data.fail_fast
    group = group or Group(Ranks())
    ranks = group.ranks
    with open_writer(recipe, out, provenance, overwrite, group) as writer:
        if writer.repaired:
            log.warning("%sextract: %d damaged shard(s) dropped; their %d examples are "
                        "recomputed", ranks.tag, len(writer.repaired),
                        sum(len(d.ids) for d in writer.repaired))
        done = committed_ids(out / "store")  # stored or skipped by earlier runs (every rank)
        if all(ex["id"] in done for ex in examples):
            log.info("%sextract: all %d examples already in the store", ranks.tag, len(examples))
            return
        wrapper = load_model(spec, variant=recipe.model.variant, dtype=recipe.model.dtype,
                             **placement(recipe, ranks))
        mine = plan_batches(recipe, examples, wrapper, ranks)
        todo = sum(ex["id"] not in done for batch in mine for ex in batch)
        bar = tqdm(total=todo, desc=f"extract{f' r{ranks.rank}' if ranks.world > 1 else ''}",
                   unit="ex", disable=quiet or ranks.local_rank != 0)
        failing: list[tuple[str, str]] = []  # failed alone, in a row: skipped once one succeeds

        def skip(ex_id: str, reason: str) -> None:
            log.warning("skipping %s: %s", ex_id, reason)
            writer.skip(ex_id, reason)

        def store(batch: list[dict[str, Any]], layers: Any) -> None:
            for ex_id, reason in failing:
                skip(ex_id, reason)
            failing.clear()
            keep = [k for k, ex in enumerate(batch) if ex["id"] not in done]
            if len(keep) < len(batch):  # a batch rerun around examples already stored
                layers = take_rows(layers.resolve(), keep, len(batch))
                batch = [batch[k] for k in keep]
            meta = [{k: _stored(k, v, root) for k, v in ex.items() if k != "audio"}
                    for ex in batch]
            writer.add(meta, layers)

        # Batches are made from every example, so a resumed run pads and computes each example in
        # the same batch as an uninterrupted run (bit for bit the same numbers): a batch with
        # some examples done already runs whole, and only the others are stored or skipped.
        for batch in mine:
            new = sum(ex["id"] not in done for ex in batch)
            if not new:
                continue
            ready = []
            for ex in batch:
                try:
                    ready.append(admit(ex, wrapper, spec))
                except DataError as e:
                    if ex["id"] in done:
                        continue
                    if fail_fast:
                        raise
                    skip(ex["id"], str(e))
            if not ready:
                bar.update(new)
                continue
            try:
                store(ready, record_batch(wrapper, ready, recipe.record))
            except ProbekitError:
                raise
            except Exception as e:
                if fail_fast:
                    raise DataError(f"a batch of {len(ready)} examples failed ({_failure(e)}) "
                                    "and data.fail_fast is set; remove it to skip the examples "
                                    "that fail alone") from e
                log.warning("a batch of %d examples failed (%s: %s); running them one by one",
                            len(ready), type(e).__name__, str(e).splitlines()[0][:120] if str(e)
                            else "")
                _free_memory()
                for ex in ready:
                    try:
                        layers = record_batch(wrapper, [ex], recipe.record)
                    except ProbekitError:
                        raise
                    except Exception as e1:
                        if ex["id"] in done:
                            continue  # stored by an earlier run: it ran then
                        failing.append((ex["id"], _failure(e1)))
                        _free_memory()
                        if len(failing) >= CONSECUTIVE_FAILURES:
                            raise ProbekitError(
                                f"{len(failing)} examples in a row failed alone (the last, "
                                f"{ex['id']}: {_failure(e1)}): the model or the recipe is at "
                                "fault, not the data. Fix it and run the same command again; "
                                "they are not recorded as skipped") from None
                        continue
                    if ex["id"] not in done:
                        store([ex], layers)
            bar.update(new)
        for ex_id, reason in failing:  # the run ended on them: they are bad examples
            skip(ex_id, reason)
        bar.close()
    log.info("%sextract: %s", ranks.tag, writer.summary())


def placement(recipe: Recipe, ranks: Ranks) -> dict[str, Any]:
    """Where the weights go: the recipe's device (each torchrun process on its own GPU), or
    spread over the GPUs (``device_map``), possibly quantized."""
    from .distributed import device_for

    m = recipe.model
    if m.device_map and ranks.world > 1:
        raise ProbekitError("model.device_map spreads one model over the GPUs; under torchrun "
                            "each process takes one GPU. Use one of the two: remove "
                            "model.device_map, or start a single process")
    out: dict[str, Any] = {"device": device_for(m.device or spec_of(recipe).device, ranks)}
    if m.device_map:
        out["device_map"] = m.device_map
    if m.quantize:
        out["quantize"] = m.quantize
    return out


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def control_recipe(recipe: Recipe) -> Recipe:
    """The same recipe on the same architecture with random weights (the ``random_init``
    control): variant ``random`` (the tiny variant stays tiny), weights seeded with the spec's
    seed + ``analysis.seed`` + 1, so they differ from the tiny variant's own."""
    import dataclasses


    spec = spec_of(recipe)
    seed = int(spec.tiny.get("seed", 0)) + recipe.analysis.seed + 1
    overrides = dict(recipe.model.overrides)
    overrides["tiny"] = {**dict(overrides.get("tiny") or {}), "seed": seed}
    model = dataclasses.replace(recipe.model, overrides=overrides,
                                variant="tiny" if recipe.model.variant == "tiny" else "random")
    return dataclasses.replace(recipe, model=model)


def _similarities(recipe: Recipe, store: Any, intervals: bool, quiet: bool, label: str,
                  sentences: Any = None) -> dict[str, list]:
    """Rows of one store by analysis (``cross_modal``, ``cross_lingual``, ``adaptation``,
    ``code_switched``), on ``sentences`` only when given (a length bin)."""
    from tqdm import tqdm

    from .analysis import Comparer, code_switched, cross_lingual, cross_modal, paired_views
    from .analysis.plan import plan, stack_layers
    from .transforms import pair_name

    spec = spec_of(recipe)
    a = recipe.analysis
    langs = recipe.data.languages

    def views_of(languages: list[str], modalities: list[str]) -> Any:
        views = paired_views(store, languages, modalities)
        return views if sentences is None else views.subset(sentences)

    views = views_of(langs, recipe.data.modalities)
    log.info("analyze%s: %d sentences paired across every language and modality (%d dropped)",
             label, len(views.sentences), views.dropped)
    zscored = {layer for stack in spec.zscore for layer in
               stack_layers(spec.stacks.get(stack, []), store.layers)}
    zscore = a.zscore if a.zscore is not None else (lambda key: key[0] in zscored)

    def comparer(analysis: str, on: Any = views) -> Comparer:
        n_boot = a.n_boot if intervals and analysis in a.intervals else 0
        return Comparer(on, a.measures, variance=a.variance, k=a.k, zscore=zscore,
                        n_perm=a.n_perm, n_boot=n_boot, ci=a.ci, seed=a.seed,
                        allow_large_k=a.allow_large_k)

    comparisons = plan(a, spec.stacks, recipe.data.modalities, store.layers,
                       lambda layer: set(store.recorded(layer)["modality"]))
    pairs = recipe.data.code_switch.pairs
    bar = tqdm(total=sum(c.depths * (len(pairs) if c.analysis == "code_switched" else 1)
                         for c in comparisons if c.analysis != "adaptation"),
               desc=f"analyze{label}", unit="layer", disable=quiet)
    rows: dict[str, list] = {"cross_modal": [], "cross_lingual": [], "adaptation": [],
                             "code_switched": []}
    mixed_here = set(zip(store.examples["lang"].astype(str), store.examples["modality"]))
    for c in comparisons:
        if c.analysis == "cross_modal":
            rows["cross_modal"] += cross_modal(comparer("cross_modal"), c.pairs, langs,
                                               stack=c.stack, progress=lambda: bar.update(1))
        elif c.analysis == "cross_lingual":
            rows["cross_lingual"] += cross_lingual(comparer("cross_lingual"), c.layers, langs,
                                                   c.modality, stack=c.stack,
                                                   progress=lambda: bar.update(1))
        elif c.analysis == "code_switched":
            for first, second in pairs:
                mixed = pair_name(first, second)
                if (mixed, c.modality) not in mixed_here:
                    log.info("analyze: no code-switched %s examples %s", c.modality, mixed)
                    bar.update(c.depths)
                    continue
                on = views_of([first, second, mixed], [c.modality])
                rows["code_switched"] += code_switched(
                    comparer("code_switched", on), c.layers, first, second, mixed, c.modality,
                    stack=c.stack, progress=lambda: bar.update(1))
        else:
            rows["adaptation"] = cross_modal(comparer("cross_modal"), c.pairs, langs,
                                             stack="adaptation")
    bar.close()
    return rows


def analyze(recipe: Recipe, out: Path, quiet: bool = False, verify: bool = True) -> None:
    """Similarities, modality gap, length adaptation, group means, code switching, length bins
    and agreement tables of ``out``'s stores (skipped when they are up to date). ``verify``
    checks every shard's checksum first (an extraction in the same command has just checked
    them)."""
    import pandas as pd

    from .analysis import (code_switching, family_distance_means, group_means,
                           length_adaptation, measure_agreement, modality_gap)
    from .languages import DISTANCES, family_distance
    from .report import paper_table, to_latex, to_markdown, write_table
    from .store import open_store

    a = recipe.analysis
    store = open_store(out / "store")
    control = open_store(out / "control" / "store") if a.control else None
    key = recipe.section_hash("analysis", "model") + f"-{len(store)}-{store.recipe_hash}" + (
        f"-{len(control)}-{control.recipe_hash}" if control is not None else "")
    stamp = out / "results" / "analysis.hash"
    if stamp.exists() and stamp.read_text() == key:
        log.info("analyze: results are up to date")
        return
    if verify:  # every shard's checksum, each byte read once
        for s in (store, control):
            if s is not None:
                s.check()
    spec = spec_of(recipe)
    rows = _with_control(recipe, store, control, True, quiet)
    cm, cl, cs = rows["cross_modal"], rows["cross_lingual"], rows["code_switched"]
    resource = resource_levels(recipe)
    found = groupings(recipe)
    for name in [n for n in ("resource", *a.groups) if n not in found]:
        log.info("analyze: no group means by %s: this run's languages are in one group", name)
    means = [row for name, groups in found.items()
             for row in group_means(cm + cl, groups, name, a.ci)]
    if distance_classes(recipe) > 1:
        means += family_distance_means(cl, family_distance, DISTANCES, a.ci)
    tables = {"similarities": cm + cl + cs,
              "modality_gap": modality_gap(cm, cl) if cm and cl else [],
              "group_means": means, "code_switching": code_switching(cs)}
    if rows["adaptation"]:
        tables["length_adaptation"] = length_adaptation(rows["adaptation"], a.adaptation_points,
                                                        resource)
    if len(a.measures) > 1:
        tables["measure_agreement"] = measure_agreement(cm + cl)
    if a.length_bins.by:
        tables["length_bins"], tables["similarities_by_length"] = length_binned(
            recipe, store, control, quiet)
    model = spec.name + (f"-{recipe.model.variant}" if recipe.model.variant else "")
    stamp_columns = {  # what made every table: model, weights, recipe
        "model": model, "checkpoint": spec.checkpoint,
        "revision": "random weights" if recipe.model.variant else spec.revision,
        "recipe_hash": recipe.section_hash("data", "model", "record", "analysis")}
    for name, table_rows in tables.items():
        if table_rows:
            df = pd.DataFrame(table_rows)
            for i, (column, value) in enumerate(stamp_columns.items()):
                df.insert(1 + i, column, value)
            if "ci_level" not in df:
                df["ci_level"] = a.ci
            write_table(df, out / "results" / name)
            if name == "group_means":  # as paper tables: one per grouping
                md, tex = [], []
                for (grouping, kind), part in df.groupby(["grouping", "analysis"], sort=False):
                    wide = paper_table(part)
                    what = kind.replace("_", "-")
                    md.append(f"## {what} by {grouping}\n\n{to_markdown(wide)}")
                    tex.append(to_latex(wide, (
                        f"{model} ({spec.checkpoint}): mean chance-adjusted {what} similarity by "
                        f"{grouping}, {a.ci:.0%} t-intervals over languages (none for fewer "
                        f"than 3); control: {a.control or 'none'}")))
                (out / "results" / "group_means.md").write_text("\n".join(md))
                (out / "results" / "group_means.tex").write_text("\n".join(tex))
    stamp.write_text(key)
    log.info("analyze: %s", ", ".join(f"{k} {len(v)} rows" for k, v in tables.items() if v))


def _with_control(recipe: Recipe, store: Any, control: Any, intervals: bool, quiet: bool,
                  sentences: Any = None, label: str = "") -> dict[str, list]:
    """:func:`_similarities` of the store, with the control store's scores beside each row."""
    from .analysis import with_control

    rows = _similarities(recipe, store, intervals, quiet, label, sentences)
    if control is not None:
        name = recipe.analysis.control
        other = _similarities(recipe, control, False, quiet, f"{label} (control: {name})",
                              sentences)
        rows = {k: with_control(v, other[k], name) for k, v in rows.items()}
    return rows


def length_binned(recipe: Recipe, store: Any, control: Any, quiet: bool
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every analysis again within each length bin (``analysis.length_bins``; no half-sampling
    intervals): the cross-modal and length-adaptation means by resource level per bin, and the
    binned rows themselves."""
    from .analysis import (AnalysisError, group_means, length_adaptation, make_bins,
                           paired_views, sentence_lengths)

    a, lb = recipe.analysis, recipe.analysis.length_bins
    paired = paired_views(store, recipe.data.languages, recipe.data.modalities).sentences
    lengths = sentence_lengths(store.examples, recipe.data.languages, lb.by)
    fewest = 5 if a.k is None or a.allow_large_k else max(5, 4 * a.k)  # kx + ky <= n / 2
    try:
        bins = make_bins(lengths, lb.by, paired, lb.quantiles, lb.edges, lb.n, a.seed, fewest)
    except AnalysisError as e:
        raise AnalysisError(f"{e}" + (f" (analysis.k: {a.k} needs {fewest} per bin)"
                                      if fewest > 5 else "")) from None
    resource = resource_levels(recipe)
    summary, binned = [], []
    for b in bins:
        log.info("analyze: length bin %d (%s): %d sentences, %d kept", b.index, b.label,
                 b.available, len(b.sentences))
        rows = _with_control(recipe, store, control, False, quiet, b.sentences,
                             f" (length bin {b.label})")
        tag = {"length_bin": b.label, "bin_index": b.index, "bin_low": b.low,
               "bin_high": b.high, "bin_unit": b.unit, "sentences_in_bin": b.available,
               "n_sentences": len(b.sentences)}
        binned += [{**tag, **r} for kind in rows.values() for r in kind]
        summary += [{**tag, **r, "point": f"depth {r['depth']}"}
                    for r in group_means(rows["cross_modal"], resource, "resource", a.ci)]
        if rows["adaptation"]:
            summary += [{**tag, **{k: v for k, v in r.items() if k != "resource"},
                         "stack": "adaptation", "group": r["resource"], "grouping": "resource",
                         "ci_level": 0.95}
                        for r in length_adaptation(rows["adaptation"], a.adaptation_points,
                                                   resource)]
    return summary, binned


def resource_levels(recipe: Recipe) -> dict[str, str]:
    """Each language's resource level: ``analysis.resource``, else probekit's levels."""
    from .languages import resource_level

    return {lang: recipe.analysis.resource.get(lang) or resource_level(lang)
            for lang in recipe.data.languages}


def groupings(recipe: Recipe) -> dict[str, dict[str, str]]:
    """The ways of grouping the run's languages for group means (``lang -> group``): resource
    level, family, genus and script (:mod:`probekit.languages`) and ``analysis.groups`` (which
    may replace them), each kept when the run's languages fall in at least two of its groups."""
    from .languages import family, genus, script

    langs = recipe.data.languages
    registry = {name: {lang: of(lang) for lang in langs if of(lang)}
                for name, of in (("family", family), ("genus", genus), ("script", script))}
    return {name: groups for name, groups in
            {"resource": resource_levels(recipe), **registry, **recipe.analysis.groups}.items()
            if len({groups[lang] for lang in langs if lang in groups}) > 1}


def distance_classes(recipe: Recipe) -> int:
    """How many family distances (same genus, same family, different families) the run's
    pairs of languages span."""
    from itertools import combinations

    from .languages import family_distance

    return len({family_distance(x, y) for x, y in combinations(recipe.data.languages, 2)}
               - {None})


def write_figures(recipe: Recipe, out: Path) -> list[Path]:
    """The report stage: figures of ``out``'s result tables, as PNG and PDF."""
    import pandas as pd

    from . import report as R

    results, figures = out / "results", out / "figures"
    written: list[Path] = []
    sims = results / "similarities.csv"
    if not sims.exists():
        raise ProbekitError(f"no results in {results}; run the analyze stage first")
    df = pd.read_csv(sims)
    first = df["measure"].iloc[0]  # the recipe's first measure: figures without a suffix
    resource = resource_levels(recipe)
    from .languages import family, genus

    families = {lang: family(lang) or "unknown family" for lang in recipe.data.languages}
    by_family = len(set(families.values())) > 1
    order = sorted(recipe.data.languages, key=lambda lang: (
        (families[lang], genus(lang)) if by_family else (), resource[lang], lang))

    def suffix(measure: str) -> str:
        return "" if measure == first else f"_{measure}"
    for (measure, analysis, stack), sub in df.groupby(["measure", "analysis", "stack"]):
        tag = suffix(measure)
        if analysis == "cross_modal":
            written += R.save_figure(
                R.plot_layer_curves(sub, f"speech vs text, {R.stack_label(stack)}",
                                    groups=resource),
                figures / f"cross_modal_{stack.replace('~', '-')}{tag}")
        elif analysis == "cross_lingual":
            for modality, part in sub.groupby("modality_a"):
                depth = int(part["depth"].max())
                written += R.save_figure(
                    R.plot_language_matrix(part, depth, modality, order=order,
                                           blocks=families if by_family else None),
                    figures / f"cross_lingual_{stack}_{modality}_last{tag}")
    if (results / "group_means.csv").exists():
        groups = pd.read_csv(results / "group_means.csv")
        for (measure, analysis, grouping), sub in groups.groupby(
                ["measure", "analysis", "grouping"], sort=False):
            by = "" if grouping == "resource" else f"_by_{grouping}"
            written += R.save_figure(R.plot_group_means(sub),
                                     figures / f"group_means_{analysis}{by}{suffix(measure)}")
    for name, plot in (("modality_gap", R.plot_modality_gap),
                       ("length_adaptation", R.plot_adaptation_bars),
                       ("code_switching", R.plot_code_switching),
                       ("length_bins", R.plot_length_bins)):
        if (results / f"{name}.csv").exists():
            table = pd.read_csv(results / f"{name}.csv")
            for measure, sub in table.groupby("measure"):
                written += R.save_figure(plot(sub), figures / f"{name}{suffix(measure)}")
    if (results / "measure_agreement.csv").exists():
        written += R.save_figure(R.plot_measure_agreement(
            pd.read_csv(results / "measure_agreement.csv")), figures / "measure_agreement")
    return written


def summary(out: Path) -> str:
    """The closing summary: mean scores over languages per measure, analysis, stack, modality
    (speech and text apart) and depth."""
    import pandas as pd

    sims = out / "results" / "similarities.csv"
    if not sims.exists():
        return ""
    df = pd.read_csv(sims)
    columns = [c for c in ("adjusted", "control_adjusted", "score", "chance") if c in df]
    df["modality"] = df["modality_a"].where(df["modality_a"] == df["modality_b"],
                                            df["modality_a"] + "~" + df["modality_b"])
    table = df.groupby(["measure", "analysis", "stack", "modality", "depth"])[columns].mean()
    return ("mean over languages, each modality apart (adjusted = (score - chance) / "
            "(1 - chance); control: the same recipe on random weights)\n"
            + table.round(3).to_string())


# -- command line ------------------------------------------------------------------------------
def dry_run(recipe: Recipe, probe: bool = True) -> list[str]:
    """Validate, resolve the data, print what would be recorded and what is missing, and
    estimate the run's time: when the weights and the data are here (and ``probe``), a timed
    probe batch of each modality, and the analysis timed on views of its size. Returns what must
    be downloaded first (empty when the run can start here)."""
    from .analysis.plan import stack_layers
    from .wrappers import load_model, wrapper_class

    d, r = recipe.data, recipe.record
    spec = spec_of(recipe)
    tiny = recipe.model.variant == "tiny"
    print(f"recipe {recipe.path}: model {spec.name} "
          f"({'tiny random weights' if tiny else spec.checkpoint})")
    downloads: list[str] = []
    examples: list[dict[str, Any]] = []
    sentences = 0
    if d.source == "fleurs":
        from .data import FLEURS_REPO, fleurs_missing
        missing = fleurs_missing(fleurs_configs(d.languages), d.split)
        if missing:
            downloads.append(f"dataset {FLEURS_REPO} (split {d.split}): {len(missing)} files "
                             f"not cached, e.g. {', '.join(missing[:2])}")
    if not downloads:
        examples, rep = examples_for(recipe)
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
    a = recipe.analysis
    print(f"analysis: {', '.join(a.measures)}, "
          + (f"k={a.k}" if a.k else f"{a.variance:g} variance rule")
          + f", chance from {a.n_perm} permutations per row"
          + (f", {a.ci:.0%} half-sampling intervals ({a.n_boot} draws) on "
             f"{', '.join(a.intervals)} rows" if a.n_boot else ", no intervals"))
    if a.control:
        print(f"control: {a.control}: the same recipe on {spec.name}'s architecture with random "
              f"weights, extracted again into OUT/control/store (doubles the extraction time)")
    from .wrappers import fidelity
    for line in fidelity(spec):
        print(f"fidelity ({spec.wrapper}): {line}")
    if per_example:
        n = len(examples) or 1000 * len(d.languages) * len(d.modalities)
        tokens = " per token" if r.pool == "none" else ""
        print(f"estimated store size: up to {n * per_example / 1e9:.1f} GB{tokens} "
              f"for {n} examples "
              f"({per_example / 1e6:.2f} MB each, {r.dtype}"
              f"{'; at 1000 sentences' if not examples else ''})")
    estimate_time(recipe, spec, examples, sentences, probe, downloads)
    if downloads:
        print("to download before this recipe can run here (each is fetched once and cached):")
        for item in downloads:
            print(f"  - {item}")
    else:
        print("ready: everything this recipe needs is available here")
    return downloads


def probe_batches(recipe: Recipe, examples: list[dict[str, Any]], wrapper: Any
                  ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Per modality, a batch of the run's plan to time (the median by padded length) and the
    ratio of the plan's padded length per example to that batch's: the probe's time per example
    times the ratio is the plan's, with its batch budgets and its padding."""
    from .batching import example_length, padded_cost, plan

    r = recipe.record
    lengths = [example_length(ex, wrapper.text_tokens) for ex in examples]
    length_of = {ex["id"]: n for ex, n in zip(examples, lengths)}
    planned = plan(examples, r.batch_size, lengths, r.max_batch_tokens, r.max_batch_seconds,
                   r.sort_window)
    batches, share = {}, {}
    for m in recipe.data.modalities:
        mine = sorted((padded_cost(b, length_of), k) for k, b in enumerate(planned)
                      if b[0]["modality"] == m)
        if not mine:
            continue
        cost, k = mine[len(mine) // 2]
        batches[m] = planned[k]
        per_example = sum(c for c, _ in mine) / sum(len(planned[j]) for _, j in mine)
        share[m] = per_example / (cost / len(planned[k])) if cost > 0 else 1.0
    return batches, share


def estimate_time(recipe: Recipe, spec: Any, examples: list[dict[str, Any]],
                  sentences: int, probe: bool, missing: list[str]) -> None:
    """Print the estimated extraction time (a timed probe batch, when ``probe`` and nothing is
    ``missing``), analysis time and figure time (see :mod:`probekit.estimate`)."""
    from collections import Counter

    from .analysis.plan import plan
    from .errors import ProbekitError as Refused
    from .estimate import (analysis_cost, duration, figures_count, probe_extraction,
                           time_comparisons, time_figure)
    from .wrappers import load_model

    d, a = recipe.data, recipe.analysis
    layers: list[str] = []
    recorded: dict[str, set[str]] = {}
    widths = [width for _, width in spec.sizes.values()]
    extraction = None
    if probe and examples and not missing:
        try:
            if recipe.model.variant != "tiny":
                print("time: loading the weights for a probe batch (--no-probe skips it)")
            start = time.perf_counter()  # as extraction loads it, with the load-time self-check
            wrapper = load_model(spec, variant=recipe.model.variant, dtype=recipe.model.dtype)
            load = time.perf_counter() - start
            batches, share = probe_batches(recipe, examples, wrapper)
            found = probe_extraction(batches, lambda ex: admit(ex, wrapper, spec),
                                     lambda batch: record_batch(wrapper, batch, recipe.record))
        except Refused as e:
            print(f"time: extraction not estimated: the probe batch failed ({e})")
        else:
            counts = Counter(ex["modality"] for ex in examples)
            extraction = load + sum(found.seconds[m] * counts[m] * share[m] for m in counts)
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
    elif not probe:
        print("time: extraction not estimated (--no-probe)")
    else:
        print(f"time: extraction not estimated until the {'data' if not examples else 'weights'} "
              "are here")
    if layers:
        comparisons = plan(a, spec.stacks, d.modalities, layers,
                           lambda layer: recorded.get(layer, set()))
    else:  # sizes from the spec; every stack counted on every modality (an upper bound)
        comparisons = plan(a, {s: [f"{s}.*"] for s in spec.sizes}, d.modalities,
                           [f"{s}.{i}" for s, (blocks, _) in spec.sizes.items()
                            for i in range(blocks)], lambda layer: set(d.modalities))
    if not widths:
        print("time: analysis not estimated (the spec gives no sizes; run it where the weights "
              "are)")
        return
    n = sentences or 350
    cost = analysis_cost(comparisons, d.languages, a.intervals, a.n_boot,
                         len(d.code_switch.pairs))
    times = time_comparisons(a, n, max(widths))
    analysis = times.total(cost) + (times.total(cost, intervals=False) if a.control else 0)
    lb = a.length_bins
    bins = (len(lb.edges) - 1 if lb.edges else lb.quantiles) if lb.by else 0
    analysis += bins * times.total(cost, intervals=False) * (2 if a.control else 1)  # an upper
    # bound: each bin is the whole analysis again on fewer sentences, without intervals
    print(f"time: analysis of {cost.rows + cost.rows_with_intervals} rows "
          f"({cost.rows_with_intervals} with {a.n_boot}-draw intervals) x {len(a.measures)} "
          f"measure(s), {cost.views} views to decompose, timed here on n={n}"
          f"{'' if sentences else ' (assumed: the data is not here)'} x {max(widths)} views: "
          f"about {duration(analysis)}{' with the control' if a.control else ''}"
          + (f", with every analysis again in each of {bins} length bins" if bins else ""))
    figures = (figures_count(comparisons, a.measures, len(groupings(recipe)),
                             distance_classes(recipe) > 1, bool(a.length_bins.by))
               if recipe.report.figures else 0)
    drawing = figures * time_figure(len(d.languages)) if figures else 0.0
    if figures:
        print(f"time: {figures} figures (PNG and PDF): about {duration(drawing)}")
    if extraction is not None:
        print(f"time: about {duration(extraction + analysis + drawing)} in all on this machine")


OWN = ("store", "control", "results", "figures", "recipe.yaml", "run.log")  # all a run writes


def check_output_folder(out: Path) -> None:
    """Refuse, writing nothing, an output folder that cannot be written or that holds anything
    a run does not make (:data:`OWN`): the user's files there are never touched."""
    if out.exists() and not out.is_dir():
        raise ProbekitError(f"--out {out} is a file, not a folder; give a new or empty folder")
    if out.is_dir():
        try:
            foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN)
        except OSError as e:
            raise ProbekitError(f"cannot read the output folder {out}: {e.strerror or e}") from None
        if foreign:
            raise ProbekitError(
                f"output folder {out} holds {len(foreign)} item(s) a probekit run does not make "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); a run writes "
                f"only {', '.join(OWN)} there and touches nothing else. Give a new or empty "
                "folder with --out")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ProbekitError(f"cannot write the output folder {out}: {existing} is not a writable "
                            "folder; choose a writable folder with --out")


def check_stores(recipe: Recipe, out: Path) -> None:
    """Refuse, writing nothing, stores in ``out`` made by another recipe (--overwrite replaces
    them)."""
    from .errors import RecipeMismatchError
    from .store import layout

    pairs = [(recipe, out)] + ([(control_recipe(recipe), out / "control")]
                               if recipe.analysis.control else [])
    for r, folder in pairs:
        meta_path = layout.store_json(folder / "store")
        if meta_path.exists():
            made_by = layout.read_json(meta_path).get("recipe_hash")
            if made_by != store_recipe_hash(r):
                raise RecipeMismatchError(
                    f"store {folder / 'store'} was made by recipe {made_by}, and this recipe's "
                    f"data, model or record section differs ({store_recipe_hash(r)}). Write to a "
                    "new folder (--out), or pass --overwrite to delete the old store; nothing "
                    "was written")


def prepare_output(recipe: Recipe, out: Path, overwrite: bool, check: bool) -> None:
    """Check the output folder (and its stores, for an extraction), create it and write the
    resolved recipe."""
    check_output_folder(out)
    if check and not overwrite:
        check_stores(recipe, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ProbekitError(f"cannot create the output folder {out}: {e.strerror or e}; "
                            "choose a writable folder with --out") from None
    if overwrite:
        (out / "results" / "analysis.hash").unlink(missing_ok=True)
    (out / "recipe.yaml").write_text(yaml.safe_dump(
        {**recipe.to_dict(), "hash": recipe.section_hash("data", "model", "record",
                                                        "analysis")}, sort_keys=False))


class RunLog(logging.FileHandler):
    """``run.log``; a write that fails (a full disk) warns once instead of a traceback a line."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            print(f"warning: cannot write {self.baseFilename} ({sys.exc_info()[1]}); the log "
                  "goes on on the screen only", file=sys.stderr)


def main(argv: list[str] | None = None, prog: str = "python -m probekit.run") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__)
    ap.add_argument("recipe")
    ap.add_argument("overrides", nargs="*", help="dotted overrides, e.g. record.batch_size=8")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default runs/NAME)")
    ap.add_argument("--stage", choices=["extract", "analyze", "report", "all"], default="all")
    ap.add_argument("--dry-run", action="store_true",
                    help="validate, list what is missing, estimate the time")
    ap.add_argument("--no-probe", action="store_true",
                    help="dry run: do not load the weights to time a probe batch")
    ap.add_argument("--overwrite", action="store_true",
                    help="delete this folder's stores and results and start afresh")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    group = None
    try:
        ranks = ranks_from_env()
        recipe = load_recipe(args.recipe, args.overrides)
        if args.dry_run:
            if ranks.main:
                dry_run(recipe, probe=not args.no_probe)
            return 0
        out = args.out or Path("runs") / recipe.name
        group = Group(ranks)
        if ranks.main:  # the others wait for these checks at the first barrier
            prepare_output(recipe, out, args.overwrite and args.stage in ("extract", "all"),
                           check=args.stage in ("extract", "all"))
        group.barrier()
        handler = RunLog(out / "run.log")
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {ranks.tag}"
                                               "%(message)s"))
        logging.getLogger().addHandler(handler)
        t0 = time.time()
        if args.stage in ("extract", "all"):
            extract(recipe, out, args.quiet, args.overwrite, group)
            if recipe.analysis.control:
                log.info("%sextract: the %s control (the same recipe on random weights) into %s",
                         ranks.tag, recipe.analysis.control, out / "control" / "store")
                extract(control_recipe(recipe), out / "control", args.quiet, args.overwrite,
                        group)
            group.barrier()  # every process's share is stored (torchrun stops them all if one
            #                  fails; the same command resumes)
        if not ranks.main:
            log.info("%sdone: this process's share is stored; rank 0 analyses and reports",
                     ranks.tag)
            return 0
        if args.stage in ("analyze", "all"):
            analyze(recipe, out, args.quiet, verify=args.stage == "analyze")
        if args.stage in ("report", "all"):
            if recipe.report.figures:
                write_figures(recipe, out)
            else:
                log.info("report: no figures (report.figures is false)")
        print(summary(out))
        print(f"done in {time.time() - t0:.0f} s: store {out / 'store'}, tables "
              f"{out / 'results'}, figures {out / 'figures'}, log {out / 'run.log'}")
        return 0
    except ProbekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a lost mount: the committed work is kept
        where = f"cannot write {e.filename}: " if e.filename else ""
        print(f"error: {where}{write_failure(e)}. What was committed is kept; fix this and run "
              "the same command again to resume", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory. What was committed is kept; lower record.batch_size (or "
              "use a machine with more memory) and run the same command again to resume",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        if group is not None:
            group.close()


if __name__ == "__main__":
    sys.exit(main())
