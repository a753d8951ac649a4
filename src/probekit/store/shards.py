"""One shard file: K examples' metadata and every layer's arrays, in HDF5 or safetensors.

A layer is either *pooled*, one ``(K, D)`` array, or *tokens*, a ragged ``(sum T_i, D)`` array
with per-example ``lengths`` (offsets are their cumulative sum). bfloat16 is stored as raw 16-bit
words in HDF5 (which has no bfloat16) and natively in safetensors; readers return float32 for it.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from .image import Image, SparseFile
from .integrity import REPAIR


@dataclass
class LayerArrays:
    """One layer's data in a shard: ``pieces`` (consecutive blocks of rows, e.g. batches) of a
    ``(K, D)`` array (pooled) or a ``(sum T_i, D)`` array (tokens), joined only where written."""
    kind: str                       # "pooled" | "tokens"
    pieces: list[np.ndarray]        # bfloat16 is carried as uint16 words
    dtype: str                      # "float32" | "float16" | "bfloat16" | "float64"
    lengths: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.pieces[0].shape[1])

    @property
    def rows(self) -> int:
        return sum(int(p.shape[0]) for p in self.pieces)

    def joined(self) -> np.ndarray:
        return self.pieces[0] if len(self.pieces) == 1 else np.concatenate(self.pieces)

    def row_lengths(self) -> np.ndarray:
        """Each example's rows (a tokens layer)."""
        if self.lengths is None:
            raise ValueError(f"a {self.kind} layer has no row lengths")
        return self.lengths


def _bf16_to_float32(words: np.ndarray) -> np.ndarray:
    return (words.astype(np.uint32) << 16).view(np.float32)


# the dtype each backend stores for a recorded dtype (HDF5 keeps bfloat16 as its 16-bit words)
STORED_DTYPES = {"hdf5": {"float32": "float32", "float16": "float16", "bfloat16": "uint16"},
                 "safetensors": {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}}


def _raw_bytes(t: Any) -> bytes:
    """A tensor's bytes as stored (bfloat16 included)."""
    import torch

    return t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _check_lengths(layer: str, lengths: np.ndarray, rows: int, crc: np.ndarray | None,
                   n: int | None) -> None:
    """A token-level layer's example lengths index its array exactly, one per example of the
    manifest (``n``) (raise ValueError)."""
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or (lengths < 0).any():
        raise ValueError(f"layer {layer}'s lengths are not counts of rows")
    if n is not None and lengths.size != n:
        raise ValueError(f"layer {layer} has lengths of {lengths.size} examples; the manifest "
                         f"lists {n}")
    if int(lengths.sum()) != rows:
        raise ValueError(f"layer {layer}'s lengths add up to {int(lengths.sum())} rows; its "
                         f"array holds {rows}")
    if crc is not None and crc.shape != lengths.shape:
        raise ValueError(f"layer {layer} has {crc.size} checksums for {lengths.size} examples")


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])


def row_crc32(pieces: list[np.ndarray], lengths: np.ndarray) -> np.ndarray:
    """The CRC-32 of each example's rows of a token-level array, as stored; ``pieces`` are
    consecutive blocks of its rows, each holding whole examples."""
    bounds = _offsets(lengths)
    starts = _offsets(np.array([p.shape[0] for p in pieces], dtype=np.int64))
    if bounds[-1] != starts[-1]:
        raise ValueError(f"the lengths add up to {bounds[-1]} rows, the pieces to {starts[-1]}")
    out = np.zeros(len(lengths), dtype=np.uint32)
    for k, (a, b) in enumerate(pairwise(bounds)):
        if a == b:
            continue
        i = int(np.searchsorted(starts, a, side="right")) - 1
        if b > starts[i + 1]:
            raise ValueError(f"example {k}'s rows span two pieces")
        out[k] = zlib.crc32(np.ascontiguousarray(pieces[i][a - starts[i]:b - starts[i]]).data)
    return out


# -- writing ---------------------------------------------------------------------------------
def shard_image(backend: str, examples: dict[str, list[Any]], layers: dict[str, LayerArrays],
                compression: str | None = None) -> Image:
    """A complete shard file as an :class:`~.image.Image` whose token-level parts are the
    layers' own arrays (not copied): written with plain writes, a full disk is one clean
    ``OSError``, never a failing flush inside HDF5 (which can crash the process)."""
    if backend == "hdf5":
        return _hdf5_image(examples, layers, compression)
    if backend == "safetensors":
        return _safetensors_image(examples, layers)
    raise ValueError(f"unknown backend {backend!r}")


