"""What made a store: library versions, host, time, and a stable hash for recipes."""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import time
from importlib import metadata
from typing import Any

_LIBRARIES = ("probekit", "torch", "transformers", "nnsight", "fairseq2", "sonar-space", "numpy",
              "h5py", "safetensors")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape recorded numbers (absent ones omitted)."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def stable_hash(obj: Any) -> str:
    """A short SHA-256 of ``obj`` as canonical JSON (sorted keys), for recipes and configs."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_context() -> dict[str, Any]:
    """Host, process and time of the current run."""
    return {"host": socket.gethostname(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": library_versions()}
