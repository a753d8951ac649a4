"""Code-switched inputs (a sentence that starts in one language and goes on in another)
against their two monolingual versions, per layer."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ...analysis import code_switched, code_switching
from ...analysis.plan import Comparison
from ...transforms import pair_name
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
from .cross_lingual import per_modality

log = logging.getLogger("probekit")


class CodeSwitched(Analysis):
    name = "code_switched"
    similarities = True

    def plan(self, ctx: PlanContext) -> list[Comparison]:
        return per_modality(self.name, ctx.analysis.code_switched, ctx)

    def layers_done(self, c: Comparison, ctx: RowContext) -> int:
        return c.depths * len(ctx.code_switch_pairs)

    def rows(self, c: Comparison, ctx: RowContext) -> list[Row]:
        rows: list[Row] = []
        for first, second in ctx.code_switch_pairs:
            mixed = pair_name(first, second)
            if (mixed, c.modality) not in ctx.present:
                log.info("analyze: no code-switched %s examples %s", c.modality, mixed)
                ctx.progress(c.depths)
                continue
            on = ctx.views_of([first, second, mixed], [c.modality])
            rows += code_switched(ctx.comparer(self.name, on), c.layers, first, second, mixed,
                                  c.modality, stack=c.stack, progress=lambda: ctx.progress(1))
        return rows

    def cost(self, c: Comparison, languages: int, pairs: int) -> tuple[int, int]:
        return 2 * len(c.layers) * pairs, 3 * len(c.layers) * pairs

    def tables(self, rows: Rows, ctx: TableContext) -> Tables:
        return {"code_switching": code_switching(rows[self.name])}

    def figures(self, results: Results) -> Iterator[Figure]:
        from ...report import plot_code_switching

        yield from per_measure(results.table("code_switching"), "code_switching",
                               plot_code_switching, results)

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        return measures * any(c.analysis == self.name for c in comparisons)
