"""Mask-aware pooling of ``(B, T, D)`` block outputs into one vector per example.

Valid positions are given either as lengths ``(B,)`` plus a padding side, or as a boolean mask
``(B, T)``. Padded positions never enter a pooled vector. A mask whose length differs from the
output's is an error, never broadcast.
"""

from __future__ import annotations

from typing import Literal

import torch

from .choices import POOLS
from .errors import RecordingError

Pool = Literal["mean", "first", "last", "none"]  # POOLS, for the type checker


def valid_mask(lengths: torch.Tensor | None, mask: torch.Tensor | None, batch: int, time: int,
               padding_side: str = "right", where: str = "output") -> torch.Tensor | None:
    """A ``(B, T)`` boolean mask of valid positions, or None when every position is valid."""
    if mask is not None:
        mask = torch.as_tensor(mask)
        if mask.dim() != 2 or tuple(mask.shape) != (batch, time):
            raise RecordingError(
                f"{where}: mask has shape {tuple(mask.shape)} but the output has {batch} sequences "
                f"of {time} positions; give a (B, T) = ({batch}, {time}) mask for this layer "
                "(a stack that subsamples needs its own lengths)")
        mask = mask.bool()
        if not bool(mask.any(dim=1).all()):
            raise RecordingError(f"{where}: a sequence has no valid position; check the mask")
        return mask
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths).reshape(-1)
    if lengths.numel() != batch:
        raise RecordingError(
            f"{where}: {lengths.numel()} lengths given for a batch of {batch} sequences")
    lengths = lengths.to(torch.long)
    if int(lengths.max()) > time or int(lengths.min()) < 1:
        raise RecordingError(
            f"{where}: valid lengths must lie in 1..{time} (the output's length), got "
            f"min {int(lengths.min())}, max {int(lengths.max())}; lengths given for another stack? "
            "(stacks that subsample need their own lengths)")
    positions = torch.arange(time, device=lengths.device)
    if padding_side == "right":
        return positions[None, :] < lengths[:, None]
    if padding_side == "left":
        return positions[None, :] >= (time - lengths)[:, None]
    raise RecordingError(f"{where}: padding_side must be 'right' or 'left', got {padding_side!r}")


def pool(x: torch.Tensor, how: str, mask: torch.Tensor | None) -> torch.Tensor | list[torch.Tensor]:
    """Pool ``x`` of shape ``(B, T, D)``.

    ``mean``: average over valid positions; ``first``/``last``: the first/last *valid* position
    (so left padding is handled); ``none``: a list of ``(T_i, D)`` tensors, valid positions only.
    """
    if how not in POOLS:
        raise RecordingError(f"pool must be one of {', '.join(POOLS)}; got {how!r}")
    if x.dim() == 2:  # (B, D): already one vector per example (e.g. a sentence embedding)
        return list(x[:, None, :].unbind(0)) if how == "none" else x
    if x.dim() != 3:
        raise RecordingError(f"cannot pool an output of shape {tuple(x.shape)}; expected (B, T, D)")
    b, t, _ = x.shape
    if mask is not None:
        mask = mask.to(x.device)
    if how == "mean":
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # accumulate low-precision outputs in float32
        if mask is None:
            return x.mean(dim=1)
        weights = mask.to(x.dtype)
        return torch.einsum("btd,bt->bd", x, weights) / weights.sum(dim=1, keepdim=True)
    if how == "first" or how == "last":
        if mask is None:
            return x[:, 0 if how == "first" else -1]
        idx = torch.arange(t, device=x.device).expand(b, t)
        if how == "first":
            pos = torch.where(mask, idx, t).amin(dim=1)
        else:
            pos = torch.where(mask, idx, -1).amax(dim=1)
        return x[torch.arange(b, device=x.device), pos]
    if mask is None:
        return list(x.unbind(0))
    return [x[i, mask[i]] for i in range(b)]
