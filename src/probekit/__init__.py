"""probekit: see what multimodal speech/text foundation models compute, block by block.

The data flows one way: data -> model wrapper -> :class:`Recorder` -> store -> analysis -> report.
"""

from .blocks import block_lists, resolve_layers
from .errors import ProbekitError
from .recorder import Recorder
from .store import Store, StoreWriter, open_store
from .wrappers import load_model

__version__ = "0.1.0"

__all__ = ["ProbekitError", "Recorder", "Store", "StoreWriter", "block_lists", "load_model", "open_store",
           "resolve_layers"]
