"""Length adaptation: speech at points before and after the model's length adaptor against
the text, by resource level (the paper's finding that adaptation narrows the gap, mainly for
high-resource languages)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ...analysis import cross_modal, length_adaptation
from ...analysis.plan import Comparison
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
    per_measure,
)


class Adaptation(Analysis):
    name = "adaptation"

    def plan(self, ctx: PlanContext) -> list[Comparison]:
        a = ctx.analysis
        if not (a.adaptation_points and a.cross_modal):
            return []
        text_layer = a.adaptation_text_layer or ctx.of[a.cross_modal[0][1]][-1]
        return [Comparison(self.name, self.name, pairs=tuple(
            (layer, text_layer) for layer in a.adaptation_points.values()))]

    @property
    def interval_name(self) -> str:
        return "cross_modal"  # its rows are cross-modal rows

    def rows(self, c: Comparison, ctx: RowContext) -> Sequence[Row]:
        return cross_modal(ctx.comparer(self.interval_name), c.pairs, ctx.languages,
                           stack=self.name)

    def layers_done(self, c: Comparison, ctx: RowContext) -> int:
        return 0

    def cost(self, c: Comparison, languages: int, pairs: int) -> tuple[int, int]:
        return len(c.pairs) * languages, 2 * len(c.pairs) * languages

    def tables(self, rows: Rows, ctx: TableContext) -> Tables:
        if not rows[self.name]:
            return {}
        return {"length_adaptation": length_adaptation(
            rows[self.name], ctx.analysis.adaptation_points, ctx.resource)}

    def figures(self, results: Results) -> Iterator[Figure]:
        from ...report import plot_adaptation_bars

        yield from per_measure(results.table("length_adaptation"), "length_adaptation",
                               plot_adaptation_bars, results)

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        return measures * any(c.analysis == self.name for c in comparisons)
