"""Where things live in a store folder, and how its JSON files are written safely.

::

    STORE/
      store.json            format, backend, recipe hash, provenance (written once)
      manifest-r0.json      writer rank 0: layer schema, committed shards (size, SHA-256, their
                            examples), skipped examples and why
      shards/r0-000000.h5   immutable shard files (.h5 or .safetensors), K examples each
      locks/r0.lock         held by the process writing rank 0

A shard is written under a temporary name, flushed, fsynced and renamed; only then is the
manifest (also written to a temporary name, fsynced and renamed) updated to list it. Files of a
rank that its manifest does not list are leftovers of a killed run and are removed on resume;
a listed shard that is missing or fails its checksum is dropped then, and its examples are redone
(:mod:`probekit.store.integrity`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..errors import StoreError

FORMAT = "probekit-store"
VERSION = 1
SUFFIX = {"hdf5": ".h5", "safetensors": ".safetensors"}
EXAMPLE_COLUMNS = ("id", "sentence", "lang", "modality", "text", "source", "length", "duration")


def store_json(root: Path) -> Path:
    return root / "store.json"


def manifest_path(root: Path, rank: int) -> Path:
    return root / f"manifest-r{rank}.json"


def shard_name(rank: int, index: int, backend: str) -> str:
    return f"shards/r{rank}-{index:06d}{SUFFIX[backend]}"


SHARD_FILE = re.compile(r"shards/[A-Za-z0-9][A-Za-z0-9._-]*")  # a name in shards/, no path


def shard_file_problem(root: Path, file: Any) -> str | None:
    """Why a manifest's shard ``file`` is not one of the store's own files (None: it is): a
    name inside ``shards/`` (no separators, no ``..``, not absolute) that is not a symbolic
    link. A store is shared between people: what it reads must stay inside it."""
    if not isinstance(file, str) or not SHARD_FILE.fullmatch(file):
        shown = repr(file)[:80]
        return f"names {shown}, which is not a file in the store's shards/ folder"
    if (root / file).is_symlink():
        return "a symbolic link (a store's shards are its own files, not links)"
    return None


def shard_index(name: str) -> int:
    """The index in a shard's file name (``shards/r0-000012.h5`` -> 12)."""
    return int(Path(name).name.split(".")[0].rpartition("-")[2])


def is_rank_shard(filename: str, rank: int) -> bool:
    """Whether a file in ``shards/`` belongs to writer ``rank`` (committed or a leftover)."""
    stem = filename.removeprefix(".tmp-").split(".")[0]
    prefix, _, index = stem.partition("-")
    return prefix == f"r{rank}" and index.isdigit()


def lock_path(root: Path, rank: int) -> Path:
    return root / "locks" / f"r{rank}.lock"


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_json(path: Path, data: Any, exclusive: bool) -> bool:
    """Write JSON to a temporary file, fsync it, then move it to ``path`` in one step:
    replacing any old file, or (``exclusive``) only if ``path`` does not exist yet."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another writer created it first
        else:
            os.replace(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` so that a reader sees the old or the new file, never a torn one."""
    _publish_json(path, data, exclusive=False)


def create_json_once(path: Path, data: Any) -> bool:
    """Create ``path`` with this JSON unless it exists (atomic; False if it existed)."""
    return not path.exists() and _publish_json(path, data, exclusive=True)


def is_store_entry(name: str) -> bool:
    """Whether a file name in a store folder is one of the store's own."""
    return (name in ("store.json", "shards", "locks") or name.startswith((".store.json.tmp-",
            ".manifest-r")) or (name.startswith("manifest-r") and name.endswith(".json")))


def read_json(path: Path) -> Any:
    """A store's JSON file; a damaged one is a :class:`StoreError` that says how to go on."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(
            f"{path} is damaged ({getattr(e, 'msg', None) or e}): probekit writes it in one atomic "
            "step, so something else changed it. Restore it from a backup, or start this store "
            "afresh with --overwrite (overwrite=True); its data cannot be trusted without it"
        ) from None
    if not isinstance(data, dict):
        raise StoreError(f"{path} is damaged (not a JSON object); restore it, or start this store "
                         "afresh with --overwrite (overwrite=True)")
    return data


def manifests(root: Path) -> list[Path]:
    """Every rank's manifest in a store, by rank."""
    found = [(int(p.stem.removeprefix("manifest-r")), p) for p in root.glob("manifest-r*.json")
             if p.stem.removeprefix("manifest-r").isdigit()]
    return [p for _, p in sorted(found)]
