"""The four analyses of "How do Multimodal Foundation Models Encode Text and Speech?", and checks.

Each returns tidy rows (dicts): one per comparison and measure, with the measure's parameters
(variance or k, kx, ky, n, dtype), the chance level, the chance-adjusted score, the interval and
its method (see :class:`probekit.analysis.Comparer`).

1. cross_modal: per language and depth, speech vs text of the same sentences.
2. cross_lingual: per modality and layer, every language vs every other.
3. length_adaptation: cross-modal similarity at chosen points (e.g. before/after the length
   adaptor), grouped by resource level.
4. modality_gap: per depth, same-language cross-modal vs same-modality cross-lingual similarity.

Summaries across rows (3 and 4) average chance-adjusted scores, ``(s - chance) / (1 - chance)``:
raw scores of analyses with different kept directions have different chance levels, and their
difference would be partly a difference of chance. Raw means are kept beside them.
Also: :func:`align_depths` pairs stacks of unequal depth explicitly; :func:`with_control` puts
a control run's scores beside each row; :func:`measure_agreement` says whether several measures
tell the same story. Means over languages by group, and their intervals, are in :mod:`.means`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any, cast

import numpy as np

from ..choices import ALIGNMENTS
from .basis import AnalysisError
from .grid import Comparer
from .means import GROUP_CI, MEAN_CI, finite_mean, language_mean, mean_ci, row_mean, warn_mixed
from .rows import ComparerRow, SimilarityRow

ROW_KEY = ("analysis", "stack", "depth", "layer_a", "layer_b", "lang_a", "lang_b", "modality_a",
           "modality_b", "measure")


def align_depths(layers_a: Sequence[str], layers_b: Sequence[str], how: str = "same_index",
                 names: tuple[str, str] = ("a", "b")) -> list[tuple[str, str]]:
    """Pairs of layers at matching depth. ``same_index`` pairs block i with block i and refuses
    stacks of unequal depth; ``relative`` walks the shorter stack and pairs its block i of m with
    the longer stack's block ``round(i (M - 1) / (m - 1))`` (first with first, last with last)."""
    if how not in ALIGNMENTS:
        raise AnalysisError(f"depth alignment must be one of {', '.join(ALIGNMENTS)}; got {how!r}")
    la, lb = list(layers_a), list(layers_b)
    if not la or not lb:
        raise AnalysisError(f"no recorded layers for {names[0] if not la else names[1]}")
    if len(la) == len(lb):
        return list(zip(la, lb, strict=True))
    if how == "same_index":
        raise AnalysisError(
            f"{names[0]} has {len(la)} blocks and {names[1]} has {len(lb)}: pairing them by index "
            "would compare blocks at different relative depths and drop the deeper stack's last "
            f"{abs(len(la) - len(lb))}. Set analysis.depth_alignment: relative to pair them by "
            "fraction of depth")
    short, long_, flip = (la, lb, False) if len(la) < len(lb) else (lb, la, True)
    m, big = len(short), len(long_)
    pairs = [(short[i], long_[round(i * (big - 1) / (m - 1)) if m > 1 else big - 1])
             for i in range(m)]
    return [(b, a) for a, b in pairs] if flip else pairs


def cross_modal(comparer: Comparer, layer_pairs: Sequence[tuple[str, str]],
                langs: Sequence[str], stack: str = "",
                progress: Callable[[], Any] | None = None) -> list[SimilarityRow]:
    """``layer_pairs[i] = (speech_layer, text_layer)`` at depth i (see :func:`align_depths`); the
    same name twice for a stack that both modalities run through (a shared decoder or LLM).
    ``progress()`` is called after each depth."""
    rows: list[SimilarityRow] = []
    for depth, (speech_layer, text_layer) in enumerate(layer_pairs):
        for lang in langs:
            for row in comparer.compare((speech_layer, lang, "speech"), (text_layer, lang, "text")):
                rows.append(_tidy(row, "cross_modal", stack, depth, len(layer_pairs),
                                  speech_layer, text_layer, lang, lang, "speech", "text"))
        comparer.forget()
        if progress:
            progress()
    return rows


def cross_lingual(comparer: Comparer, layers: Sequence[str], langs: Sequence[str],
                  modality: str, stack: str = "", against: str | None = None,
                  progress: Callable[[], Any] | None = None) -> list[SimilarityRow]:
    """Every pair of languages (or every language against ``against``) at each layer;
    ``progress()`` is called after each layer."""
    rows: list[SimilarityRow] = []
    for depth, layer in enumerate(layers):
        if against is None:
            todo = {a: [b for b in langs if b > a] for a in langs}
        else:
            todo = {against: [b for b in langs if b != against]}
        for a, bs in todo.items():
            for row in comparer.compare_many((layer, a, modality),
                                             [(layer, b, modality) for b in bs]):
                _, lang_b, _ = cast(tuple[str, str, str], row["b"])  # the key given above
                rows.append(_tidy(row, "cross_lingual", stack, depth, len(layers), layer, layer,
                                  a, lang_b, modality, modality))
        comparer.forget()
        if progress:
            progress()
    return rows


