"""Shard checksums: what a store read gives back is what its writer wrote.

Each committed shard's SHA-256 is recorded in its manifest entry (``sha256sum shards/*`` shows the
same digests). In HDF5 shards, pooled arrays carry per-chunk Fletcher-32 checksums and token-level
arrays a CRC-32 per example, checked on every read.
A writer checks its shards when it opens a store (a damaged shard is dropped, and the examples it
held are recomputed by the run); readers check them with ``open_store(path, verify=True)`` or
``python -m probekit.store verify DIR``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout

REPAIR = ("run the extraction that made the store again (the same command): it checks every shard "
          "and recomputes just the examples of damaged ones")


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Damage:
    """One damaged shard: its file (relative to the store), why, and the examples it held."""
    file: str
    reason: str
    ids: list[str]

    def describe(self) -> str:
        shown = ", ".join(self.ids[:3]) + (", ..." if len(self.ids) > 3 else "")
        return f"{self.file} ({self.reason}; {len(self.ids)} examples: {shown})"


def shard_problem(root: Path, entry: dict[str, Any], checksum: bool = True) -> str | None:
    """Why the shard of manifest ``entry`` cannot be trusted, or None when it can. Without
    ``checksum`` only its presence and size are checked (instant). A path that leaves the store
    (``..``, absolute, a symbolic link) is damage, never followed."""
    outside = layout.shard_file_problem(root, entry.get("file"))
    if outside:
        return outside
    path = root / entry["file"]
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    if size != entry["bytes"]:
        return f"{size} bytes instead of {entry['bytes']}"
    if checksum and entry.get("sha256"):  # stores written before checksums have none
        try:
            if file_sha256(path) != entry["sha256"]:
                return "checksum mismatch"
        except OSError as e:
            return f"unreadable: {e.strerror or e}"
    return None


def damaged_shards(root: Path, entries: Iterable[dict[str, Any]],
                   checksum: bool = True) -> list[Damage]:
    """The damaged shards among manifest ``entries``."""
    out = []
    for entry in entries:
        reason = shard_problem(root, entry, checksum)
        if reason:
            out.append(Damage(str(entry.get("file"))[:80], reason,
                              [str(i) for i in entry["examples"]["id"]]))
    return out
