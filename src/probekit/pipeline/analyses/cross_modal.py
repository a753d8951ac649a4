"""Cross-modal similarity: each language's speech against its text, depth by depth (the
paper's convergence over layers), and its layer-curve figures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

from ...analysis import cross_modal
from ...analysis.paper import align_depths
from ...analysis.plan import Comparison
from .base import Analysis, Figure, PlanContext, Results, Row, RowContext, TableContext


class CrossModal(Analysis):
    name = "cross_modal"
    similarities = True
    intervals = True

    def plan(self, ctx: PlanContext) -> list[Comparison]:
        a, of = ctx.analysis, ctx.of
        return [Comparison(self.name, f"{sp}~{tx}", pairs=tuple(
                    align_depths(of[sp], of[tx], a.depth_alignment, (sp, tx))))
                for sp, tx in a.cross_modal]

    def rows(self, c: Comparison, ctx: RowContext) -> Sequence[Row]:
        return cross_modal(ctx.comparer(self.name), c.pairs, ctx.languages, stack=c.stack,
                           progress=lambda: ctx.progress(1))

    def cost(self, c: Comparison, languages: int, pairs: int) -> tuple[int, int]:
        return len(c.pairs) * languages, 2 * len(c.pairs) * languages

    def figures(self, results: Results) -> Iterator[Figure]:
        from ...report import plot_layer_curves, stack_label

        for measure, stack, sub in results.similarities_of(self.name):
            yield (f"cross_modal_{stack.replace('~', '-')}{results.suffix(measure)}",
                   partial(plot_layer_curves, sub, f"speech vs text, {stack_label(stack)}",
                           groups=results.resource))

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        return measures * sum(c.analysis == self.name for c in comparisons)