def code_switched(comparer: Comparer, layers: Sequence[str], first: str, second: str,
                  mixed: str, modality: str, stack: str = "",
                  progress: Callable[[], Any] | None = None) -> list[SimilarityRow]:
    """Per layer: the code-switched examples (language ``mixed``, e.g. ``eng>fra``) against
    the same sentences in ``first`` and in ``second``, on one modality."""
    return [{**r, "analysis": "code_switched"} for r in
            cross_lingual(comparer, layers, [first, second], modality, stack, against=mixed,
                          progress=progress)]


def code_switching(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per code-switched pair, stack, modality, measure and depth: the chance-adjusted
    similarity of the mixed examples to the first and to the second language, their difference
    (``first - second``: positive when the mixed input is closer to the language it starts
    in), raw scores, and the control's where present."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        if r["analysis"] != "code_switched":
            continue
        first, second = r["lang_a"].split(">")
        key = (r["lang_a"], r["stack"], r["modality_a"], r["measure"], r["depth"])
        row = out.setdefault(key, {"analysis": "code_switching", "mixed": r["lang_a"],
                                   "first": first, "second": second, "stack": r["stack"],
                                   "modality": r["modality_a"], "measure": r["measure"],
                                   "depth": r["depth"], "layer": r["layer_a"]})
        side = "first" if r["lang_b"] == first else "second"
        row[f"to_{side}"] = r["adjusted"]
        row[f"to_{side}_raw"] = r["score"]
        row[f"to_{side}_control"] = r.get("control_adjusted", np.nan)
    for row in out.values():
        row["first_minus_second"] = row.get("to_first", np.nan) - row.get("to_second", np.nan)
    return list(out.values())


def length_adaptation(cross_modal_rows: Sequence[Mapping[str, Any]],
                      points: Mapping[str, str], resource: Mapping[str, str]
                      ) -> list[dict[str, Any]]:
    """Mean chance-adjusted cross-modal score per point (``label -> speech-side layer``), measure
    and resource level, with a 95% interval over languages; raw means beside it."""
    out = []
    measures = list(dict.fromkeys(r["measure"] for r in cross_modal_rows))
    for measure in measures:
        for label, layer in points.items():
            for level in sorted(set(resource.values())):
                here = [r for r in cross_modal_rows if r["measure"] == measure
                        and r["layer_a"] == layer and resource.get(r["lang_a"]) == level]
                if not here:
                    continue
                adjusted, lo, hi = mean_ci([r["adjusted"] for r in here])
                out.append({"analysis": "length_adaptation", "measure": measure, "point": label,
                            "layer_a": layer, "resource": level, "adjusted": adjusted,
                            "ci_low": lo, "ci_high": hi, "ci_method": MEAN_CI,
                            "score": row_mean(here, "score"), "chance": row_mean(here, "chance"),
                            "control_adjusted": row_mean(here, "control_adjusted"),
                            "n_langs": len(here)})
    return out


def modality_gap(cross_modal_rows: Sequence[Mapping[str, Any]],
                 cross_lingual_rows: Sequence[Mapping[str, Any]],
                 level: float = 0.95) -> list[dict[str, Any]]:
    """Per stack, depth and measure: mean chance-adjusted cross-modal (same language) vs
    cross-lingual (same modality) score. A positive ``gap`` (cross-lingual minus cross-modal)
    means languages are closer than modalities. Every interval, the gap's included, is a
    delete-one-language jackknife (:data:`GROUP_CI`): a language left out takes its cross-modal
    row and every cross-lingual pair it is in."""
    from .contrast import jackknife

    out = []
    keys = list(dict.fromkeys((r["stack"], r["depth"], r["measure"]) for r in cross_modal_rows))
    for stack, depth, measure in sorted(keys, key=lambda k: (k[0], k[1], k[2])):
        here = [r for r in cross_modal_rows
                if (r["stack"], r["depth"], r["measure"]) == (stack, depth, measure)]
        layers = {"speech": here[0]["layer_a"], "text": here[0]["layer_b"]}
        mean, lo, hi = language_mean(here, "adjusted", level)
        row = {"analysis": "modality_gap", "stack": stack, "depth": depth, "measure": measure,
               "layer_speech": layers["speech"], "layer_text": layers["text"],
               "cross_modal": mean, "cross_modal_ci_low": lo, "cross_modal_ci_high": hi,
               "cross_modal_raw": row_mean(here, "score"),
               "cross_modal_control": row_mean(here, "control_adjusted")}
        lingual: list[Mapping[str, Any]] = []
        for m, layer in layers.items():
            there = [r for r in cross_lingual_rows if r["modality_a"] == m
                     and r["layer_a"] == layer and r["measure"] == measure]
            mean, lo, hi = language_mean(there, "adjusted", level)
            row.update({f"cross_lingual_{m}": mean, f"cross_lingual_{m}_ci_low": lo,
                        f"cross_lingual_{m}_ci_high": hi,
                        f"cross_lingual_{m}_raw": row_mean(there, "score"),
                        f"cross_lingual_{m}_control": row_mean(there, "control_adjusted")})
            lingual += there
        warn_mixed([*here, *lingual], f"modality gap ({stack}, {measure}, depth {depth})")

        def gap(keep: set[str], lingual: list = lingual, here: list = here) -> float:
            cl = [r["adjusted"] for r in lingual if r["lang_a"] in keep and r["lang_b"] in keep]
            cm = [r["adjusted"] for r in here if r["lang_a"] in keep]
            return finite_mean(cl) - finite_mean(cm)

        c = jackknife(sorted({r["lang_a"] for r in here}), gap, level)
        row.update(gap=c.effect, gap_ci_low=c.ci_low, gap_ci_high=c.ci_high,
                   gap_p_value=c.p_value, score_kind="chance-adjusted", ci_level=level,
                   ci_method=GROUP_CI)
        out.append(row)
    return out


def with_control(rows: Sequence[Mapping[str, Any]], control_rows: Sequence[Mapping[str, Any]],
                 label: str = "random_init") -> list[SimilarityRow]:
    """``rows`` with the matching control row's score, chance and adjusted score beside each
    (``control_score``, ``control_chance``, ``control_adjusted``; NaN where none matches)."""
    found = {tuple(r[k] for k in ROW_KEY): r for r in control_rows}
    out = []
    for r in rows:
        c = found.get(tuple(r[k] for k in ROW_KEY), {})
        out.append(cast(SimilarityRow, {
            **r, "control": label, "control_score": c.get("score", np.nan),
            "control_chance": c.get("chance", np.nan),
            "control_adjusted": c.get("adjusted", np.nan)}))
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN for a constant input."""
    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):  # ties share their mean rank
            tie = v == value
            r[tie] = r[tie].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return np.nan
    return float(np.corrcoef(ra, rb)[0, 1])


FEWEST_RANKED = 5  # points a Spearman correlation needs before it can differ from chance


def measure_agreement(rows: Sequence[Mapping[str, Any]], column: str = "adjusted"
                      ) -> list[dict[str, Any]]:
    """How the measures agree: per pair of measures, Spearman's correlation of each layer-wise
    curve (cross-modal: a language's scores over depth) and of each language-by-language
    matrix (cross-lingual: the pairs' scores at one layer), averaged over curves or matrices.
    ``points``: the median number of points per curve or matrix; ``meaningful``: at least
    :data:`FEWEST_RANKED` (with 4 points even perfect agreement has a two-sided p of 0.083, so
    no Spearman of so few tells agreement from chance)."""
    measures = list(dict.fromkeys(r["measure"] for r in rows))
    groups: dict[str, tuple[tuple[str, ...], str | tuple[str, ...]]] = {
        "layer curves": (("analysis", "stack", "lang_a", "lang_b", "modality_a"), "depth"),
        "language matrices": (("analysis", "stack", "depth", "modality_a"), ("lang_a", "lang_b"))}
    out = []
    for kind, (by, within) in groups.items():
        want = "cross_modal" if kind == "layer curves" else "cross_lingual"
        here = [r for r in rows if r["analysis"] == want and np.isfinite(r.get(column, np.nan))]
        curves: dict[tuple, dict[str, dict[Any, float]]] = {}
        for r in here:
            item = tuple(r[k] for k in within) if isinstance(within, tuple) else r[within]
            curves.setdefault(tuple(r[k] for k in by), {}).setdefault(r["measure"], {})[item] = \
                float(r[column])
        for ma, mb in combinations(measures, 2):
            rhos, points = [], []
            for per in curves.values():
                if ma in per and mb in per:
                    common = sorted(set(per[ma]) & set(per[mb]), key=str)
                    if len(common) >= 3:
                        rho = _spearman(np.array([per[ma][i] for i in common]),
                                        np.array([per[mb][i] for i in common]))
                        if np.isfinite(rho):
                            rhos.append(rho)
                            points.append(len(common))
            middle = float(np.median(points)) if points else np.nan
            out.append({"analysis": "measure_agreement", "kind": kind, "measure_a": ma,
                        "measure_b": mb, "column": column, "n_items": len(rhos),
                        "points": middle, "meaningful": bool(middle >= FEWEST_RANKED),
                        "spearman_mean": float(np.mean(rhos)) if rhos else np.nan,
                        "spearman_min": float(np.min(rhos)) if rhos else np.nan})
    return out


def _tidy(row: ComparerRow, analysis: str, stack: str, depth: int, depths: int, layer_a: str,
          layer_b: str, lang_a: str, lang_b: str, mod_a: str, mod_b: str) -> SimilarityRow:
    scores = {k: v for k, v in row.items() if k not in ("a", "b")}
    return cast(SimilarityRow, {"analysis": analysis, "stack": stack, "depth": depth,
            "rel_depth": depth / (depths - 1) if depths > 1 else 1.0, "layer_a": layer_a,
            "layer_b": layer_b, "lang_a": lang_a, "lang_b": lang_b, "modality_a": mod_a,
            "modality_b": mod_b, **scores})
