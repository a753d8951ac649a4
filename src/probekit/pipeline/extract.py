"""The extract stage: every example of a run through the model into its store, resuming what is
there. Batches come from the whole example list (so a resumed run pads each example exactly as
an uninterrupted one); under torchrun each process records its share as its own writer rank."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..distributed import Ranks
from ..errors import ProbekitError, StoreLockedError
from ..recipe_schema import ModelSection, RecordSection
from ..store import StoreWriter
from ..store.manifest import Forgotten
from ..wrappers import Wrapper
from . import fidelity
from .context import Run
from .inputs import Example, admit, describe, examples_for, fingerprint, stored_column

log = logging.getLogger("probekit")

CONSECUTIVE_FAILURES = 10  # examples failing in a row: not bad examples, a broken run
Batch = list[Example]


def extract(run: Run, quiet: bool = False, overwrite: bool = False,
            retry_skipped: bool = False) -> None:
    """Record every example of ``run`` into ``run.store``, resuming what is there and redoing
    the examples whose data changed since (added, edited, replaced or removed; ``retry_skipped``:
    every skipped one too). An example that cannot run is skipped with its reason recorded in
    the store (``data.fail_fast`` stops instead); a failing batch is handled by :class:`Retry`."""
    from tqdm import tqdm

    from ..data import DataError
    from ..provenance import library_versions
    from ..store import committed_ids
    from ..wrappers import describe_inputs, load_model

    recipe, spec, ranks = run.recipe, run.spec, run.ranks
    examples, report = examples_for(run.data)
    log.info(describe(run.data, report))
    provenance = {"model": spec.name, "label": run.model_label, "checkpoint": spec.checkpoint,
                  "revision": spec.revision,
                  "variant": recipe.model.variant, "model_dtype": recipe.model.dtype or spec.dtype,
                  "pool": recipe.record.pool, "dtype": recipe.record.dtype,
                  "inputs": describe_inputs(spec), "data_root": str(run.data_root),
                  "stacks": {s: list(spec.stacks[s]) for s in recipe.record.stacks or spec.stacks},
                  "versions": library_versions(), "self_check": fidelity.provenance(run)}
    fail_fast = run.data.fail_fast

    def checked_model() -> Wrapper:
        wrapper = load_model(spec, variant=recipe.model.variant, dtype=recipe.model.dtype,
                             check=False, **placement(recipe.model, spec.device, ranks))
        fidelity.self_check(run, wrapper, examples)
        return wrapper

    # the model and its self-check before the store is opened: a model that fails it leaves
    # no store behind, so the fixed recipe (record.batch_size: 1) starts afresh
    prints = {ex["id"]: fingerprint(ex, run.data_root) for ex in examples}
    wrapper, stored = None, committed_ids(run.store)
    if overwrite or retry_skipped or not all(ex["id"] in stored for ex in examples):
        wrapper = checked_model()
    with open_writer(run, provenance, overwrite, prints, retry_skipped) as writer:
        if writer.repaired:
            log.warning("%sextract: %d damaged shard(s) dropped; their %d examples are "
                        "recomputed", ranks.tag, len(writer.repaired),
                        sum(len(d.ids) for d in writer.repaired))
        report_forgotten(writer.forgotten, ranks.tag)
        done = committed_ids(run.store)  # stored or skipped by earlier runs (every rank)
        if all(ex["id"] in done for ex in examples):
            log.info("%sextract: all %d examples already in the store", ranks.tag, len(examples))
            return
        if done:
            log.info("%sextract: %d of %d examples already in the store (or skipped); %d to "
                     "record", ranks.tag, sum(ex["id"] in done for ex in examples),
                     len(examples), sum(ex["id"] not in done for ex in examples))
        wrapper = wrapper or checked_model()  # a damaged shard was dropped: done again
        mine = plan_batches(run, examples, wrapper)
        todo = sum(ex["id"] not in done for batch in mine for ex in batch)
        bar = tqdm(total=todo, desc=f"extract{f' r{ranks.rank}' if ranks.world > 1 else ''}",
                   unit="ex", disable=quiet or ranks.local_rank != 0)
        retry = Retry(lambda batch: record_batch(wrapper, batch, recipe.record),
                      Recording(writer, done, run.data_root, prints), fail_fast)
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
                    retry.out.skip(ex["id"], str(e))
            if ready:
                retry.run(ready)
            bar.update(new)
        retry.close()
        bar.close()
    log.info("%sextract: %s", ranks.tag, writer.summary())


class Recording:
    """Where recorded batches go: the writer, leaving out what earlier runs stored (``done``),
    with examples' columns as the store keeps them."""

    def __init__(self, writer: StoreWriter, done: set[str], root: Path, prints: dict[str, str]):
        self.writer, self.done, self.root, self.prints = writer, done, root, prints

    def store(self, batch: Batch, layers: Any) -> None:
        keep = [k for k, ex in enumerate(batch) if ex["id"] not in self.done]
        if len(keep) < len(batch):  # a batch rerun around examples already stored
            layers = take_rows(layers.resolve(), keep, len(batch))
            batch = [batch[k] for k in keep]
        meta = [{k: stored_column(k, v, self.root) for k, v in ex.items() if k != "audio"}
                | {"fingerprint": self.prints[ex["id"]]} for ex in batch]
        self.writer.add(meta, layers)

    def skip(self, ex_id: str, reason: str) -> None:
        log.warning("skipping %s: %s", ex_id, reason)
        self.writer.skip(ex_id, reason, self.prints[ex_id])


