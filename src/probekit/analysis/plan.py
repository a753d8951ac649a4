"""A comparison a recipe asks of a store: the layers (or pairs of layers) one analysis compares,
planned by :func:`probekit.pipeline.analyses.plan` from the recipe, the model spec and the
store's index, so a plan can be read, tested and printed before any similarity is computed."""

from __future__ import annotations

from dataclasses import dataclass

from ..blocks import stack_layers

__all__ = ["Comparison", "stack_layers"]


@dataclass(frozen=True)
class Comparison:
    """One table's worth of similarities.

    ``cross_modal`` and ``adaptation``: ``pairs`` of (speech layer, text layer), one per depth;
    ``cross_lingual``: ``layers`` of one stack compared across languages on ``modality``;
    ``code_switched``: ``layers`` where mixed inputs meet their two languages on ``modality``."""

    analysis: str                       # cross_modal | cross_lingual | code_switched | adaptation
    stack: str                          # "speech~text" stacks, a stack, or "adaptation"
    pairs: tuple[tuple[str, str], ...] = ()
    layers: tuple[str, ...] = ()
    modality: str = ""

    @property
    def depths(self) -> int:
        return len(self.pairs) or len(self.layers)
