"""The :class:`~.grid.Comparer` a recipe's ``analysis`` section asks for: its settings, the
device it computes on, and intervals only for the analyses that want them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from .basis import AnalysisError
from .grid import Comparer, Key


class AnalysisSettings(Protocol):
    """What :func:`comparer_for` reads: a recipe's ``analysis`` section (read-only)."""
    @property
    def measures(self) -> Sequence[Any]: ...
    @property
    def variance(self) -> float: ...
    @property
    def k(self) -> int | None: ...
    @property
    def n_perm(self) -> int: ...
    @property
    def n_boot(self) -> int: ...
    @property
    def ci(self) -> float: ...
    @property
    def intervals(self) -> Sequence[str]: ...
    @property
    def seed(self) -> int: ...
    @property
    def allow_large_k(self) -> bool: ...
    @property
    def device(self) -> str: ...
    @property
    def dtype(self) -> str: ...


def analysis_device(device: str | None) -> str:
    """``auto`` (or None): the GPU when torch sees one, else the CPU; ``cuda[:N]`` checked."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda"):
        index = int(str(device).partition(":")[2] or 0)
        seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= seen:
            raise AnalysisError(f"analysis.device: {device} asked, but torch sees {seen or 'no'} "
                                "GPU; use auto or cpu")
    return str(device)


def comparer_for(analysis: AnalysisSettings, views: Callable[[Key], Any], *,
                 zscore: bool | Callable[[Key], bool] = False, intervals: bool = False,
                 analysis_name: str = "", **overrides: Any) -> Comparer:
    """The :class:`Comparer` a recipe's ``analysis`` section asks for, on ``views``: intervals
    (``n_boot`` half-samples) only when ``intervals`` and ``analysis_name`` is one of
    ``analysis.intervals``. ``overrides`` replace any other Comparer argument (e.g. ``k``)."""
    settings: dict[str, Any] = dict(
        variance=analysis.variance, k=analysis.k, zscore=zscore, n_perm=analysis.n_perm,
        n_boot=analysis.n_boot if intervals and analysis_name in analysis.intervals else 0,
        ci=analysis.ci, seed=analysis.seed, allow_large_k=analysis.allow_large_k,
        dtype=getattr(analysis, "dtype", "float64"),
        device=analysis_device(getattr(analysis, "device", "cpu")))
    settings.update(overrides)
    return Comparer(views, settings.pop("measures", list(analysis.measures)), **settings)
