"""A batch's recorded arrays as the store keeps them: numpy arrays of a float storage dtype
(bfloat16 as uint16 words), examples' token arrays joined, rows with non-finite values found,
and a layer's rows gathered for the shard being filled."""

from __future__ import annotations

from collections.abc import Sequence
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


def joined(pieces: Sequence[Any]) -> Any:
    """Examples' ``(T_i, D)`` arrays as one ``(sum T_i, D)`` array (tensors joined by torch)."""
    import torch
    if all(isinstance(p, torch.Tensor) for p in pieces):
        return torch.cat([p.detach().cpu() for p in pieces])
    return np.concatenate([to_numpy(p)[0] for p in pieces])


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


class LayerRows:
    """Accumulates one layer's rows for the shard being filled, as the batches' arrays."""

    def __init__(self, kind: str, dtype: str, empty: np.ndarray):
        self.kind, self.dtype, self.empty = kind, dtype, empty  # empty: (0, D), stored dtype
        self.parts: list[np.ndarray] = []
        self.lengths: list[int] = []

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
