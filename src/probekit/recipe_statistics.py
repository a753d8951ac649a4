"""Checks of a recipe's statistics: the measures and their options, k, permutations,
intervals, processes and device; the contrasts and the claims."""

from __future__ import annotations

import re

from .choices import CONTRAST_KINDS
from .errors import RecipeError, closest
from .recipe_schema import ALLOWED, INTERVAL_ANALYSES, AnalysisSection


def check_statistics(a: AnalysisSection, where: str) -> None:
    """``analysis``: measures known and configured, k, variance, n_perm, n_boot, ci,
    intervals, workers and device in range."""
    from .analysis import MEASURES, AnalysisError, split_measure

    items = []
    for i, item in enumerate(a.measures):
        try:
            items.append(split_measure(item))
        except AnalysisError as e:
            raise RecipeError(f"{where}: analysis.measures[{i}]: {e}") from None
    names = [name for name, _ in items]
    bad = [m for m in names if m not in MEASURES]
    if bad or not names:
        hint = closest(bad[0], MEASURES) if bad else []
        raise RecipeError(f"{where}: analysis.measures: "
                          + (f"unknown measure {bad[0]!r}" + (f"; did you mean {hint[0]!r}?"
                             if hint else "") if bad else "list at least one measure")
                          + f" (measures: {', '.join(MEASURES)})")
    if len(set(names)) != len(names):
        raise RecipeError(f"{where}: analysis.measures: {names} names a measure twice")
    for i, (name, options) in enumerate(items):  # unknown option: the closest; wrong type
        MEASURES[name].configure(options, f"analysis.measures[{i}].{name}", where, RecipeError)
    if a.k is not None and a.k < 1:
        raise RecipeError(f"{where}: analysis.k: kept directions must be at least 1; got {a.k}")
    if not 0 < a.variance <= 1:
        raise RecipeError(f"{where}: analysis.variance: a fraction of variance in (0, 1]; "
                          f"got {a.variance}")
    if a.n_perm < 2:
        raise RecipeError(f"{where}: analysis.n_perm: at least 2 permutations (20 or more "
                          f"recommended): chance levels and adjusted scores need them; got "
                          f"{a.n_perm}")
    if a.n_boot != 0 and a.n_boot < 2:
        raise RecipeError(f"{where}: analysis.n_boot: 0 (no intervals) or at least 2 half-samples "
                          f"(100 or more recommended); got {a.n_boot}")
    if not 0 < a.ci < 1:
        raise RecipeError(f"{where}: analysis.ci: the interval's level, in (0, 1), e.g. 0.95; "
                          f"got {a.ci}")
    bad = [x for x in a.intervals if x not in INTERVAL_ANALYSES]
    if bad:
        raise RecipeError(f"{where}: analysis.intervals: {bad[0]!r} is not one of "
                          f"{', '.join(INTERVAL_ANALYSES)}")
    if a.workers < 1:
        raise RecipeError(f"{where}: analysis.workers: at least 1 process; got {a.workers}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(a.device)):
        raise RecipeError(f"{where}: analysis.device: auto, cpu, cuda or cuda:N; got "
                          f"{str(a.device)[:40]!r}")


def check_claims(a: AnalysisSection, languages: list[str], where: str) -> None:
    """``analysis.claims`` and ``analysis.contrasts``: values the claims stage can use."""
    if a.claims.score not in ALLOWED["analysis.claims.score"]:
        raise RecipeError(f"{where}: analysis.claims.score: {a.claims.score!r} is not one of "
                          "score, adjusted")
    if any(k < 1 for k in a.claims.robust_k):
        raise RecipeError(f"{where}: analysis.claims.robust_k: each k at least 1; got "
                          f"{a.claims.robust_k}")
    pairs = [f"{sp}~{tx}" for sp, tx in a.cross_modal]
    for i, c in enumerate(a.contrasts):
        at = f"{where}: analysis.contrasts[{i}]"
        if c.kind not in CONTRAST_KINDS:
            raise RecipeError(f"{at}.kind: {c.kind!r} is not one of "
                              f"{', '.join(CONTRAST_KINDS)}")
        if c.kind == "did":
            if len(a.adaptation_points) < 2:
                raise RecipeError(f"{at}: kind did compares the first and last "
                                  "analysis.adaptation_points; the recipe names "
                                  f"{len(a.adaptation_points)}")
            if c.lang is not None:
                raise RecipeError(f"{at}.lang: a difference-in-differences compares groups of "
                                  "languages; leave lang out")
            continue
        if not pairs:
            raise RecipeError(f"{at}: contrasts compare cross-modal rows; analysis.cross_modal "
                              "names no [speech stack, text stack] pair")
        if c.stack and c.stack not in pairs:
            raise RecipeError(f"{at}.stack: {c.stack!r} is not one of the cross_modal pairs "
                              f"{', '.join(pairs)}")
        if c.lang is not None and c.lang not in languages:
            raise RecipeError(f"{at}.lang: {c.lang!r} is not one of data.languages")
        if c.kind not in ("trend", "did") and not c.depths:
            raise RecipeError(f"{at}.depths: kind {c.kind} needs a depth, e.g. [-1, 0]")
