"""The paper's four findings as contrasts a reviewer can check, from an analysis's rows.

Each claim is a statistic of many languages' rows whose sign says whether the finding holds
(positive: it does), with a delete-one-language jackknife interval and p-value
(:func:`~probekit.analysis.contrast.jackknife`: it generalises over languages, at these sentences,
n and k), Holm-adjusted across the table:

- ``convergence``: cross-modal similarity rises over depth: per language, the least-squares slope
  of the score over relative depth (first block 0, last 1), averaged over languages;
- ``speech_spread``: speech differs more across languages than text: the mean cross-lingual
  similarity of text minus that of speech, at depth-aligned layers, averaged over depth;
- ``adaptation``: length adaptation narrows the gap more for high- than for low-resource
  languages: per language, cross-modal similarity after minus before the adaptor, mean over
  high-resource languages minus mean over low-resource ones (a difference-in-differences);
- ``modality_gap``: the modality gap exceeds the language gap: mean cross-lingual (same modality)
  minus cross-modal (same language) similarity at depth-aligned layers, averaged over depth.

The same statistic on the control's scores (``control_score``: the same sentences and
languages) gives ``control_effect``; on rows of spectrum-matched Gaussian views
(:class:`~probekit.analysis.simulate.SpectrumMatched`) ``spectrum_effect``: how large an effect
the layers' spectra alone produce.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .contrast import (
    LANGUAGE_JACKKNIFE,
    Contrast,
    depth_weights,
    describe,
    holm,
    jackknife,
)

log = logging.getLogger("probekit.analysis")
Rows = Mapping[str, Sequence[Mapping[str, Any]]]
Statistic = Callable[[set[str]], float]
ALPHA = 0.05
CLAIMS = {
    "convergence": "cross-modal similarity rises over depth",
    "speech_spread": "speech differs more across languages than text",
    "adaptation": "length adaptation narrows the gap more for high- than low-resource languages",
    "modality_gap": "the modality gap exceeds the language gap",
}


def _mean(values: Sequence[float]) -> float:
    v = [x for x in values if np.isfinite(x)]
    return float(np.mean(v)) if v else np.nan


class _Grouped:
    """A column of rows grouped by ``key(row)``, with each row's languages as codes, so that a
    group's mean over the rows whose languages are kept is one masked mean (the jackknife asks
    for it once per left-out language)."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], column: str,
                 key: Callable[[Mapping[str, Any]], Any]):
        langs = sorted({r[f"lang_{s}"] for r in rows for s in "ab"})
        self.codes = {lang: i for i, lang in enumerate(langs)}
        found: dict[Any, list[tuple[int, int, float]]] = {}
        for r in rows:
            found.setdefault(key(r), []).append((self.codes[r["lang_a"]], self.codes[r["lang_b"]],
                                                 float(r.get(column, np.nan))))
        self.groups = {k: tuple(np.array(c) for c in zip(*v, strict=True))
                       for k, v in found.items()}

    def kept(self, keep: set[str]) -> np.ndarray:
        """Which language codes are in ``keep``."""
        mask = np.zeros(len(self.codes), bool)
        mask[[i for lang, i in self.codes.items() if lang in keep]] = True
        return mask

    def values(self, groups: Sequence[Any], kept: np.ndarray, both: bool = True) -> np.ndarray:
        """The finite values of ``groups`` whose first language (and second, with ``both``) is
        kept."""
        out = []
        for g in groups:
            if g in self.groups:
                a, b, v = self.groups[g]
                sel = kept[a] & kept[b] if both else kept[a]
                out.append(v[sel & np.isfinite(v)])
        return np.concatenate(out) if out else np.zeros(0)


