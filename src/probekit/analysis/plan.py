"""Which comparisons a recipe asks of a store: a pure function of the recipe, the model spec and
the store's index (its layers, and the modalities recorded at each), so a plan can be read,
tested and printed before any similarity is computed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..blocks import stack_layers
from .paper import align_depths

__all__ = ["Comparison", "plan", "stack_layers"]


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


def plan(analysis: Any, stacks: dict[str, list[str]], modalities: Sequence[str],
         layers: Sequence[str], recorded: Callable[[str], set[str]]) -> list[Comparison]:
    """The comparisons of ``analysis`` (a recipe's analysis section) over a store whose layers
    are ``layers`` (``recorded(layer)``: the modalities stored at a layer), for a spec whose
    stacks map to layer patterns and a recipe that recorded ``modalities``."""
    of = {stack: stack_layers(patterns, layers) for stack, patterns in stacks.items()}
    out = [Comparison("cross_modal", f"{sp}~{tx}",
                      pairs=tuple(align_depths(of[sp], of[tx], analysis.depth_alignment, (sp, tx))))
           for sp, tx in analysis.cross_modal]
    for stack in analysis.cross_lingual:
        here = recorded(of[stack][0]) if of[stack] else set()
        out += [Comparison("cross_lingual", stack, layers=tuple(of[stack]), modality=modality)
                for modality in modalities if modality in here]
    for stack in getattr(analysis, "code_switched", []):
        here = recorded(of[stack][0]) if of[stack] else set()
        out += [Comparison("code_switched", stack, layers=tuple(of[stack]), modality=modality)
                for modality in modalities if modality in here]
    if analysis.adaptation_points and analysis.cross_modal:
        text_layer = analysis.adaptation_text_layer or of[analysis.cross_modal[0][1]][-1]
        out.append(Comparison("adaptation", "adaptation", pairs=tuple(
            (layer, text_layer) for layer in analysis.adaptation_points.values())))
    return out