class Retry:
    """A batch that fails is rerun example by example, so one bad example costs only itself
    (it is skipped, with the reason, once an example after it succeeds); :data:`LIMIT` failing
    alone in a row stop the run (the model or the recipe, not the data, is at fault), leaving
    them to the next run. With ``fail_fast`` a failing batch stops the run."""

    LIMIT = CONSECUTIVE_FAILURES

    def __init__(self, record: Callable[[Batch], Any], out: Recording, fail_fast: bool):
        self.record, self.out, self.fail_fast = record, out, fail_fast
        self.failing: list[tuple[str, str]] = []  # failed alone, in a row

    def run(self, batch: Batch) -> None:
        try:
            self._store(batch, self.record(batch))
        except ProbekitError:
            raise
        except Exception as e:
            if self.fail_fast:
                from ..data import DataError

                raise DataError(f"a batch of {len(batch)} examples failed ({_failure(e)}) "
                                    "and data.fail_fast is set; remove it to skip the examples "
                                    "that fail alone") from e
            log.warning("a batch of %d examples failed (%s: %s); running them one by one",
                        len(batch), type(e).__name__,
                        str(e).splitlines()[0][:120] if str(e) else "")
            _free_memory()
            for ex in batch:
                self._alone(ex)

    def _alone(self, ex: Example) -> None:
        done = self.out.done
        try:
            layers = self.record([ex])
        except ProbekitError:
            raise
        except Exception as e:
            if ex["id"] in done:
                return  # stored by an earlier run: it ran then
            self.failing.append((ex["id"], _failure(e)))
            _free_memory()
            if len(self.failing) >= self.LIMIT:
                raise ProbekitError(
                    f"{len(self.failing)} examples in a row failed alone (the last, {ex['id']}: "
                    f"{_failure(e)}): the model or the recipe is at fault, not the data. Fix it "
                    "and run the same command again; they are not recorded as skipped") from None
            return
        if ex["id"] not in done:
            self._store([ex], layers)

    def _store(self, batch: Batch, layers: Any) -> None:
        self.close()
        self.out.store(batch, layers)

    def close(self) -> None:
        """Skip the examples that failed alone (an example after them ran, or the run ended)."""
        for ex_id, reason in self.failing:
            self.out.skip(ex_id, reason)
        self.failing.clear()


def record_batch(wrapper: Wrapper, batch: Batch, record: RecordSection) -> Any:
    """One batch through the model under a Recorder (whose hooks leave whatever happens)."""
    from ..batch import capture

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


def _failure(e: BaseException) -> str:
    text = str(e).splitlines()[0][:200] if str(e) else ""
    return f"the model failed on it alone: {type(e).__name__}" + (f": {text}" if text else "")


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def plan_batches(run: Run, examples: list[Example], wrapper: Wrapper) -> list[Batch]:
    """This process's batches of the run's plan (:mod:`probekit.batching`): all of them in a
    single process, its share (balanced by padded length) under torchrun."""
    from .. import batching
    from ..distributed import assign

    r, ranks = run.recipe.record, run.ranks
    lengths: list[float] = []
    if ranks.world > 1 or r.max_batch_tokens is not None or r.max_batch_seconds is not None:
        t0 = time.time()
        lengths = [batching.example_length(ex, wrapper.text_tokens) for ex in examples]
        log.info("%sextract: lengths of %d examples measured in %.1f s", ranks.tag,
                 len(examples), time.time() - t0)
    batches = batching.plan(examples, r.batch_size, lengths or None, r.max_batch_tokens,
                            r.max_batch_seconds, r.sort_window)
    if ranks.world == 1:
        return batches
    length_of = {ex["id"]: n for ex, n in zip(examples, lengths, strict=True)}
    costs = [batching.padded_cost(b, length_of) for b in batches]
    owners = assign(costs, ranks.world)
    mine = [b for b, o in zip(batches, owners, strict=True) if o == ranks.rank]
    log.info("%sextract: %d of %d batches (%.0f%% of the padded length)", ranks.tag, len(mine),
             len(batches),
             100 * sum(c for c, o in zip(costs, owners, strict=True) if o == ranks.rank)
             / max(sum(costs), 1e-9))
    return mine


