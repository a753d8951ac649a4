"""A batch's recorded arrays as the store keeps them: numpy arrays of a float storage dtype
(bfloat16 as uint16 words), examples' token arrays as they lie, rows with non-finite values found,
and a layer's rows gathered for the shard being filled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import StoreError


def to_numpy(x: Any) -> tuple[np.ndarray, str]:
    """A numpy array and its storage dtype name (bfloat16 becomes uint16 words)."""
    try:
        import torch
        if isinstance(x, torch.Tensor):
            x = x.detach()
            if x.dtype == torch.bfloat16:
                return x.cpu().contiguous().view(torch.uint16).numpy(), "bfloat16"
            x = x.cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise StoreError(f"activations must be floating point, got dtype {x.dtype}")
    return x, x.dtype.name


def token_arrays(layer: str, pieces: Sequence[Any]) -> tuple[list[np.ndarray], str]:
    """Examples' ``(T_i, D)`` arrays as C-contiguous numpy arrays of one storage dtype, each
    holding whole examples in order; nothing is copied where they already are (they are written
    from where they lie), and consecutive views of one tensor (a Recorder's) become one array."""
    whole = _consecutive(pieces)
    if whole is not None:
        data, dtype = to_numpy(whole)
        return [data], dtype
    arrays: list[np.ndarray] = []
    dtypes = set()
    for k, piece in enumerate(pieces):
        data, dtype = to_numpy(piece)
        if data.ndim != 2 or (arrays and data.shape[1] != arrays[0].shape[1]):
            raise StoreError(f"layer {layer!r}: example {k}'s token array has shape "
                             f"{tuple(data.shape)}; every example's must be (T, D), one D")
        arrays.append(np.ascontiguousarray(data))
        dtypes.add(dtype)
    if not arrays:
        raise StoreError(f"layer {layer!r}: a batch of no examples has no token arrays")
    if len(dtypes) > 1:
        raise StoreError(f"layer {layer!r}: the examples' token arrays mix dtypes "
                         f"{', '.join(sorted(dtypes))}; record them in one dtype")
    return arrays, dtypes.pop()


def _consecutive(pieces: Sequence[Any]) -> Any:
    """The one CPU tensor whose rows are ``pieces`` back to back (``torch.split`` views of it),
    or None."""
    import torch
    if not pieces or not all(isinstance(p, torch.Tensor) for p in pieces):
        return None
    filled = [p for p in pieces if p.numel()]  # an empty view points nowhere
    if not filled or filled[0].device.type != "cpu" or filled[0].dim() != 2:
        return None
    first = filled[0]
    storage, at = first.untyped_storage().data_ptr(), first.data_ptr()
    for p in pieces:
        if (p.dim() != 2 or p.dtype != first.dtype or p.device != first.device
                or p.shape[1] != first.shape[1] or not p.is_contiguous()
                or p.untyped_storage().data_ptr() != storage
                or (p.numel() and p.data_ptr() != at)):
            return None
        at += p.numel() * p.element_size()
    rows = sum(int(p.shape[0]) for p in pieces)
    return torch.as_strided(first.detach(), (rows, first.shape[1]), (first.shape[1], 1))


def nonfinite_rows(data: np.ndarray, dtype: str) -> np.ndarray:
    """Rows holding a NaN or inf (16-bit formats by their exponent bits, which is fast)."""
    if dtype in ("bfloat16", "float16"):
        words = data if dtype == "bfloat16" else data.view(np.uint16)
        exponent = 0x7F80 if dtype == "bfloat16" else 0x7C00
        return ((words & exponent) == exponent).any(axis=-1)
    with np.errstate(over="ignore", invalid="ignore"):  # a row sum of finite values is finite
        suspect = ~np.isfinite(data.sum(axis=-1, dtype=np.float64))  # unless they are huge
    rows = np.flatnonzero(suspect)
    out = np.zeros(data.shape[0], dtype=bool)
    out[rows] = ~np.isfinite(data[rows]).all(axis=-1)
    return out


@dataclass
class BatchArrays:
    """One layer of one batch as stored: a ``(B, D)`` array (pooled), or arrays holding the
    examples' token rows back to back, with each example's row count (tokens)."""
    kind: str                    # "pooled" | "tokens"
    pieces: list[np.ndarray]
    dtype: str                   # storage dtype name (bfloat16 as uint16 words)
    lengths: list[int] | None = None

    @property
    def dim(self) -> int:
        return int(self.pieces[0].shape[1])


def batch_layers(layers: Mapping[str, Any], b: int) -> dict[str, BatchArrays]:
    """A batch's recorded layers of ``b`` examples, converted and checked (raise StoreError)."""
    batch: dict[str, BatchArrays] = {}
    for name, value in layers.items():
        if not name or "/" in name:
            raise StoreError(f"layer name {name!r} cannot be stored: it must be non-empty and "
                             "contain no '/'")
        if isinstance(value, (list, tuple)):
            if len(value) != b:
                raise StoreError(f"layer {name!r}: {len(value)} token arrays for {b} examples")
            pieces, dtype = token_arrays(name, value)
            batch[name] = BatchArrays("tokens", pieces, dtype, [int(v.shape[0]) for v in value])
        else:
            data, dtype = to_numpy(value)
            if data.ndim != 2 or data.shape[0] != b:
                raise StoreError(f"layer {name!r}: expected a ({b}, D) array for {b} examples, "
                                 f"got shape {tuple(data.shape)}")
            batch[name] = BatchArrays("pooled", [data], dtype)
    return batch


def nonfinite_examples(batch: Mapping[str, BatchArrays], b: int) -> dict[int, list[str]]:
    """Example number -> the layers where it holds a NaN or inf."""
    bad: dict[int, list[str]] = {}
    for name, arrays in batch.items():
        rows = np.concatenate([nonfinite_rows(p, arrays.dtype) for p in arrays.pieces])
        if arrays.lengths is not None:  # tokens: an example is bad if any of its rows is
            bounds = np.concatenate([[0], np.cumsum(arrays.lengths)])
            rows = np.array([rows[bounds[k]:bounds[k + 1]].any() for k in range(b)], dtype=bool)
        for k in np.flatnonzero(rows):
            bad.setdefault(int(k), []).append(name)
    return bad


class LayerRows:
    """Accumulates one layer's rows for the shard being filled, as the batches' arrays."""

    def __init__(self, first: BatchArrays):
        self.kind, self.dtype = first.kind, first.dtype
        self.empty = first.pieces[0][:0]  # (0, D), the stored dtype
        self.parts: list[np.ndarray] = []
        self.lengths: list[int] = []

    def add(self, arrays: BatchArrays) -> None:
        self.parts += arrays.pieces
        self.lengths += arrays.lengths or []
    def take(self, rows: int) -> list[np.ndarray]:
        """Remove and return the first ``rows`` rows, as pieces (views: nothing is copied)."""
        head: list[np.ndarray] = []
        while rows > 0:
            part = self.parts[0]
            if part.shape[0] <= rows:
                head.append(self.parts.pop(0))
            else:
                head.append(part[:rows])
                self.parts[0] = part[rows:]
            rows -= head[-1].shape[0]
        return head or [self.empty]
