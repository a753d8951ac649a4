"""A writer rank's manifest (``manifest-rN.json``): its committed shards with their examples'
columns, its skipped examples and whether it is complete; opened for writing with the damaged
shards dropped and what a killed run left removed. ``committed_ids`` reads every rank's."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout
from .integrity import Damage, damaged_shards

log = logging.getLogger("probekit.store")


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


def open_manifest(root: Path, rank: int) -> RankManifest:
    """Read rank ``rank``'s manifest (a new one if none), drop the shards that fail their check
    (their examples are redone), remove the files a killed run left, and mark it incomplete."""
    path = layout.manifest_path(root, rank)
    data: dict[str, Any] = layout.read_json(path) if path.exists() else {
        "rank": rank, "layers": None, "shards": [], "skipped": [], "complete": False}
    repaired = damaged_shards(root, data["shards"])
    if repaired:
        bad = {d.file for d in repaired}
        for d in repaired:
            log.warning("store %s: shard %s; its examples will be recomputed", root, d.describe())
        data["shards"] = [s for s in data["shards"] if s["file"] not in bad]
        data["complete"] = False
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
    return RankManifest(data, repaired, done, nonfinite, index)


def committed_ids(path: str | os.PathLike) -> set[str]:
    """Ids already stored or skipped in a store (all ranks), without opening it for writing."""
    root = Path(path)
    out: set[str] = set()
    for m in layout.manifests(root):
        data = layout.read_json(m)
        out.update(i for s in data["shards"] for i in s["examples"]["id"])
        out.update(s["id"] for s in data["skipped"])
    return out
