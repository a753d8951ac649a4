"""Agreement between measures: the rank correlation of their scores over the same rows (made
when a recipe lists several measures)."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis import measure_agreement
from ...analysis.plan import Comparison
from .base import Analysis, Figure, Results, Rows, TableContext, Tables


class MeasureAgreement(Analysis):
    name = "measure_agreement"

    def tables(self, rows: Rows, ctx: TableContext) -> Tables:
        if len(ctx.analysis.measure_names) < 2:
            return {}
        return {self.name: measure_agreement([*rows["cross_modal"], *rows["cross_lingual"]])}

    def figures(self, results: Results) -> Iterator[Figure]:
        from ...report import plot_measure_agreement

        table = results.table(self.name)
        if table is not None:
            yield self.name, lambda: plot_measure_agreement(table)

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        return int(measures > 1)
