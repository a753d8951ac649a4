"""Means over languages, with intervals that say what they generalise over: a mean of rows
(one per language, or one per language pair) and its delete-one-language jackknife interval
(a language left out takes every pair it is in), by group of languages (resource level, family,
genus, script, a recipe's grouping) and by family distance."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .rows import GroupMeanRow

log = logging.getLogger("probekit.analysis")

MEAN_CI = "t-interval over languages"
GROUP_CI = ("delete-one-language jackknife (t, L - 1 df): generalises over languages, at these "
            "sentences, n and k")
FEWEST_FOR_AN_INTERVAL = 3  # languages: with 2, a t-interval spans 12.7 standard errors, and
                            # a single pair's two languages share one mean


WITHIN, BETWEEN = "(within)", "(between)"  # cross-lingual pairs of one group, of two


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean over languages and a ``level`` Student-t interval from their spread (NaN for fewer
    than :data:`FEWEST_FOR_AN_INTERVAL` languages)."""
    from scipy.stats import t

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if not len(v):
        return np.nan, np.nan, np.nan
    mean = float(v.mean())
    if len(v) < FEWEST_FOR_AN_INTERVAL:
        return mean, np.nan, np.nan
    half = float(t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def group_means(rows: Sequence[Mapping[str, Any]], groups: Mapping[str, str],
                grouping: str = "resource", level: float = 0.95) -> list[GroupMeanRow]:
    """Mean chance-adjusted score per analysis, stack, modality, measure, depth and group of
    languages (``groups``: language -> group), with a ``level`` delete-one-language jackknife
    interval (:data:`GROUP_CI`).

    Cross-modal rows belong to their language's group (the jackknife of their mean is the
    t-interval over languages). Cross-lingual rows belong to the pair of groups (``high~high``,
    ``high~low``) and to ``(within)`` or ``(between)`` groups; their mean is over the pairs, and
    each jackknife replicate leaves out one language with every pair it is in (pairs that share a
    language are not independent: a t-interval over pairs or over language means is about half
    as wide as it must be). Fewer than 3 languages: no interval (NaN). Rows of languages outside
    ``groups`` are left out."""
    def classes(r: Mapping[str, Any]) -> list[str]:
        ga, gb = groups.get(r["lang_a"]), groups.get(r["lang_b"])
        if ga is None or gb is None:
            return []
        if r["analysis"] == "cross_modal":
            return [ga]
        return ["~".join(sorted((ga, gb))), WITHIN if ga == gb else BETWEEN]

    return _class_means([r for r in rows if r["analysis"] in ("cross_modal", "cross_lingual")],
                        classes, grouping, level)


def language_mean(rows: Sequence[Mapping[str, Any]], column: str = "adjusted",
                  level: float = 0.95) -> tuple[float, float, float]:
    """The mean of ``column`` over rows (one per language, or one per language pair) and its
    delete-one-language jackknife interval: ``(mean, low, high)``."""
    from .contrast import jackknife

    values = [(r["lang_a"], r.get("lang_b", r["lang_a"]), float(r.get(column, np.nan)))
              for r in rows]
    langs = sorted({lang for a, b, _ in values for lang in (a, b)})

    def mean_of(keep: set[str]) -> float:
        v = [x for a, b, x in values if a in keep and b in keep and np.isfinite(x)]
        return float(np.mean(v)) if v else np.nan

    c = jackknife(langs, mean_of, level)
    return c.effect, c.ci_low, c.ci_high


def warn_mixed(rows: Sequence[Mapping[str, Any]], what: str) -> None:
    """Log a warning when rows pooled into one mean were computed at different n or k: their
    adjusted scores are not comparable (the adjusted score of a fixed-k measure grows with n)."""
    ns = {r.get("n") for r in rows}
    ks = {r.get("k") for r in rows if np.isfinite(r.get("k", np.nan))}
    if len(ns) > 1 or len(ks) > 1:
        log.warning("%s pools rows computed at different n (%s) or k (%s): adjusted scores "
                    "change with n and k, so the mean mixes that change in", what,
                    sorted(map(str, ns)), sorted(map(str, ks)))


FAMILY_DISTANCE = "family_distance"


def family_distance_means(rows: Sequence[Mapping[str, Any]], distance: Callable[[str, str], Any],
                          names: Mapping[int, str], level: float = 0.95
                          ) -> list[GroupMeanRow]:
    """Cross-lingual rows grouped by how related the pair's languages are (``distance(a, b)``:
    0, 1, 2 or None, named by ``names``, e.g. same genus / same family / different families), in
    the format of :func:`group_means` (grouping :data:`FAMILY_DISTANCE`)."""
    def classes(r: Mapping[str, Any]) -> list[str]:
        d = distance(r["lang_a"], r["lang_b"])
        return [] if d is None else [f"{d}: {names[d]}"]

    return _class_means([r for r in rows if r["analysis"] == "cross_lingual"], classes,
                        FAMILY_DISTANCE, level)


def _class_means(rows: Sequence[Mapping[str, Any]],
                 classes: Callable[[Mapping[str, Any]], list[str]], grouping: str,
                 level: float) -> list[GroupMeanRow]:
    """Rows per class (``classes(row)``) at each analysis, stack, modality, measure and depth:
    their mean and its delete-one-language jackknife interval."""
    def modality(r: Mapping[str, Any]) -> str:
        a, b = r["modality_a"], r.get("modality_b", r["modality_a"])
        return a if a == b else f"{a}~{b}"

    out: list[GroupMeanRow] = []
    keyed: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        keyed.setdefault((r["analysis"], r["stack"], modality(r), r["measure"], r["depth"]),
                         []).append(r)
    for key, here in keyed.items():
        warn_mixed(here, f"group means of {key[0]} ({key[1]}, {key[3]}, depth {key[4]})")
        members: dict[str, list[Mapping[str, Any]]] = {}
        for r in here:
            for group in classes(r):
                members.setdefault(group, []).append(r)
        for group in sorted(members):
            pairs = members[group]
            mean, lo, hi = language_mean(pairs, "adjusted", level)
            langs = {r.get(k, r["lang_a"]) for r in pairs for k in ("lang_a", "lang_b")}
            out.append({"analysis": key[0], "stack": key[1], "modality": key[2],
                        "measure": key[3], "depth": key[4], "grouping": grouping,
                        "group": group, "n_langs": len(langs), "n_rows": len(pairs),
                        "adjusted": mean, "ci_low": lo, "ci_high": hi, "ci_level": level,
                        "ci_method": GROUP_CI, "score": row_mean(pairs, "score"),
                        "chance": row_mean(pairs, "chance"),
                        "control_adjusted": row_mean(pairs, "control_adjusted")})
    return out


def row_mean(rows: Sequence[Mapping[str, Any]], column: str) -> float:
    v = [float(r.get(column, np.nan)) for r in rows]
    v = [x for x in v if np.isfinite(x)]
    return float(np.mean(v)) if v else np.nan


def finite_mean(values: Sequence[float]) -> float:
    v = [float(x) for x in values if np.isfinite(x)]
    return float(np.mean(v)) if v else np.nan
