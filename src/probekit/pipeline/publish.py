"""Outputs published whole. A stage writes its files (tables and their stamp, or figures) into a
fresh hidden folder beside the target, and that folder replaces the target by rename. A killed
stage leaves the previous complete set; a kill between the two renames leaves nothing, and the
next start puts the previous set back. It never leaves a mix, a stale table or a 0-byte PDF.
Files a user put in the folder are carried over (hard links); files of the previous set that
this one does not make are gone."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LISTED = ".probekit-files"  # the names probekit wrote in the folder (any other is the user's)
# without a list (a folder from before this): the files probekit makes there, by suffix
OURS = (".csv", ".parquet", ".md", ".tex", ".png", ".pdf", ".hash")


@contextmanager
def published(folder: Path) -> Iterator[Path]:
    """A fresh folder to write the new set into; on a normal exit it replaces ``folder``, with
    the user's files carried over (see the module docstring). On an error nothing changes."""
    recover(folder)
    stage = folder.with_name(f".{folder.name}.new-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    made = sorted(p.name for p in stage.iterdir())
    (stage / LISTED).write_text("".join(f"{name}\n" for name in made))
    if folder.is_dir():
        for path in users_files(folder):
            if not (stage / path.name).exists():
                carry(path, stage / path.name)
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.replace(folder, old)
        os.replace(stage, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, folder)


def users_files(folder: Path) -> list[Path]:
    """What in ``folder`` probekit did not write there."""
    listed = folder / LISTED
    if listed.is_file():
        ours = set(listed.read_text().split("\n"))
        return [p for p in folder.iterdir() if p.name not in ours and p.name != LISTED]
    return [p for p in folder.iterdir() if not (p.is_file() and p.suffix in OURS)]


def carry(source: Path, target: Path) -> None:
    """``source`` at ``target`` too: hard links (a folder's files each), else a copy."""
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(source), str(target))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


def recover(folder: Path) -> None:
    """What a stage killed mid-way left: its unfinished new set is removed; a previous set moved
    aside just before the kill is put back where there is none."""
    for stage in folder.parent.glob(f".{folder.name}.new-*"):
        shutil.rmtree(stage, ignore_errors=True)
    for old in sorted(folder.parent.glob(f".{folder.name}.old-*")):
        if not folder.exists():
            os.replace(old, folder)
        else:
            shutil.rmtree(old, ignore_errors=True)
