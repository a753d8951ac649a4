"""Means over languages by group (resource level, family, genus, script, the recipe's own
groupings) and by family distance, with delete-one-language jackknife intervals."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial

from ...analysis import family_distance_means, group_means
from ...analysis.plan import Comparison
from .base import Analysis, Figure, Results, Rows, TableContext, Tables

log = logging.getLogger("probekit")
GROUPED = ("cross_modal", "cross_lingual")  # the analyses whose rows are averaged


class GroupMeans(Analysis):
    name = "group_means"

    def tables(self, rows: Rows, ctx: TableContext) -> Tables:
        from ...languages import DISTANCES, family_distance

        a = ctx.analysis
        both = [r for kind in GROUPED for r in rows[kind]]
        for name in [n for n in ("resource", *a.groups) if n not in ctx.groupings]:
            log.info("analyze: no group means by %s: this run's languages are in one group",
                     name)
        means = [row for name, groups in ctx.groupings.items()
                 for row in group_means(both, groups, name, a.ci)]
        if ctx.family_distances:
            means += family_distance_means(rows["cross_lingual"], family_distance, DISTANCES,
                                           a.ci)
        return {self.name: means}

    def figures(self, results: Results) -> Iterator[Figure]:
        from ...report import plot_group_means

        groups = results.table(self.name)
        if groups is None:
            return
        for (measure, analysis, grouping), sub in groups.groupby(
                ["measure", "analysis", "grouping"], sort=False):
            by = "" if grouping == "resource" else f"_by_{grouping}"
            yield (f"group_means_{analysis}{by}{results.suffix(measure)}",
                   partial(plot_group_means, sub))

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        kinds = {c.analysis for c in comparisons}
        return measures * (len(ctx.groupings) * len(kinds & set(GROUPED))
                           + (ctx.family_distances and "cross_lingual" in kinds))
