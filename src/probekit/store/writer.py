"""Stream recorded batches into a crash-safe, resumable, sharded activation store.

::

    with StoreWriter("runs/x/store", recipe_hash=h, shard_size=256) as w:
        todo = [ex for ex in examples if ex["id"] not in w.done_ids]
        for batch in batches(todo):
            ...                                       # forward pass under a Recorder
            w.add(batch_metadata, {name: rec[name] for name in rec.names})

Memory holds about one shard plus two queued batches, whatever the number of examples: batches
are converted, checked and written in a writer thread while the caller runs the next forward
pass. Token-level arrays are written from where they lie, never copied: do not change an array
after handing it to ``add``. Killed at any instant and started again with the same inputs, a run
ends with exactly the data of an uninterrupted run; a shard damaged since it was written is
dropped when the writer opens the store (``repaired`` lists them), and its examples are redone
by the caller.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import BACKENDS
from ..errors import StoreError, write_failure
from . import layout
from .folder import prepare_folder
from .locks import hold
from .manifest import committed_ids, open_manifest
from .rows import BatchArrays, LayerRows, batch_layers, nonfinite_examples
from .shards import LayerArrays, shard_image

log = logging.getLogger("probekit.store")

_DEFAULTS = {c: (np.nan if c in ("length", "duration") else "") for c in layout.EXAMPLE_COLUMNS}


class StoreWriter:
    """Writes activations into the store at ``path`` (see :mod:`probekit.store.layout`).

    Args:
        path: store folder; created if missing, resumed if it holds this recipe's store.
        backend: ``"hdf5"`` or ``"safetensors"``.
        shard_size: examples per shard (memory is bounded by about two shards).
        recipe_hash: what made the data; a store made with another hash is refused.
        current: each example's data fingerprint now (id -> text); stored or skipped examples
            whose fingerprint (the ``fingerprint`` column) differs, or that it lacks, are dropped
            to be done again (``forgotten``). ``retry_skipped``: every skip is tried again.
        provenance: model id, revision, dtype, pooling, ... (saved in ``store.json``).
        overwrite: delete an existing store (whatever made it) and start afresh; without it, a
            store made by another recipe is refused.
        rank: writer rank; cooperating processes use distinct ranks to write one store.
        compression: HDF5 filter for pooled arrays: None (default), ``"lzf"`` or ``"gzip"``.
            Token-level arrays are always stored raw. Float activations barely compress, and
            compression was the main cost of recording (measured on 2 cores: lzf 157 ms and gzip
            471 ms vs 46 ms per batch of 128 x 48 layers x 1024 float16).
        background: convert, check and write in a writer thread, so that the caller only queues
            batches (at most ``max_pending`` = 2 wait; a failure is raised at the next call).
    """

    def __init__(self, path: str | os.PathLike, *, backend: str = "hdf5", shard_size: int = 256,
                 recipe_hash: str | None = None, provenance: Mapping[str, Any] | None = None,
                 overwrite: bool = False, rank: int = 0, compression: str | None = None,
                 background: bool = True, world: int = 1,
                 current: Mapping[str, str] | None = None, retry_skipped: bool = False):
        if backend not in BACKENDS:
            raise StoreError(f"store backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        if not isinstance(shard_size, int) or shard_size < 1:
            raise StoreError(f"shard_size must be a positive integer; got {shard_size!r}")
        self.root = Path(path)
        self.backend, self.shard_size, self.rank = backend, shard_size, int(rank)
        self.world = int(world)  # the writer ranks of the run: readers check every one is there
        self.recipe_hash, self.compression = recipe_hash, compression
        self._lock_file: Any = None
        self._pool = ThreadPoolExecutor(max_workers=1) if background else None
        self._io = ThreadPoolExecutor(max_workers=1) if background else None
        self._hasher = ThreadPoolExecutor(max_workers=1) if background else None
        self._io_pending: Future | None = None
        self._inflight: deque[Future] = deque()
        self._failed: BaseException | None = None
        self.max_pending = 2
        self._closed = False
        prepare_folder(self.root, self.backend, self.recipe_hash, self.shard_size,
                       dict(provenance or {}), overwrite)
        self._lock()
        try:
            self._load_manifest(current, retry_skipped)
        except BaseException:
            self._unlock()
            raise
        self._reset_buffer()

    # -- opening -----------------------------------------------------------------------------
    def _lock(self) -> None:
        self._lock_file = hold(self.root, self.rank)

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _load_manifest(self, current: Mapping[str, str] | None, retry_skipped: bool) -> None:
        """This rank's manifest (:func:`~.manifest.open_manifest`): damaged shards dropped
        (``repaired``) and those holding examples whose data changed since (``forgotten``: their
        examples are redone), what a killed run left removed."""
        m = open_manifest(self.root, self.rank, current, retry_skipped)
        self.manifest, self.repaired, self.done_ids = m.data, m.repaired, m.done_ids
        self.forgotten = m.forgotten
        self.nonfinite, self._next_index = m.nonfinite, m.next_index
        self.manifest["world"] = self.world  # this run's; a rerun with fewer redoes the rest

    # -- writing -----------------------------------------------------------------------------
    def _reset_buffer(self) -> None:
        self._examples: list[dict[str, Any]] = []
        self._layers: dict[str, LayerRows] = {}
        self._skips: list[dict[str, str]] = []
        self._buffer_ids: set[str] = set()

    @property
    def n_committed(self) -> int:
        """Examples in committed shards."""
        return sum(s["n"] for s in self.manifest["shards"])

    def add(self, examples: Sequence[Mapping[str, Any]],
            layers: Mapping[str, Any]) -> None:
        """Add one batch: per-example metadata (``id`` required) and, per layer, a ``(B, D)``
        array (pooled) or a list of B ``(T_i, D)`` arrays (token level)."""
        self._check_open()
        b = len(examples)
        if any("id" not in ex for ex in examples):
            raise StoreError("every example needs an 'id' field")
        ids = [str(ex["id"]) for ex in examples]
        for i in ids:
            if i in self.done_ids or i in self._buffer_ids:
                raise StoreError(f"example id {i!r} is already in store {self.root}; ids must be "
                                 "unique (skip the ids in writer.done_ids when resuming)")
        if len(set(ids)) != b:
            raise StoreError("the batch repeats an example id")
        self._buffer_ids.update(ids)
        self._run(self._ingest, ids, [dict(ex) for ex in examples], layers)

    def _ingest(self, ids: list[str], examples: list[dict[str, Any]], layers: Any) -> None:
        """Convert, check and buffer one batch; write shards when full (in the writer thread)."""
        if hasattr(layers, "resolve"):  # a Recording: waits for its device-to-host copies
            layers = layers.resolve()
        batch = batch_layers(layers, len(ids))
        self._check_schema(batch)
        bad = nonfinite_examples(batch, len(ids))
        for k, names in bad.items():
            log.warning("example %s has NaN/inf activations in %d layer(s): %s",
                        ids[k], len(names), ", ".join(names[:5]))
            self.nonfinite += [(ids[k], n) for n in names]
        for k, ex in enumerate(examples):
            row = dict(_DEFAULTS)
            row.update(ex)
            row["id"] = ids[k]
            row["nonfinite"] = ",".join(bad.get(k, []))
            self._examples.append(row)
        for name, arrays in batch.items():
            self._layers.setdefault(name, LayerRows(arrays)).add(arrays)
        while len(self._examples) >= self.shard_size:
            self._write(self.shard_size)

    def skip(self, example_id: str, reason: str, fingerprint: str | None = None) -> None:
        """Record that an example was left out (committed with the next shard), and why (and
        its data's fingerprint, so that a rerun with changed data tries it again)."""
        self._check_open()
        self._buffer_ids.add(str(example_id))
        entry = {"id": str(example_id), "reason": reason} | (
            {"fingerprint": fingerprint} if fingerprint else {})
        # bound in the writer thread: a queued shard write replaces the list of pending skips
        self._run(lambda e: self._skips.append(e), entry)

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self, task: Any, *args: Any) -> None:
        """Run ``task`` in the writer thread, in order; at most ``max_pending`` batches wait.

        A failed task fails the writer: later tasks do nothing and the error is raised here."""
        if self._pool is None:
            self._guarded(task, *args)
            return
        self._inflight.append(self._pool.submit(self._guarded, task, *args))
        while self._inflight and (len(self._inflight) > self.max_pending
                                  or self._inflight[0].done()):
            self._inflight.popleft().result()
        if self._failed is not None:
            self._drain()

    def _guarded(self, task: Any, *args: Any) -> None:
        if self._failed is not None:
            raise self._failed
        try:
            task(*args)
        except BaseException as e:
            self._failed = e
            raise

    def _drain(self) -> None:
        """Wait for every queued task and shard write; raise the first failure."""
        while self._inflight:
            self._inflight.popleft().result()
        if self._io_pending is not None:
            pending, self._io_pending = self._io_pending, None
            try:
                pending.result()
            except BaseException as e:
                self._failed = self._failed or e
        if self._failed is not None:
            raise self._failed

    def _check_schema(self, batch: Mapping[str, BatchArrays]) -> None:
        """A layer is always recorded the same way; batches may record different layer sets
        (speech and text examples pass through different stacks): a shard holds one set."""
        schema = {n: {"kind": a.kind, "dim": a.dim, "dtype": a.dtype} for n, a in batch.items()}
        known = self.manifest["layers"] or {}
        diff = [n for n in schema if n in known and schema[n] != known[n]]
        if diff:
            raise StoreError(
                f"store {self.root}: layer {diff[0]!r} is recorded as {schema[diff[0]]} in this "
                f"batch but as {known[diff[0]]} before; a layer must keep its pooling, width and "
                "dtype (record it under another name)")
        self.manifest["layers"] = {**known, **schema}
        if self._examples and set(schema) != set(self._layers):
            self._write(len(self._examples))  # close the shard: the layer set changes

    def _write(self, n: int) -> None:
        """Write the first ``n`` buffered examples (and pending skips) as a shard."""
        examples, rest = self._examples[:n], self._examples[n:]
        shard_layers: dict[str, LayerArrays] = {}
        remaining: dict[str, LayerRows] = {}
        for name, layer in self._layers.items():
            if layer.kind == "pooled":
                shard_layers[name] = LayerArrays("pooled", layer.take(n), layer.dtype)
            else:
                shard_layers[name] = LayerArrays(
                    "tokens", layer.take(int(sum(layer.lengths[:n]))), layer.dtype,
                    np.asarray(layer.lengths[:n], dtype=np.int64))
                layer.lengths = layer.lengths[n:]
            if rest:
                remaining[name] = layer
        skips = self._skips
        known = layout.EXAMPLE_COLUMNS + ("nonfinite",)  # then any others, by name: a set's
        columns = sorted({c for ex in examples for c in ex},  # order changes between processes
                         key=lambda c: (known.index(c) if c in known else len(known), c))
        table = {c: [ex.get(c, "") for ex in examples] for c in columns}
        self._layers = remaining
        self._examples = rest
        self._skips = []
        self._commit(table, shard_layers, skips)

    def _commit(self, table: dict[str, list[Any]], layers: dict[str, LayerArrays],
                skips: list[dict[str, str]]) -> None:
        """Build the shard's image here (headers; its arrays referenced, not copied); write,
        fsync and list it in the I/O thread while the next one is built (one waits there)."""
        n = len(table.get("id", []))
        name = layout.shard_name(self.rank, self._next_index, self.backend)
        try:
            data = shard_image(self.backend, table, layers, self.compression) if n else None
        except Exception as e:
            raise StoreError(f"cannot build shard {name} of store {self.root}: {e}") from None
        if n:
            self._next_index += 1
        if self._io is None:
            self._publish(name, data, table, layers, skips)
            return
        if self._io_pending is not None:
            self._io_pending.result()  # the previous shard's failure is raised here
        self._io_pending = self._io.submit(self._publish, name, data, table, layers, skips)

    def _publish(self, name: str, data: Any, table: dict[str, list[Any]],
                 layers: dict[str, LayerArrays], skips: list[dict[str, str]]) -> None:
        """Write the shard under a temporary name, fsync, rename, then list it (and ``skips``)
        in the manifest, written atomically."""
        final = self.root / name
        tmp = final.with_name(f".tmp-{final.name}")
        n = len(table.get("id", []))
        listed = False
        try:
            if n:  # hashed while it is written (both release the GIL)
                sha = self._hasher.submit(data.sha256) if self._hasher else None
                data.write(tmp)
                os.replace(tmp, final)
                layout.fsync_dir(final.parent)
                self.manifest["shards"].append(
                    {"file": name, "n": n, "bytes": final.stat().st_size,
                     "sha256": sha.result() if sha else data.sha256(),
                     "layers": list(layers), "examples": table})
                listed = True
            self.manifest["skipped"] += skips
            layout.write_json_atomic(layout.manifest_path(self.root, self.rank), self.manifest)
        except Exception as e:  # h5py reports a full disk at close as a RuntimeError
            tmp.unlink(missing_ok=True)
            if listed:
                self.manifest["shards"].pop()
                final.unlink(missing_ok=True)
            if skips:
                del self.manifest["skipped"][len(self.manifest["skipped"]) - len(skips):]
            error = StoreError(
                f"cannot write shard {name} of store {self.root}: {write_failure(e)}. The "
                f"{self.n_committed} examples in committed shards are intact; fix this and run "
                "the same command again to resume")
            self._failed = self._failed or error
            raise error from None
        self.done_ids.update(table.get("id", []))
        self.done_ids.update(s["id"] for s in skips)

    # -- closing -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Write whatever is buffered as a (possibly short) shard and wait for all writes."""
        self._check_open()
        self._run(self._flush_buffer)
        self._drain()

    def _flush_buffer(self) -> None:
        if self._examples or self._skips:
            self._write(len(self._examples))

    def close(self, complete: bool = True) -> None:
        """Flush, mark this rank complete, and release the lock."""
        if self._closed:
            return
        try:
            if complete:
                self.flush()
                self.manifest["complete"] = True
                try:
                    layout.write_json_atomic(layout.manifest_path(self.root, self.rank),
                                             self.manifest)
                except Exception as e:
                    raise StoreError(
                        f"cannot mark store {self.root} complete: {write_failure(e)}. Every "
                        "example is committed; fix this and run the same command again") from None
            else:  # abandoning: what is buffered is dropped; a failure was raised already
                try:
                    self._drain()
                except Exception as e:
                    log.debug("closing %s after a failure: %s", self.root, e)
        finally:
            self._closed = True
            for pool in (self._pool, self._io, self._hasher):
                if pool is not None:
                    pool.shutdown(wait=True)
            self._unlock()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the writer of {self.root} is closed")

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # On an error the buffered (uncommitted) examples are dropped; a rerun redoes them.
        if exc_type is None:
            self.close(complete=True)
        else:
            self.close(complete=False)

    def summary(self) -> dict[str, Any]:
        """Counts for a progress line or a log."""
        return {"examples": self.n_committed, "shards": len(self.manifest["shards"]),
                "skipped": len(self.manifest["skipped"]), "nonfinite": len(self.nonfinite)}


__all__ = ["BACKENDS", "StoreWriter", "committed_ids"]
