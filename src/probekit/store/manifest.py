"""A writer rank's manifest (``manifest-rN.json``): its committed shards with their examples'
columns, its skipped examples and whether it is complete; opened for writing with the damaged
shards dropped, the examples whose data changed forgotten (:class:`Forgotten`) and what a killed
run left removed. ``committed_ids`` reads every rank's."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout
from .integrity import Damage, damaged_shards

log = logging.getLogger("probekit.store")


@dataclass
class Forgotten:
    """What opening a manifest against the current data dropped, to be done again: examples
    whose data changed since they were stored or skipped (``changed``), that the data no longer
    has (``removed``), stored examples dropped with them because they share a shard
    (``neighbours``), skips retried on request (``retried``), and the stored examples of an older
    store that has no fingerprints to compare (``unchecked``)."""
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    neighbours: int = 0
    retried: int = 0
    unchecked: int = 0


def forget_changed(data: dict[str, Any], current: Mapping[str, str] | None,
                   retry_skipped: bool = False) -> Forgotten:
    """Drop from a manifest's ``data`` every shard holding an example whose fingerprint differs
    from ``current`` (id -> fingerprint of the data now) or whose id ``current`` lacks, and every
    such skip (all skips with ``retry_skipped``): their examples are done again. ``current``
    None: nothing is compared (a writer used without the pipeline)."""
    out = Forgotten()
    if current is None:
        if retry_skipped:
            out.retried, data["skipped"] = len(data["skipped"]), []
        return out

    def stale(ex_id: str, fp: str | None) -> bool:
        if ex_id not in current:
            out.removed.append(ex_id)
        elif fp and fp != current[ex_id]:
            out.changed.append(ex_id)
        else:
            return False
        return True

    kept = []
    for s in data["shards"]:
        ex = s["examples"]
        fps = ex.get("fingerprint") or [None] * len(ex["id"])
        out.unchecked += sum(not fp for fp in fps)
        flags = [stale(i, fp) for i, fp in zip(ex["id"], fps, strict=True)]
        if any(flags):
            out.neighbours += flags.count(False)
        else:
            kept.append(s)
    skips = []
    for entry in data["skipped"]:
        if stale(entry["id"], entry.get("fingerprint")) or retry_skipped:
            out.retried += retry_skipped
        else:
            skips.append(entry)
    if len(kept) < len(data["shards"]) or len(skips) < len(data["skipped"]):
        data["shards"], data["skipped"], data["complete"] = kept, skips, False
    return out


@dataclass
class RankManifest:
    """A rank's manifest as opened for writing: ``data`` (what is written back), the shards
    dropped as damaged (their examples are redone), the ids stored or skipped, the (example,
    layer) pairs with non-finite values, and the next shard's index."""
    data: dict[str, Any]
    repaired: list[Damage] = field(default_factory=list)
    done_ids: set[str] = field(default_factory=set)
    nonfinite: list[tuple[str, str]] = field(default_factory=list)
    next_index: int = 0
    forgotten: Forgotten = field(default_factory=Forgotten)


def open_manifest(root: Path, rank: int, current: Mapping[str, str] | None = None,
                  retry_skipped: bool = False) -> RankManifest:
    """Read rank ``rank``'s manifest (a new one if none), drop the shards that fail their check
    and those whose data changed (:func:`forget_changed`; their examples are redone), remove the
    files a killed run left, and mark it incomplete."""
    path = layout.manifest_path(root, rank)
    data: dict[str, Any] = layout.read_manifest(path) if path.exists() else {
        "rank": rank, "layers": None, "shards": [], "skipped": [], "complete": False}
    repaired = damaged_shards(root, data["shards"])
    if repaired:
        bad = {d.file for d in repaired}
        for d in repaired:
            log.warning("store %s: shard %s; its examples will be recomputed", root, d.describe())
        data["shards"] = [s for s in data["shards"] if s["file"] not in bad]
        data["complete"] = False
        layout.write_json_atomic(path, data)
    forgotten = forget_changed(data, current, retry_skipped)
    if forgotten.changed or forgotten.removed or forgotten.retried:
        layout.write_json_atomic(path, data)
    committed = {s["file"] for s in data["shards"]}
    for leftover in (root / "shards").iterdir():
        if layout.is_rank_shard(leftover.name, rank) and f"shards/{leftover.name}" not in committed:
            log.info("removing %s, left by an interrupted run", leftover)
            leftover.unlink()
    for leftover in root.glob(f".manifest-r{rank}.json.tmp-*"):
        leftover.unlink()
    done = {i for s in data["shards"] for i in s["examples"]["id"]}
    done.update(s["id"] for s in data["skipped"])
    data["complete"] = False
    nonfinite = [(i, layer) for s in data["shards"]
                 for i, layers in zip(s["examples"]["id"], s["examples"]["nonfinite"],
                                      strict=True) if layers
                 for layer in layers.split(",")]
    index = 1 + max((layout.shard_index(s["file"]) for s in data["shards"]), default=-1)
    return RankManifest(data, repaired, done, nonfinite, index, forgotten)


def committed_ids(path: str | os.PathLike) -> set[str]:
    """Ids already stored or skipped in a store (all ranks), without opening it for writing."""
    root = Path(path)
    out: set[str] = set()
    for m in layout.manifests(root):
        data = layout.read_manifest(m)
        out.update(i for s in data["shards"] for i in s["examples"]["id"])
        out.update(s["id"] for s in data["skipped"])
    return out


def ranks_progress(root: Path, world: int) -> str:
    """One line on a store's writer ranks: those done (complete) and, for the others, how many
    examples they have committed so far."""
    from ..errors import StoreError

    done, busy = [], []
    for rank in range(world):
        path = layout.manifest_path(root, rank)
        try:
            data = layout.read_manifest(path) if path.exists() else None
        except StoreError:
            data = None
        if data and data.get("complete"):
            done.append(str(rank))
        else:
            n = sum(s["n"] for s in data["shards"]) + len(data["skipped"]) if data else 0
            busy.append(f"{rank} ({n} examples committed)")
    return (f"done: rank{'s' * (len(done) != 1)} {', '.join(done) or 'none'}; still recording: "
            f"rank{'s' * (len(busy) != 1)} {', '.join(busy) or 'none'}")
