"""probekit: see what multimodal speech/text foundation models compute, block by block.

The data flows one way: data -> model wrapper -> :func:`capture` (a :class:`Recorder`) -> store
-> analysis -> report. The names below load on first use, so ``import probekit`` (and the
``probekit`` command's help) stays quick.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {"ProbekitError": "errors", "Recorder": "recorder", "Store": "store",
            "StoreWriter": "store", "block_lists": "blocks", "capture": "batch",
            "demo_manifest": "resources",
            "load_model": "wrappers", "open_store": "store", "resolve_layers": "blocks"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'probekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