def _hdf5_image(examples: dict[str, list[Any]], layers: dict[str, LayerArrays],
                compression: str | None) -> Image:
    import h5py

    opts: dict[str, Any] = {"track_times": False}
    if compression:
        opts.update(compression=compression, shuffle=True)
    sparse = SparseFile()
    regions: list[tuple[int, list[np.ndarray]]] = []
    with h5py.File(sparse, "w", libver="latest") as f:
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
            if arr.kind == "pooled":
                data = arr.joined()
                rows = max(1, min(data.shape[0], (1 << 20) // max(1, data.itemsize * arr.dim)))
                chunks = (rows, arr.dim) if data.shape[0] else None
                # a Fletcher-32 checksum per chunk: a changed byte fails the read of its chunk
                g.create_dataset("pooled", data=data, chunks=chunks, fletcher32=bool(chunks),
                                 **(opts if chunks else {"track_times": False}))
                continue
            # token-level arrays are large and barely compress: stored raw and contiguous, with
            # a CRC-32 per example checked when it is read (Fletcher-32 chunks halved the speed).
            # Their region is allocated, never written by HDF5: the image fills it in place
            offset = _raw_region(g, "tokens", arr.rows, arr.dim, arr.pieces[0].dtype)
            if offset is not None:
                regions.append((offset, arr.pieces))
            lengths = arr.row_lengths()
            g.create_dataset("lengths", data=lengths.astype(np.int64), track_times=False)
            g.create_dataset("offsets", data=_offsets(lengths), track_times=False)
            g.create_dataset("crc32", data=row_crc32(arr.pieces, lengths), track_times=False)
    return sparse.image(regions)


def _raw_region(group: Any, name: str, rows: int, dim: int, dtype: np.dtype) -> int | None:
    """Create a contiguous ``(rows, dim)`` dataset whose bytes HDF5 allocates but never writes
    (no fill value); return their offset in the file (None for an empty array: no region)."""
    import h5py
    from h5py import h5d, h5p, h5s, h5t

    if rows * dim == 0:
        group.create_dataset(name, shape=(rows, dim), dtype=dtype, track_times=False)
        return None
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_layout(h5d.CONTIGUOUS)
    dcpl.set_alloc_time(h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5d.FILL_TIME_NEVER)
    dcpl.set_obj_track_times(False)
    dsid = h5d.create(group.id, name.encode(), h5t.py_create(np.dtype(dtype)),
                      h5s.create_simple((rows, dim)), dcpl=dcpl)
    ds = h5py.Dataset(dsid)
    if ds.id.get_storage_size() != rows * dim * np.dtype(dtype).itemsize:
        raise ValueError(f"HDF5 allocated {ds.id.get_storage_size()} bytes for {name}")
    return int(ds.id.get_offset())


_SAFETENSORS_CODES = {"float32": "F32", "float16": "F16", "uint16": "BF16", "int64": "I64",
                      "float64": "F64"}


def _safetensors_image(examples: dict[str, list[Any]], layers: dict[str, LayerArrays]) -> Image:
    """A safetensors file (an 8-byte header length, a JSON header, then the tensors' bytes),
    written here so that the arrays are not copied into one buffer first."""
    tensors: list[tuple[str, str, list[int], list[np.ndarray]]] = []
    schema: dict[str, Any] = {}
    for name, arr in layers.items():
        pieces = [np.ascontiguousarray(p) for p in arr.pieces]
        code = _SAFETENSORS_CODES[pieces[0].dtype.name]  # bfloat16 arrives as uint16 words
        tensors.append((f"{name}/{'pooled' if arr.kind == 'pooled' else 'tokens'}", code,
                        [arr.rows, arr.dim], pieces))
        if arr.kind == "tokens":  # a CRC-32 per example, checked when it is read (as HDF5's)
            lengths = arr.row_lengths().astype(np.int64)
            crc = row_crc32(arr.pieces, lengths).astype(np.int64)
            tensors += [(f"{name}/lengths", "I64", [lengths.size], [lengths]),
                        (f"{name}/crc32", "I64", [crc.size], [crc])]
        schema[name] = {"kind": arr.kind, "dtype": arr.dtype}
    # widest items first, so that every tensor starts aligned to its item size
    tensors.sort(key=lambda t: (-t[3][0].itemsize, t[0]))
    header: dict[str, Any] = {"__metadata__": {"probekit": json.dumps(
        {"examples": examples, "layers": schema}, default=str)}}
    at = 0
    for key, code, shape, pieces in tensors:
        size = sum(p.nbytes for p in pieces)
        header[key] = {"dtype": code, "shape": shape, "data_offsets": [at, at + size]}
        at += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return Image([struct.pack("<Q", len(text)), text]
                 + [p for *_, pieces in tensors for p in pieces])


# -- reading ---------------------------------------------------------------------------------
class ShardReader:
    """Reads rows of one shard file lazily; the file is opened on first use."""

    def __init__(self, path: Path, backend: str, schema: dict[str, dict[str, Any]],
                 refused: str | None = None, n: int | None = None):
        self.path = Path(path)
        self.n = n  # the examples the manifest lists in it
        self.refused = refused  # why the path is not the store's own file: never opened
        self.backend = backend
        self.schema = schema
        self._handle: Any = None
        self._indices: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def _open(self) -> Any:
        if self._handle is None and self.path.is_symlink():  # replaced by a link since listed
            self.refused = "a symbolic link (a store's shards are its own files, not links)"
        if self.refused:
            raise StoreError(f"the store lists a shard that {self.refused}: not read. The store "
                             f"is damaged or not probekit's; to repair it, {REPAIR}")
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
        self._indices = {}

    def _rows(self, key: str, layer: str, lo: int, hi: int,
              crc: int | None = None) -> np.ndarray:
        """Rows ``lo:hi`` of a layer's array as float; ``crc``: their stored CRC-32 (HDF5)."""
        h = self._open()
        try:
            if self.backend == "hdf5":
                ds = h["layers"][layer][key]
                self._check_array(layer, key, ds.dtype.name, ds.shape)
                data = ds[lo:hi]
                if crc is not None and zlib.crc32(data) != crc:
                    raise ValueError(f"layer {layer} rows {lo}:{hi} fail their CRC-32")
                if self.schema[layer]["dtype"] == "bfloat16":
                    data = _bf16_to_float32(data)
                return data
            part = h.get_slice(f"{layer}/{key}")
            self._check_array(layer, key, part.get_dtype(), tuple(part.get_shape()))
            t = part[lo:hi]
            if crc is not None and zlib.crc32(_raw_bytes(t)) != crc:
                raise ValueError(f"layer {layer} rows {lo}:{hi} fail their CRC-32")
        except (OSError, KeyError, RuntimeError, ValueError) as e:
            raise self.damaged(e) from None
        import torch
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()

    def _check_array(self, layer: str, key: str, dtype: str, shape: tuple[int, ...]) -> None:
        """A stored array has the dtype and width the manifest records (raise ValueError)."""
        info = self.schema.get(layer, {})
        want = STORED_DTYPES[self.backend].get(str(info.get("dtype")))
        if want is not None and dtype != want:
            raise ValueError(f"layer {layer} {key} is stored as {dtype}; the manifest records "
                             f"{info.get('dtype')}")
        if len(shape) != 2 or ("dim" in info and shape[1] != info["dim"]):
            raise ValueError(f"layer {layer} {key} has shape {tuple(shape)}; the manifest records "
                             f"width {info.get('dim')}")
        if key == "pooled" and self.n is not None and shape[0] != self.n:
            raise ValueError(f"layer {layer} holds {shape[0]} rows; the manifest lists {self.n} "
                             "examples")

    def structure_problem(self) -> str | None:
        """Why this shard's arrays do not have the dtypes and widths of the manifest (None:
        they do); read from the arrays' headers, not their data."""
        try:
            h = self._open()
            names = set(h["layers"]) if self.backend == "hdf5" else set(h.keys())
            for layer, info in self.schema.items():
                key = "pooled" if info.get("kind") == "pooled" else "tokens"
                if self.backend == "hdf5":
                    if layer in names:
                        ds = h["layers"][layer][key]
                        self._check_array(layer, key, ds.dtype.name, ds.shape)
                elif f"{layer}/{key}" in names:
                    part = h.get_slice(f"{layer}/{key}")
                    self._check_array(layer, key, part.get_dtype(), tuple(part.get_shape()))
                if key == "tokens" and (layer in names or f"{layer}/tokens" in names):
                    self._index(layer)
        except StoreError as e:
            return str(e).split(" (", 1)[-1].split("). To repair", 1)[0]
        except (OSError, KeyError, RuntimeError, ValueError) as e:
            return str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        return None

    def pooled(self, layer: str, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), D)`` for rows of this shard (any order)."""
        lo, hi = int(rows.min()), int(rows.max()) + 1
        data = self._rows("pooled", layer, lo, hi)
        if len(data) < hi - lo:  # with n unknown (a shard read on its own)
            raise self.damaged(ValueError(f"layer {layer} holds {lo + len(data)} rows; the "
                                          f"manifest lists row {hi - 1}"))
        return data[rows - lo]

    def _index(self, layer: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A token-level layer's row offsets and per-example CRC-32s (None where not stored),
        read once and checked against the array they index."""
        if layer not in self._indices:
            h = self._open()
            try:
                if self.backend == "hdf5":
                    g = h["layers"][layer]
                    crc = g["crc32"][:] if "crc32" in g else None  # older shards: none
                    lengths, rows = g["lengths"][:], g["tokens"].shape[0]
                else:
                    lengths = h.get_tensor(f"{layer}/lengths").numpy()
                    names = set(h.keys())
                    crc = (h.get_tensor(f"{layer}/crc32").numpy() if f"{layer}/crc32" in names
                           else None)  # shards written before per-example checksums
                    rows = h.get_slice(f"{layer}/tokens").get_shape()[0]
                _check_lengths(layer, lengths, rows, crc, self.n)
                self._indices[layer] = (_offsets(lengths), crc)
            except (OSError, KeyError, RuntimeError, ValueError) as e:
                raise self.damaged(e) from None
        return self._indices[layer]

    def tokens(self, layer: str, row: int) -> np.ndarray:
        """``(T, D)`` token-level array of one row (its CRC-32 checked where stored)."""
        offsets, crc = self._index(layer)
        if not 0 <= row < len(offsets) - 1:
            raise self.damaged(ValueError(f"layer {layer} has {len(offsets) - 1} examples' "
                                          f"lengths; the manifest lists row {row}"))
        return self._rows("tokens", layer, int(offsets[row]), int(offsets[row + 1]),
                          None if crc is None else int(crc[row]))
