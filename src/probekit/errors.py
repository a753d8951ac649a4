"""User-facing errors: each says what went wrong, where, and how to fix it.

Every error probekit raises for a user mistake derives from :class:`ProbekitError`; the command-line
entry points print its message without a traceback.
"""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable

DISTRIBUTION = "probekit-speech"  # the name on PyPI ("probekit" there is an unrelated project)


def install_hint(extra: str = "") -> str:
    """The command that installs probekit (with ``extra``): ``pip install 'probekit-speech[x]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'" if extra else f"pip install {DISTRIBUTION}"


class ProbekitError(Exception):
    """A problem the user can fix; the message says what, where and how."""


class LayerSelectionError(ProbekitError, KeyError):
    """A layer pattern matched nothing, or a layer was asked for that was not recorded."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RecipeError(ProbekitError):
    """A recipe that cannot be used as written."""


class SpecError(ProbekitError):
    """A model spec that cannot be found or read."""


class ModelLoadError(ProbekitError):
    """A checkpoint could not be loaded (offline, missing file, wrong path)."""


class RecordingError(ProbekitError):
    """A hooked module produced something the recorder cannot use (shape, mask, repeat)."""


class MissingLengthsError(RecordingError):
    """A padded batch reached a layer whose valid lengths nobody gave (``layer``)."""

    def __init__(self, message: str, layer: str = ""):
        super().__init__(message)
        self.layer = layer


class StoreError(ProbekitError):
    """An activation store cannot be written or read as asked."""


class StoreLockedError(StoreError):
    """Another process is writing the same store with the same writer rank."""


class RecipeMismatchError(StoreError):
    """The store was made by a different recipe than the one now writing into it."""


def closest(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """The candidates that look most like ``name`` (for "did you mean" hints)."""
    candidates = list(candidates)
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    if not found:  # fall back to a shared prefix, useful for long dotted paths
        head = name.split("*")[0].split("[")[0].rstrip(".")
        while head and not found:
            found = [c for c in candidates if c.startswith(head)][:n]
            head = head.rpartition(".")[0]
    return found


def write_failure(e: BaseException) -> str:
    """What went wrong when writing, in words (a full disk, a quota, permissions, ...)."""
    code = getattr(e, "errno", None)
    text = str(e)
    if code is None:  # h5py's RuntimeError names the errno in its message
        for candidate in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES):
            if f"errno = {candidate}," in text or os.strerror(candidate) in text:
                code = candidate
                break
    known = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file size limit was hit",
             errno.EDQUOT: "the disk quota is exceeded", errno.EROFS: "the disk is read-only",
             errno.EACCES: "permission denied"}
    if code in known:
        return known[code]
    return f"{type(e).__name__}: {getattr(e, 'strerror', None) or text.splitlines()[0][:200]}"