def placement(m: ModelSection, device: str, ranks: Ranks) -> dict[str, Any]:
    """Where the weights go: the recipe's device (else ``device``, the spec's; each torchrun
    process on its own GPU), or spread over the GPUs (``device_map``), possibly quantized."""
    from ..distributed import device_for

    if m.device_map and ranks.world > 1:
        raise ProbekitError("model.device_map spreads one model over the GPUs; under torchrun "
                            "each process takes one GPU. Use one of the two: remove "
                            "model.device_map, or start a single process")
    out: dict[str, Any] = {"device": device_for(m.device or device, ranks)}
    if m.device_map:
        out["device_map"] = m.device_map
    if m.quantize:
        out["quantize"] = m.quantize
    return out


def report_forgotten(f: Forgotten, tag: str) -> None:
    """Log what the writer dropped to be done again because the data changed."""
    def some(ids: list[str]) -> str:
        return ", ".join(ids[:5]) + (f", ... ({len(ids)} in all)" if len(ids) > 5 else "")

    if f.changed:
        log.warning("%sextract: the data of %d examples changed since they were stored or "
                    "skipped (%s): they are recomputed", tag, len(f.changed), some(f.changed))
    if f.removed:
        log.warning("%sextract: %d examples in the store are no longer in the data (%s): they "
                    "are removed from the store", tag, len(f.removed), some(f.removed))
    if f.neighbours:
        log.info("%sextract: %d unchanged examples shared their shards and are recomputed "
                 "too", tag, f.neighbours)
    if f.retried:
        log.info("%sextract: %d skipped examples are tried again (--retry-skipped)", tag,
                 f.retried)
    if f.unchecked:
        log.warning("%sextract: %d stored examples predate data fingerprints: a change to their "
                    "data is not noticed (--overwrite rebuilds the store)", tag, f.unchecked)


def open_writer(run: Run, provenance: dict[str, Any], overwrite: bool,
                current: dict[str, str] | None = None,
                retry_skipped: bool = False) -> StoreWriter:
    """This process's writer of the run's store; under torchrun rank 0 opens (or deletes, with
    ``overwrite``) the store first, then the others open theirs. Stored or skipped examples
    whose data is not ``current`` (id -> fingerprint) are dropped to be done again."""
    r, ranks, group = run.recipe.record, run.ranks, run.group

    def open_() -> StoreWriter:
        return StoreWriter(run.store, backend=r.backend, shard_size=r.shard_size,
                           recipe_hash=run.store_hash, provenance=provenance,
                           overwrite=overwrite and ranks.main, rank=ranks.rank,
                           world=ranks.world, current=current, retry_skipped=retry_skipped)

    writer = open_() if ranks.main else None
    if writer is not None:
        adopt_orphans(writer, ranks.world, current, retry_skipped)
    group.barrier()
    writer = writer or open_()
    group.barrier()  # every writer open: what killed runs left is cleaned up
    return writer


def adopt_orphans(writer: StoreWriter, world: int, current: dict[str, str] | None = None,
                  retry_skipped: bool = False) -> None:
    """Close the writer ranks of an earlier run with more processes (rank >= ``world``): their
    shards are checked (a damaged one is dropped, so its examples are redone now), what they
    left is removed, and they are marked complete; their missing examples are this run's."""
    from ..store import layout

    for path in layout.manifests(writer.root):
        rank = int(path.stem.removeprefix("manifest-r"))
        if rank < world:
            continue
        try:
            orphan = StoreWriter(writer.root, backend=writer.backend, rank=rank,
                                 recipe_hash=writer.recipe_hash, shard_size=writer.shard_size,
                                 current=current, retry_skipped=retry_skipped)
        except StoreLockedError as e:  # a process of another launch still writes it
            log.warning("writer rank %d is still held: %s", rank, e)
            continue
        orphan.close()
        log.info("extract: writer rank %d of an earlier run with more processes checked (%d "
                 "damaged shards dropped) and closed; this run records what it lacks", rank,
                 len(orphan.repaired))
