"""One shard file: K examples' metadata and every layer's arrays, in HDF5 or safetensors.

A layer is either *pooled*, one ``(K, D)`` array, or *tokens*, a ragged ``(sum T_i, D)`` array
with per-example ``lengths`` (offsets are their cumulative sum). bfloat16 is stored as raw 16-bit
words in HDF5 (which has no bfloat16) and natively in safetensors; readers return float32 for it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from .integrity import REPAIR


@dataclass
class LayerArrays:
    """One layer's data in a shard: ``data`` is ``(K, D)`` (pooled) or ``(sum T_i, D)`` (tokens)."""
    kind: str                       # "pooled" | "tokens"
    data: np.ndarray                # bfloat16 is carried as uint16 words
    dtype: str                      # "float32" | "float16" | "bfloat16" | "float64"
    lengths: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.data.shape[1])


def _bf16_to_float32(words: np.ndarray) -> np.ndarray:
    return (words.astype(np.uint32) << 16).view(np.float32)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])


# -- writing ---------------------------------------------------------------------------------
def shard_bytes(backend: str, examples: dict[str, list[Any]], layers: dict[str, LayerArrays],
                compression: str | None = None) -> Any:
    """A complete shard file, built in memory: written with plain writes (:func:`write_bytes`),
    a full disk is one clean ``OSError``, never a failing flush inside HDF5 (which can crash
    the process)."""
    if backend == "hdf5":
        return _hdf5_bytes(examples, layers, compression)
    if backend == "safetensors":
        return _safetensors_bytes(examples, layers)
    raise ValueError(f"unknown backend {backend!r}")


def digest(data: Any) -> str:
    """The SHA-256 of a shard's bytes, as the manifest lists it."""
    return hashlib.sha256(data).hexdigest()


def write_bytes(path: Path, data: Any) -> None:
    """Write ``data`` to ``path``, fsynced (the caller renames it into place)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _hdf5_bytes(examples: dict[str, list[Any]], layers: dict[str, LayerArrays],
                compression: str | None) -> memoryview:
    import io

    import h5py

    opts: dict[str, Any] = {"track_times": False}
    if compression:
        opts.update(compression=compression, shuffle=True)
    image = io.BytesIO()  # HDF5 writes into memory through Python (no copy of the image after)
    with h5py.File(image, "w", libver="latest") as f:
        ex = f.create_group("examples", track_order=True)
        for col, values in examples.items():
            if col in ("length", "duration"):
                ex.create_dataset(col, data=np.asarray(values, dtype=np.float64), track_times=False)
            else:
                ex.create_dataset(col, data=np.asarray([str(v) for v in values], dtype=object),
                                  dtype=h5py.string_dtype(), track_times=False)
        group = f.create_group("layers", track_order=True)
        for name, arr in layers.items():
            g = group.create_group(name)
            g.attrs["kind"] = arr.kind
            g.attrs["dtype"] = arr.dtype
            rows = max(1, min(arr.data.shape[0], (1 << 20) // max(1, arr.data.itemsize * arr.dim)))
            chunks = (rows, arr.dim) if arr.data.shape[0] else None
            key = "pooled" if arr.kind == "pooled" else "tokens"
            # token-level arrays are large and float activations barely compress: stored raw
            use = opts if chunks and arr.kind == "pooled" else {"track_times": False}
            # a Fletcher-32 checksum per chunk: a changed byte fails the read of its chunk
            g.create_dataset(key, data=arr.data, chunks=chunks, fletcher32=bool(chunks), **use)
            if arr.kind == "tokens":
                g.create_dataset("lengths", data=arr.lengths.astype(np.int64), track_times=False)
                g.create_dataset("offsets", data=_offsets(arr.lengths), track_times=False)
    return image.getbuffer()


def _safetensors_bytes(examples: dict[str, list[Any]], layers: dict[str, LayerArrays]) -> bytes:
    import torch
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    schema: dict[str, Any] = {}
    for name, arr in layers.items():
        data = torch.from_numpy(np.ascontiguousarray(arr.data))
        if arr.dtype == "bfloat16":
            data = data.view(torch.bfloat16)
        tensors[f"{name}/{'pooled' if arr.kind == 'pooled' else 'tokens'}"] = data
        if arr.kind == "tokens":
            tensors[f"{name}/lengths"] = torch.from_numpy(arr.lengths.astype(np.int64))
        schema[name] = {"kind": arr.kind, "dtype": arr.dtype}
    meta = {"probekit": json.dumps({"examples": examples, "layers": schema}, default=str)}
    return save(tensors, metadata=meta)


# -- reading ---------------------------------------------------------------------------------
class ShardReader:
    """Reads rows of one shard file lazily; the file is opened on first use."""

    def __init__(self, path: Path, backend: str, schema: dict[str, dict[str, Any]]):
        self.path = Path(path)
        self.backend = backend
        self.schema = schema
        self._handle: Any = None

    def _open(self) -> Any:
        if self._handle is None:
            try:
                if self.backend == "hdf5":
                    import h5py
                    self._handle = h5py.File(self.path, "r")
                else:
                    from safetensors import safe_open
                    self._handle = safe_open(str(self.path), framework="pt")
            except Exception as e:
                raise self.damaged(e) from None
        return self._handle

    def damaged(self, e: BaseException) -> StoreError:
        """The error for a shard whose bytes are not what was written."""
        detail = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        return StoreError(f"shard {self.path} is damaged ({detail}). To repair it, {REPAIR}; "
                          "`python -m probekit.store verify STORE` lists damaged shards")

    def close(self) -> None:
        if self._handle is not None and self.backend == "hdf5":
            self._handle.close()
        self._handle = None

    def _rows(self, key: str, layer: str, lo: int, hi: int) -> np.ndarray:
        h = self._open()
        try:
            if self.backend == "hdf5":
                data = h["layers"][layer][key][lo:hi]
                if self.schema[layer]["dtype"] == "bfloat16":
                    data = _bf16_to_float32(data)
                return data
            t = h.get_slice(f"{layer}/{key}")[lo:hi]
        except (OSError, KeyError, RuntimeError, ValueError) as e:
            raise self.damaged(e) from None
        import torch
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()

    def pooled(self, layer: str, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), D)`` for rows of this shard (any order)."""
        lo, hi = int(rows.min()), int(rows.max()) + 1
        return self._rows("pooled", layer, lo, hi)[rows - lo]

    def lengths(self, layer: str) -> np.ndarray:
        h = self._open()
        try:
            if self.backend == "hdf5":
                return h["layers"][layer]["lengths"][:]
            return h.get_tensor(f"{layer}/lengths").numpy()
        except (OSError, KeyError, RuntimeError, ValueError) as e:
            raise self.damaged(e) from None

    def tokens(self, layer: str, row: int) -> np.ndarray:
        """``(T, D)`` token-level array of one row."""
        offsets = _offsets(self.lengths(layer))
        return self._rows("tokens", layer, int(offsets[row]), int(offsets[row + 1]))
