"""Activation stores: a crash-safe sharded writer and a lazy reader (HDF5 or safetensors)."""

from .reader import Store, open_store
from .writer import StoreWriter, committed_ids

__all__ = ["Store", "StoreWriter", "committed_ids", "open_store"]
