"""Cross-lingual similarity: every pair of languages at each layer of a stack, per modality,
and its language-by-language matrix at the last layer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

from ...analysis import cross_lingual
from ...analysis.plan import Comparison
from .base import Analysis, Figure, PlanContext, Results, Row, RowContext, TableContext


def per_modality(name: str, stacks: list[str], ctx: PlanContext) -> list[Comparison]:
    """A comparison of each stack's layers on each recipe modality recorded there."""
    out = []
    for stack in stacks:
        of = ctx.of[stack]
        here = ctx.recorded(of[0]) if of else set()
        out += [Comparison(name, stack, layers=tuple(of), modality=modality)
                for modality in ctx.modalities if modality in here]
    return out


class CrossLingual(Analysis):
    name = "cross_lingual"
    similarities = True
    intervals = True

    def plan(self, ctx: PlanContext) -> list[Comparison]:
        return per_modality(self.name, ctx.analysis.cross_lingual, ctx)

    def rows(self, c: Comparison, ctx: RowContext) -> Sequence[Row]:
        return cross_lingual(ctx.comparer(self.name), c.layers, ctx.languages, c.modality,
                             stack=c.stack, progress=lambda: ctx.progress(1))

    def cost(self, c: Comparison, languages: int, pairs: int) -> tuple[int, int]:
        return len(c.layers) * languages * (languages - 1) // 2, len(c.layers) * languages

    def figures(self, results: Results) -> Iterator[Figure]:
        from ...report import plot_language_matrix

        for measure, stack, sub in results.similarities_of(self.name):
            for modality, part in sub.groupby("modality_a"):
                depth = int(part["depth"].max())
                yield (f"cross_lingual_{stack}_{modality}_last{results.suffix(measure)}",
                       partial(plot_language_matrix, part, depth, modality,
                               order=results.order, blocks=results.families))

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        return measures * sum(c.analysis == self.name for c in comparisons)
