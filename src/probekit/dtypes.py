"""Torch dtypes by name (``"float16"``), as specs, recipes and the recorder give them."""

from __future__ import annotations

from typing import overload

import torch

from .errors import RecordingError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "float64": torch.float64}


@overload
def as_dtype(dtype: str | torch.dtype) -> torch.dtype: ...
@overload
def as_dtype(dtype: None) -> None: ...
def as_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """A torch dtype from a name such as ``"float16"`` (None keeps the model's dtype)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[str(dtype).removeprefix("torch.")]
    except KeyError:
        raise RecordingError(
            f"storage dtype {dtype!r} is not one of {', '.join(DTYPES)}") from None