def _mean_of(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else np.nan


def convergence(cm: Sequence[Mapping[str, Any]], column: str) -> tuple[list[str], Statistic]:
    """Mean over languages of each language's slope over relative depth."""
    by_lang: dict[str, dict[float, float]] = {}
    for r in cm:
        by_lang.setdefault(r["lang_a"], {})[float(r["rel_depth"])] = float(r.get(column, np.nan))
    slopes = {}
    for lang, curve in by_lang.items():
        depths = sorted(curve)
        if len(depths) >= 2:
            slopes[lang] = float(depth_weights(depths) @ np.array([curve[d] for d in depths]))
    return sorted(slopes), lambda keep: _mean([v for k, v in slopes.items() if k in keep])


def speech_spread(cm: Sequence[Mapping[str, Any]], cl: Sequence[Mapping[str, Any]],
                  column: str) -> tuple[list[str], Statistic]:
    """Cross-lingual text minus cross-lingual speech at the depth-aligned layers of ``cm``."""
    layers = sorted({(r["depth"], r["layer_a"], r["layer_b"]) for r in cm})
    lingual = _Grouped(cl, column, lambda r: (r["layer_a"], r["modality_a"]))

    def stat(keep: set[str]) -> float:
        kept = lingual.kept(keep)
        return _mean([_mean_of(lingual.values([(text, "text")], kept))
                      - _mean_of(lingual.values([(speech, "speech")], kept))
                      for _, speech, text in layers])
    return sorted({r["lang_a"] for r in cm}), stat


def modality_gap(cm: Sequence[Mapping[str, Any]], cl: Sequence[Mapping[str, Any]],
                 column: str) -> tuple[list[str], Statistic]:
    """Cross-lingual (both modalities' pairs) minus cross-modal, at each depth, averaged."""
    layers = sorted({(r["depth"], r["layer_a"], r["layer_b"]) for r in cm})
    lingual = _Grouped(cl, column, lambda r: (r["layer_a"], r["modality_a"]))
    modal = _Grouped(cm, column, lambda r: r["depth"])

    def stat(keep: set[str]) -> float:
        kept_l, kept_m = lingual.kept(keep), modal.kept(keep)
        return _mean([_mean_of(lingual.values([(speech, "speech"), (text, "text")], kept_l))
                      - _mean_of(modal.values([depth], kept_m, both=False))
                      for depth, speech, text in layers])
    return sorted({r["lang_a"] for r in cm}), stat


def adaptation(rows: Sequence[Mapping[str, Any]], points: Sequence[str],
               resource: Mapping[str, str], column: str) -> tuple[list[str], Statistic]:
    """(after - before) averaged over high-resource minus over low-resource languages; the
    points are the first and last speech-side layers of ``points``."""
    before, after = points[0], points[-1]
    at = {(r["lang_a"], r["layer_a"]): float(r.get(column, np.nan)) for r in rows}
    langs = sorted({lang for lang, _ in at if resource.get(lang) in ("high", "low")})
    change = {lang: at.get((lang, after), np.nan) - at.get((lang, before), np.nan)
              for lang in langs}

    def stat(keep: set[str]) -> float:
        high = [v for k, v in change.items() if k in keep and resource[k] == "high"]
        low = [v for k, v in change.items() if k in keep and resource[k] == "low"]
        return _mean(high) - _mean(low) if high and low else np.nan
    return langs, stat


def claim_statistics(rows: Rows, stack_pairs: Sequence[str], points: Sequence[str],
                     resource: Mapping[str, str], column: str,
                     only: tuple[str, str, str] | None = None
                     ) -> list[tuple[str, str, str, str, list[str], Statistic, int, float]]:
    """``(claim, stack, contrast, measure, languages, statistic, n, k)`` of every claim the rows
    allow (``only``: of that ``(claim, stack, measure)`` alone):
    per measure, the per-stack claims for each cross-modal stack pair and the adaptation
    claim."""
    out = []
    cm_all, cl_all = rows.get("cross_modal", []), rows.get("cross_lingual", [])
    ad_all = rows.get("adaptation", [])
    measures = list(dict.fromkeys(r["measure"] for r in [*cm_all, *ad_all]))

    def wanted(claim: str, stack: str, measure: str) -> bool:
        return only is None or only == (claim, stack, measure)
    for measure in measures:
        if only is not None and only[2] != measure:
            continue
        for stack in stack_pairs:
            if only is not None and only[1] != stack:
                continue
            cm = [r for r in cm_all if r["measure"] == measure and r["stack"] == stack]
            if not cm:
                continue
            n, k = int(cm[0]["n"]), float(cm[0].get("k", np.nan))
            if wanted("convergence", stack, measure):
                langs, stat = convergence(cm, column)
                out.append(("convergence", stack, "trend over relative depth", measure, langs,
                            stat, n, k))
            if not (wanted("speech_spread", stack, measure)
                    or wanted("modality_gap", stack, measure)):
                continue
            cl = [r for r in cl_all if r["measure"] == measure]
            speech = {r["layer_a"] for r in cm}
            text = {r["layer_b"] for r in cm}
            have = {(r["layer_a"], r["modality_a"]) for r in cl}
            if all((s, "speech") in have for s in speech) and all((t, "text") in have
                                                                  for t in text):
                if wanted("speech_spread", stack, measure):
                    langs, stat = speech_spread(cm, cl, column)
                    out.append(("speech_spread", stack, "cross-lingual: text - speech", measure,
                                langs, stat, n, k))
                if wanted("modality_gap", stack, measure):
                    langs, stat = modality_gap(cm, cl, column)
                    out.append(("modality_gap", stack, "cross-lingual - cross-modal", measure,
                                langs, stat, n, k))
        ad = [r for r in ad_all if r["measure"] == measure]
        if ad and len(points) >= 2 and wanted("adaptation", "adaptation", measure):
            langs, stat = adaptation(ad, points, resource, column)
            out.append(("adaptation", "adaptation", "(after - before): high - low resource",
                        measure, langs, stat, int(ad[0]["n"]), float(ad[0].get("k", np.nan))))
    return out


Draws = Callable[[str, list[tuple[Any, Any, float]], bool, dict[str, Any]], Contrast]


def claims_table(rows: Rows, stack_pairs: Sequence[str], points: Sequence[str],
                 resource: Mapping[str, str], level: float = 0.95, column: str = "score",
                 variants: Mapping[str, tuple[Rows, dict[str, Any]]] | None = None,
                 spectrum: Rows | None = None, draws: Draws | None = None
                 ) -> list[dict[str, Any]]:
    """One row per claim, stack pair and measure: effect, interval, p-value, Holm-adjusted
    p-value across the table, the control's effect and p-value, the spectrum-matched effect, and
    ``robust``: whether the sign and ``p < 0.05`` hold in every variant (``variants``: label ->
    (rows computed another way, the Comparer settings that made them), e.g. another k or
    z-scored linear CKA; a variant's claim is matched by claim and stack pair).

    With 3 languages or more the interval is a delete-one-language jackknife; with fewer, and
    ``draws`` given (``draws(measure, [(view_a, view_b, weight), ...], control, settings)``: a
    paired contrast of the run's or the control's views), the claim's weighted sum of rows is
    redrawn over sentences (:func:`~probekit.analysis.contrast.paired_contrast`), which speaks
    for these languages only; without ``draws``, no interval."""
    out = []
    has_control = any("control_score" in r for v in rows.values() for r in v)
    control = {kind: [{**r, "control_value": r.get("control_score", np.nan)} for r in v]
               for kind, v in rows.items()}
    args = (stack_pairs, points, resource, level)
    for claim, stack, contrast, measure, langs, _, n, k in claim_statistics(
            rows, stack_pairs, points, resource, column):
        c = _evaluate(rows, (claim, stack, measure), column, *args, draws)
        if not np.isfinite(c.effect):  # e.g. adaptation with one resource level
            log.info("claims: %s (%s, %s) cannot be computed from this run's rows", claim,
                     stack, measure)
            continue
        row: dict[str, Any] = {
            "claim": claim, "finding": CLAIMS[claim], "stack": stack, "contrast": contrast,
            "measure": measure, "k": k, "n": n, "n_langs": len(langs), "score": column,
            "effect": c.effect, "ci_low": c.ci_low, "ci_high": c.ci_high, "p_value": c.p_value,
            "ci_level": level, "ci_method": describe(c)}
        if has_control:
            cc = _evaluate(control, (claim, stack, measure), "control_value", *args, draws,
                           control=True)
            row.update(control_effect=cc.effect, control_p_value=cc.p_value)
        if spectrum is not None:  # a point value: how large an effect the spectra give
            sc = _evaluate(spectrum, (claim, stack, measure), column, *args)
            row.update(spectrum_effect=sc.effect)
        row["robustness"] = ""
        row["robust"] = np.nan
        if variants:
            held, notes = [], []
            for label, (vrows, settings) in variants.items():
                names = {r["measure"] for v in vrows.values() for r in v}
                vm = measure if measure in names else next(iter(sorted(names)), measure)
                vc = _evaluate(vrows, (claim, stack, vm), column, *args, draws,
                               settings=settings)
                ok = bool(np.isfinite(vc.p_value) and np.sign(vc.effect) == np.sign(c.effect)
                          and vc.p_value < ALPHA)
                held.append(ok)
                notes.append(f"{label}: {vc.effect:+.3f} (p={vc.p_value:.2g})")
            row["robust"] = bool(all(held)) and bool(c.p_value < ALPHA)
            row["robustness"] = "; ".join(notes)
        out.append(row)
    adjusted = holm([r["p_value"] for r in out])
    for r, p in zip(out, adjusted, strict=True):
        r["p_adjusted"] = float(p)
        r["p_adjustment"] = f"Holm over the {int(np.isfinite(adjusted).sum())} claims"
        r["supported"] = bool(np.isfinite(p) and p < ALPHA and r["effect"] > 0)
    return out


def _evaluate(rows: Rows, which: tuple[str, str, str], column: str, stack_pairs: Sequence[str],
              points: Sequence[str], resource: Mapping[str, str], level: float,
              draws: Draws | None = None, control: bool = False,
              settings: dict[str, Any] | None = None) -> Contrast:
    """One claim (``(claim, stack, measure)``) on ``rows``: the jackknife over languages, or
    with fewer than 3 languages the paired draws over sentences (NaN when it cannot)."""
    for name, stack, _, m, langs, stat, _, _ in claim_statistics(rows, stack_pairs, points,
                                                                 resource, column, which):
        if (name, stack, m) == which:
            if len(langs) >= 3 or draws is None or not np.isfinite(stat(set(langs))):
                return jackknife(langs, stat, level)  # NaN (no interval) when not computable
            terms = claim_terms(rows, which, stack_pairs, points, resource)
            return draws(m, terms, control, settings or {})
    return Contrast(np.nan, np.nan, np.nan, np.nan, np.nan, level, LANGUAGE_JACKKNIFE, 0)


def claim_terms(rows: Rows, which: tuple[str, str, str], stack_pairs: Sequence[str],
                points: Sequence[str], resource: Mapping[str, str]
                ) -> list[tuple[Any, Any, float]]:
    """A claim as a weighted sum of its rows' scores, ``[(view_a, view_b, weight), ...]``
    (every claim is linear in the rows at a fixed set of languages): each row's weight is the
    claim evaluated with that row 1 and every other 0."""
    flat = [(kind, i) for kind, v in rows.items() for i, r in enumerate(v)
            if r["measure"] == which[2]]
    terms = []
    for kind, i in flat:
        unit = {k: [{**r, "_unit": float(k == kind and j == i)} for j, r in enumerate(v)]
                for k, v in rows.items()}
        for name, stack, _, m, langs, stat, _, _ in claim_statistics(unit, stack_pairs, points,
                                                                     resource, "_unit", which):
            if (name, stack, m) == which:
                w = float(stat(set(langs)))
                if np.isfinite(w) and w != 0:
                    r = rows[kind][i]
                    terms.append(((r["layer_a"], r["lang_a"], r["modality_a"]),
                                  (r["layer_b"], r["lang_b"], r["modality_b"]), w))
    return terms
