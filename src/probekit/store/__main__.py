"""``python -m probekit.store verify DIR [DIR ...]``: check every shard of a store against its
SHA-256 and list the damaged ones with their examples. DIR is a store or a run folder (its
``store/`` and ``control/store/`` are checked). Exit status: 0 intact, 1 damaged, 2 not a store.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ProbekitError
from ..helptext import plain
from . import layout
from .integrity import REPAIR
from .reader import Store


def stores_in(folder: Path) -> list[Path]:
    """The stores a path names: itself, or a run folder's store and control store."""
    if layout.store_json(folder).exists():
        return [folder]
    found = [p for p in (folder / "store", folder / "control" / "store")
             if layout.store_json(p).exists()]
    if not found:
        raise ProbekitError(f"{folder} is neither a probekit store (no store.json) nor a run "
                            "folder holding store/")
    return found


def verify(folders: list[Path]) -> int:
    status = 0
    for folder in folders:
        for root in stores_in(folder):
            store = Store(root, check=False)  # opened to list the damage, not refused for it
            damage = store.verify()
            size = sum(e["bytes"] for e in store.shards)
            if store.missing_ranks:
                status = 1
                print(f"{root}: writer rank(s) {', '.join(map(str, store.missing_ranks))} of the "
                      f"run's {len(store.missing_ranks) + len(layout.manifests(root))} have no "
                      "manifest: their examples are missing. Run the extraction again with as "
                      "many processes (the same command) to redo them")
                if not damage:
                    continue
            if not damage:
                print(f"{root}: ok, {len(store.shards)} shards ({size / 1e6:.1f} MB), "
                      f"{len(store)} examples, {len(store.skipped)} skipped"
                      + ("" if store.complete else " (incomplete: a run has not finished)"))
                continue
            status = 1
            print(f"{root}: {len(damage)} damaged shard(s) of {len(store.shards)}:")
            for d in damage:
                print(f"  {d.describe()}")
            print(f"  to repair it, {REPAIR}")
    return status


def main(argv: list[str] | None = None, prog: str = "python -m probekit.store") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=plain(__doc__),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check every shard's checksum")
    check.add_argument("folders", nargs="+", type=Path)
    args = ap.parse_args(argv)
    try:
        return verify(args.folders)
    except ProbekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
