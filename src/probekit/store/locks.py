"""Writer-rank locks: one process writes one rank of a store at a time (``locks/rN.lock``, an
advisory ``flock`` that the system releases when the process dies, with a note of its holder)."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
from pathlib import Path
from typing import IO

from ..errors import StoreLockedError
from . import layout

log = logging.getLogger("probekit.store")


def hold(root: Path, rank: int) -> IO[str]:
    """Take writer rank ``rank``'s lock of the store at ``root`` (StoreLockedError, naming the
    holder, when another process has it); keep the returned file open to keep the lock."""
    path = layout.lock_path(root, rank)
    f = open(path, "a+")  # noqa: SIM115 - held open for as long as the lock is held
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise StoreLockedError(
            f"store {root} is being written by {holder} as writer rank {rank}; wait for it to "
            "finish (or stop it), write to another folder, or give cooperating writers distinct "
            "ranks (rank=...)") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}")
        f.flush()
    except OSError as e:  # the lock is held; only the note of who holds it is missing
        log.debug("cannot note the lock holder in %s: %s", path, e)
    return f


def check_free(root: Path, what: str) -> None:
    """StoreLockedError when any writer rank of the store at ``root`` is held (``what``: the
    action refused, e.g. ``overwrite``)."""
    for lock in (root / "locks").glob("*.lock"):
        with open(lock, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise StoreLockedError(
                    f"cannot {what} store {root}: a process is writing it "
                    f"({lock.read_text().strip() or 'unknown'})") from None
