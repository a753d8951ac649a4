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


def read_manifest(path: Path) -> dict[str, Any]:
    """A rank's manifest (:func:`read_json`) whose structure is checked first: its shards'
    entries and example columns agree in length, skips are ``{id, reason}``; anything else is a
    :class:`StoreError` naming the first problem (no reader meets a malformed entry)."""
    data = read_json(path)
    problem = manifest_problem(data)
    if problem:
        raise StoreError(f"{path} is damaged ({problem}); restore it from a backup, or start "
                         "this store afresh with --overwrite (overwrite=True)")
    return data


def manifest_problem(data: dict[str, Any]) -> str | None:
    """Why ``data`` is not a well-formed manifest (None: it is)."""
    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not isinstance(data.get("shards"), list) or not isinstance(data.get("skipped"), list):
        return "no list of shards or of skipped examples"
    if "world" in data and not (count(data["world"]) and data["world"] >= 1):
        return f"world is {str(data['world'])[:40]!r}, not a number of processes"
    for k, entry in enumerate(data["shards"]):
        where = f"shard entry {k}"
        if not isinstance(entry, dict) or not count(entry.get("n")):
            return f"{where} has no count of examples (n)"
        examples = entry.get("examples")
        if not isinstance(examples, dict) or not isinstance(examples.get("id"), list):
            return f"{where} has no example ids"
        for column, values in examples.items():
            if not isinstance(values, list) or len(values) != entry["n"]:
                got = len(values) if isinstance(values, list) else type(values).__name__
                return (f"{where} says n = {entry['n']} examples, but its column "
                        f"{str(column)[:40]!r} holds {got}")
        if not all(isinstance(i, str) for i in examples["id"]):
            return f"{where} has an example id that is not text"
        layers = entry.get("layers", [])
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            return f"{where} lists its layers as {str(layers)[:40]!r}, not a list of names"
        if not count(entry.get("bytes")) or not isinstance(entry.get("sha256", ""), str):
            return f"{where} has no size (bytes), or a checksum (sha256) that is not text"
    for k, skip in enumerate(data["skipped"]):
        if not (isinstance(skip, dict) and isinstance(skip.get("id"), str)
                and isinstance(skip.get("reason"), str)):
            return f"skipped entry {k} is not an id with its reason"
    return None
