"""A store's folder made ready for a writer: created (or, with ``overwrite``, emptied of the
store's own files), ``store.json`` written once, and a folder that holds someone else's files,
or a store another recipe made, refused."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from ..errors import RecipeMismatchError, StoreError
from ..provenance import run_context
from . import layout
from .locks import check_free

log = logging.getLogger("probekit.store")


def prepare_folder(root: Path, backend: str, recipe_hash: str | None, shard_size: int,
                   provenance: dict[str, Any], overwrite: bool) -> None:
    """Make ``root`` a store of this recipe and backend (creating it once, race-free between
    cooperating ranks), or refuse with the fix."""
    meta_path = layout.store_json(root)
    try:
        if root.exists() and not root.is_dir():
            raise StoreError(f"store path {root} is a file, not a folder; choose another --out")
        foreign = [p.name for p in root.iterdir() if not layout.is_store_entry(p.name)] \
            if root.is_dir() else []
        if foreign and not meta_path.exists():
            raise StoreError(
                f"folder {root} holds files that are not a probekit store ({foreign[0]}, ...); "
                "choose a new or empty folder so that nothing there is overwritten")
        if overwrite and root.is_dir() and any(layout.is_store_entry(p.name)
                                               for p in root.iterdir()):
            delete_store(root)  # --overwrite always starts afresh
        for sub in ("shards", "locks"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        meta = {"format": layout.FORMAT, "version": layout.VERSION, "backend": backend,
                "recipe_hash": recipe_hash, "shard_size": shard_size, "provenance": provenance,
                "created": run_context()}
        layout.create_json_once(meta_path, meta)  # cooperating ranks may race here
        meta = layout.read_json(meta_path)
        if meta.get("recipe_hash") != recipe_hash or meta.get("backend") != backend:
            raise RecipeMismatchError(
                f"store {root} was made by recipe {meta.get('recipe_hash')} "
                f"(backend {meta.get('backend')}); this run is recipe {recipe_hash} "
                f"(backend {backend}). Write to a new folder, or pass "
                "--overwrite (overwrite=True) to delete the old store")
    except OSError as e:
        raise StoreError(f"cannot create the store folder {root}: {e.strerror or e}; "
                         "choose a writable folder (--out)") from None


def delete_store(root: Path) -> None:
    """Remove the store's own files from ``root`` (nothing else), after checking no writer
    holds it."""
    check_free(root, "overwrite")
    log.warning("overwriting store %s", root)
    for p in root.iterdir():
        if p.is_file() and layout.is_store_entry(p.name):
            p.unlink()
    for sub in ("shards", "locks"):
        shutil.rmtree(root / sub, ignore_errors=True)
