"""Every analysis again within bins of sentence length (seconds, tokens or characters), with
the cross-modal and length-adaptation means by resource level per bin."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ...analysis import (
    AnalysisError,
    group_means,
    length_adaptation,
    make_bins,
    paired_views,
    sentence_lengths,
)
from ...analysis.plan import Comparison
from .base import Analysis, Figure, Results, Row, Rows, TableContext, Tables, per_measure

log = logging.getLogger("probekit")


class LengthBins(Analysis):
    name = "length_bins"

    def tables(self, rows: Rows, ctx: TableContext) -> Tables:
        a, lb = ctx.analysis, ctx.analysis.length_bins
        if not lb.by or ctx.rows_in is None:
            return {}
        langs = ctx.languages
        paired = paired_views(ctx.store, langs, list(ctx.modalities)).sentences
        lengths = sentence_lengths(ctx.store.examples, langs, lb.by)
        fewest = 5 if a.k is None or a.allow_large_k else max(5, 4 * a.k)  # kx + ky <= n / 2
        try:
            bins = make_bins(lengths, lb.by, paired, lb.quantiles, lb.edges, lb.n, a.seed,
                             fewest)
        except AnalysisError as e:
            raise AnalysisError(f"{e}" + (f" (analysis.k: {a.k} needs {fewest} per bin)"
                                          if fewest > 5 else "")) from None
        summary: list[Row] = []
        binned: list[Row] = []
        for b in bins:
            log.info("analyze: length bin %d (%s): %d sentences, %d kept", b.index, b.label,
                     b.available, len(b.sentences))
            found = ctx.rows_in(b.sentences, f" (length bin {b.label})")
            tag = {"length_bin": b.label, "bin_index": b.index, "bin_low": b.low,
                   "bin_high": b.high, "bin_unit": b.unit, "sentences_in_bin": b.available,
                   "n_sentences": len(b.sentences)}
            binned += [{**tag, **r} for kind in found.values() for r in kind]
            summary += [{**tag, **r, "point": f"depth {r['depth']}"}
                        for r in group_means(found["cross_modal"], ctx.resource, "resource",
                                             a.ci)]
            if found["adaptation"]:
                summary += [{**tag, **{k: v for k, v in r.items() if k != "resource"},
                             "stack": "adaptation", "group": r["resource"],
                             "grouping": "resource", "ci_level": 0.95}
                            for r in length_adaptation(found["adaptation"],
                                                       a.adaptation_points, ctx.resource)]
        return {self.name: summary, "similarities_by_length": binned}

    def figures(self, results: Results) -> Iterator[Figure]:
        from ...report import plot_length_bins

        yield from per_measure(results.table(self.name), self.name, plot_length_bins, results)

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        kinds = {c.analysis for c in comparisons}
        return measures * bool(ctx.analysis.length_bins.by and "cross_modal" in kinds)
