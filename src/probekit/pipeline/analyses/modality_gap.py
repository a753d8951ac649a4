"""The modality gap against the language gap: at each depth, how much less speech matches its
own text than text matches other languages' text (the paper's last finding)."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis import modality_gap
from ...analysis.plan import Comparison
from .base import Analysis, Figure, Results, Rows, TableContext, Tables, per_measure


class ModalityGap(Analysis):
    name = "modality_gap"

    def tables(self, rows: Rows, ctx: TableContext) -> Tables:
        cm, cl = rows["cross_modal"], rows["cross_lingual"]
        return {self.name: modality_gap(cm, cl) if cm and cl else []}

    def figures(self, results: Results) -> Iterator[Figure]:
        from ...report import plot_modality_gap

        yield from per_measure(results.table(self.name), self.name, plot_modality_gap, results)

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        kinds = {c.analysis for c in comparisons}
        return measures * ({"cross_modal", "cross_lingual"} <= kinds)
