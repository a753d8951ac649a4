"""The analyses of a run, by name, in the order they run: each an :class:`Analysis` that plans
its comparisons of a store, computes their rows, makes its tables and draws its figures.

A new analysis is one module: a subclass of :class:`Analysis`, registered with
:func:`register_analysis` (or by an installed package under the entry-point group
``probekit.analyses``); its :meth:`~Analysis.plan` reads what it needs from the recipe's
``analysis`` section (``analysis.extra.NAME`` holds the options of analyses that are not
built in)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import metadata

from ...analysis.plan import Comparison
from ...blocks import stack_layers
from ...recipe_schema import AnalysisSection
from .adaptation import Adaptation
from .agreement import MeasureAgreement
from .base import (
    Analysis,
    Figure,
    PlanContext,
    Results,
    Row,
    RowContext,
    Rows,
    TableContext,
    Tables,
)
from .claims import Claims
from .code_switching import CodeSwitched
from .cross_lingual import CrossLingual
from .cross_modal import CrossModal
from .group_means import GroupMeans
from .length_bins import LengthBins
from .modality_gap import ModalityGap

ENTRY_POINTS = "probekit.analyses"
ANALYSES: dict[str, Analysis] = {}


def register_analysis(analysis: Analysis) -> Analysis:
    """Add ``analysis`` to the registry (a name already there is replaced)."""
    if not analysis.name:
        raise ValueError(f"{type(analysis).__name__}: an analysis needs a name")
    ANALYSES[analysis.name] = analysis
    return analysis


for _builtin in (CrossModal(), CrossLingual(), CodeSwitched(), Adaptation(), ModalityGap(),
                 GroupMeans(), MeasureAgreement(), LengthBins(), Claims()):
    register_analysis(_builtin)


def registered() -> list[Analysis]:
    """Every analysis: the built-in ones, those registered in this process, and those of
    installed packages (loaded on first use)."""
    for ep in metadata.entry_points(group=ENTRY_POINTS):
        if ep.name not in ANALYSES:
            register_analysis(ep.load()())
    return list(ANALYSES.values())


def plan(analysis: AnalysisSection, stacks: dict[str, list[str]], modalities: Sequence[str],
         layers: Sequence[str], recorded: Callable[[str], set[str]],
         code_switch_pairs: Sequence[Sequence[str]] = ()) -> list[Comparison]:
    """Every analysis's comparisons of a store whose layers are ``layers`` (``recorded(layer)``:
    the modalities stored at a layer), for a spec whose stacks map to layer patterns."""
    of = {stack: stack_layers(patterns, layers) for stack, patterns in stacks.items()}
    ctx = PlanContext(analysis, of, modalities, recorded, code_switch_pairs)
    return [c for a in registered() for c in a.plan(ctx)]


def analysis_of(c: Comparison) -> Analysis:
    return ANALYSES[c.analysis]


__all__ = ["ANALYSES", "Analysis", "Comparison", "Figure", "PlanContext", "Results", "Row",
           "RowContext", "Rows", "TableContext", "Tables", "analysis_of", "plan",
           "register_analysis", "registered"]
