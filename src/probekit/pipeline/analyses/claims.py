"""Claims a reviewer can check: the paper's four findings as contrasts (results/claims.csv),
the recipe's own paired contrasts (results/contrasts.csv), and every compared view's spectrum
(results/spectra.csv), with their figures."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np

from ...analysis.claims import claims_table
from ...analysis.contrast import depth_weights, describe, holm, jackknife, paired_contrast
from ...analysis.grid import OUTLIER_SHARE
from ...analysis.plan import Comparison
from ...analysis.spectra import spectrum
from ...choices import CONTRAST_KINDS
from ...errors import RecipeError
from .base import Analysis, Figure, Results, Row, Rows, TableContext, Tables

log = logging.getLogger("probekit")


class Claims(Analysis):
    name = "claims"

    def tables(self, rows: Rows, ctx: TableContext) -> Tables:
        a = ctx.analysis
        cm = rows.get("cross_modal", [])
        if not cm:
            return {}
        out: Tables = {"spectra": self.spectra(rows, ctx)} if ctx.comparer else {}
        stacks = [f"{sp}~{tx}" for sp, tx in a.cross_modal]
        points = list(a.adaptation_points.values())
        n = int(cm[0]["n"])
        spectrum = self.spectrum_rows(ctx, n)
        if a.claims.enabled:
            out["claims"] = claims_table(rows, stacks, points, ctx.resource, a.ci,
                                         a.claims.score, self.variants(n, ctx, rows),
                                         spectrum, self.draws(ctx))
        if a.contrasts:
            out["contrasts"] = contrasts(rows, a, stacks, ctx, spectrum)
        return out

    @staticmethod
    def robustness(a: Any, n: int) -> list[tuple[str, dict[str, Any], bool, bool]]:
        """The claims' analyses again, as ``(label, Comparer settings, synthetic, own)``: at
        each robust k that fits ``n``, as z-scored linear CKA, and on spectrum-matched views
        (``synthetic``); chance levels only where the claims use adjusted scores. ``own``: the
        run's own rows are these (SVCCA, as the recipe lists it, at the recipe's k): they are
        not computed again."""
        c = a.claims
        if not (c.enabled or a.contrasts):
            return []
        n_perm = a.n_perm if c.score == "adjusted" else 0
        todo: list[tuple[str, dict[str, Any], bool, bool]] = []
        if c.enabled:
            for k in c.robust_k:
                if 4 * k > n:
                    log.info("analyze: claims: no robustness check at k=%d: 2k > n/2 = %d", k,
                             n // 2)
                    continue
                own = k == a.k and "svcca" in a.measures  # no options: as the pass computes it
                todo.append((f"svcca k={k}", {"k": k, "measures": ["svcca"]}, False, own))
            if c.robust_zscored_cka:
                todo.append(("z-scored linear_cka", {"measures": ["linear_cka"], "zscore": True},
                             False, False))
        if c.spectrum_null:
            todo.append(("spectrum-matched views", {}, True, False))
        return [(label, {**settings, "n_perm": n_perm}, synthetic, own)
                for label, settings, synthetic, own in todo]

    @classmethod
    def passes(cls, a: Any, n: int) -> list[tuple[str, dict[str, Any], bool]]:
        """The passes over the store that :meth:`robustness` needs: ``(label, settings,
        synthetic)`` of each variant that is not the run's own rows."""
        return [(label, settings, synthetic)
                for label, settings, synthetic, own in cls.robustness(a, n) if not own]

    @classmethod
    def variants(cls, n: int, ctx: TableContext, rows: Rows
                 ) -> dict[str, tuple[Rows, dict[str, Any]]] | None:
        """The claims' rows again at each robust k and as z-scored linear CKA, with the
        Comparer settings that made them; at the recipe's k, the run's own SVCCA ``rows``."""
        if ctx.recompute is None:
            return None
        out = {}
        for label, settings, synthetic, own in cls.robustness(ctx.analysis, n):
            if synthetic:
                continue
            out[label] = ({kind: [r for r in v if r.get("measure") == "svcca"]
                           for kind, v in rows.items()} if own else
                          ctx.recompute(settings, False, f" (claims: {label})"),
                          {k: v for k, v in settings.items() if k != "n_perm"})
        return out

    @staticmethod
    def draws(ctx: TableContext) -> Any:
        """Paired draws over sentences of a claim's views (for fewer than 3 languages)."""
        if ctx.comparer is None:
            return None
        a = ctx.analysis

        def run(measure: str, terms: list, control: bool, settings: dict[str, Any]) -> Any:
            assert ctx.comparer is not None
            comparer = ctx.comparer(settings, control)
            try:
                return paired_contrast(comparer, measure, terms, max(a.n_boot, 200), a.ci, a.seed)
            finally:
                comparer.forget()  # the views; what was computed on the draws stays
        return run

    @classmethod
    def spectrum_rows(cls, ctx: TableContext, n: int) -> Rows | None:
        """The claims' rows on spectrum-matched views (``analysis.claims.spectrum_null``)."""
        if ctx.recompute is None:
            return None
        for label, settings, synthetic in cls.passes(ctx.analysis, n):
            if synthetic:
                return ctx.recompute(settings, True, f" (claims: {label})")
        return None

    @staticmethod
    def spectra(rows: Rows, ctx: TableContext) -> list[dict[str, Any]]:
        """Spectrum diagnostics of every view the cross-modal and cross-lingual rows compare."""
        assert ctx.comparer is not None
        comparer = ctx.comparer({}, False)
        seen: dict[tuple, dict[str, Any]] = {}
        for kind in ("cross_modal", "cross_lingual"):
            for r in rows.get(kind, []):
                for side in ("a", "b"):
                    key = (r[f"layer_{side}"], r[f"lang_{side}"], r[f"modality_{side}"])
                    if key not in seen:
                        seen[key] = {"stack": r["stack"] if kind == "cross_lingual" else
                                     r["stack"].split("~")[0 if side == "a" else -1],
                                     "depth": r["depth"]}
        out = []
        for (layer, lang, modality), where in seen.items():
            z = comparer.zscored((layer, lang, modality))
            d = spectrum(comparer.array((layer, lang, modality)), z)
            out.append({"layer": layer, "lang": lang, "modality": modality, **where, **d,
                        "outlier_feature": bool(not z and d["largest_feature_share"]
                                                > OUTLIER_SHARE),
                        "outlier_share": OUTLIER_SHARE})
            comparer.forget()
        return out

    def figures(self, results: Results) -> Iterator[Figure]:
        from ...report import plot_claims, plot_spectra

        claims = results.table("claims")
        if claims is not None and len(claims):
            yield "claims", partial(plot_claims, claims)
        spectra = results.table("spectra")
        if spectra is not None and len(spectra):
            yield "spectra", partial(plot_spectra, spectra)

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        kinds = {c.analysis for c in comparisons}
        return ("cross_modal" in kinds) * (1 + bool(ctx.analysis.claims.enabled))


def _depth(depths: Sequence[int], i: int, where: str) -> int:
    if not -len(depths) <= i < len(depths):
        raise RecipeError(f"{where}: depth {i} is outside the stack's {len(depths)} depths "
                          f"(0 to {len(depths) - 1}, or -1 for the last)")
    return sorted(depths)[i]


def contrasts(rows: Rows, a: Any, stacks: list[str], ctx: TableContext,
              spectrum: Rows | None = None) -> list[dict[str, Any]]:
    """``analysis.contrasts``, per measure: over languages (jackknife) or, with ``lang``, over
    that language's sentences (paired subsampling); Holm-adjusted across the table; with
    ``spectrum`` (rows of spectrum-matched views), the same contrast on them
    (``spectrum_effect``)."""
    out: list[dict[str, Any]] = []
    measures = list(dict.fromkeys(r["measure"] for kind in ("cross_modal", "adaptation")
                                  for r in rows.get(kind, [])))
    points = list(a.adaptation_points.values())
    for i, spec in enumerate(a.contrasts):
        where = f"analysis.contrasts[{i}]"
        stack = "adaptation" if spec.kind == "did" else spec.stack or stacks[0]
        if spec.kind not in CONTRAST_KINDS:
            raise RecipeError(f"{where}.kind: {spec.kind!r} is not one of "
                              f"{', '.join(CONTRAST_KINDS)}")
        if spec.kind != "did" and stack not in stacks:
            raise RecipeError(f"{where}.stack: {stack!r} is not a cross_modal pair of this "
                              f"recipe ({', '.join(stacks)})")
        for measure in measures:
            groups = _groups(spec, _of(rows, measure, stack), where, points, ctx.resource)
            if not groups:  # the run's languages lack a group the contrast compares
                continue
            langs = sorted({r["lang_a"] for _, g in groups for r in g})
            if spec.lang is not None:
                if spec.lang not in langs:
                    raise RecipeError(f"{where}.lang: {spec.lang!r} is not one of the run's "
                                      "languages")
                assert ctx.comparer is not None
                comparer = ctx.comparer({}, False)
                c = paired_contrast(comparer, measure, _at_language(groups, spec.lang),
                                    max(ctx.analysis.n_boot, 200), ctx.analysis.ci,
                                    ctx.analysis.seed + i)
                comparer.forget()  # the views; what was computed on the draws stays
            else:
                c = jackknife(langs, partial(_combine, groups), ctx.analysis.ci)
            effect_of_spectra = np.nan
            if spectrum is not None:
                sm = _groups(spec, _of(spectrum, measure, stack), where, points, ctx.resource)
                effect_of_spectra = (_combine(sm, set(langs)) if spec.lang is None
                                     else _at_language_value(sm, spec.lang))
            first = groups[0][1][0]
            out.append({"contrast": spec.name or f"{spec.kind} {stack} {spec.depths}",
                        "kind": spec.kind, "stack": stack, "lang": spec.lang or "(all)",
                        "measure": measure, "n": first["n"], "k": first.get("k", np.nan),
                        "effect": c.effect, "ci_low": c.ci_low, "ci_high": c.ci_high,
                        "p_value": c.p_value, "ci_level": c.level,
                        "ci_method": describe(c), "spectrum_effect": effect_of_spectra})
    for r, p in zip(out, holm([r["p_value"] for r in out]), strict=True):
        r["p_adjusted"] = float(p)
        r["p_adjustment"] = f"Holm over the {len(out)} contrasts"
    return out


Group = tuple[float, list[Row]]  # a weight and the rows whose mean it multiplies


def _of(rows: Rows, measure: str, stack: str) -> dict[str, list[Row]]:
    """One measure's rows: the cross-modal ones of ``stack``, every cross-lingual and
    adaptation one."""
    return {"cross_modal": [r for r in rows.get("cross_modal", [])
                            if r["measure"] == measure and r["stack"] == stack],
            "cross_lingual": [r for r in rows.get("cross_lingual", []) if r["measure"] == measure],
            "adaptation": [r for r in rows.get("adaptation", []) if r["measure"] == measure]}


def _groups(spec: Any, rows: dict[str, list[Row]], where: str, points: Sequence[str],
            resource: dict[str, str]) -> list[Group]:
    """The contrast as weighted means of rows: ``sum_g w_g mean(rows_g)``."""
    if spec.kind == "did":
        ad = rows["adaptation"]
        if len(points) < 2 or not ad:
            raise RecipeError(f"{where}: kind did compares the first and last "
                              "analysis.adaptation_points; the recipe needs two")
        part = {(level, layer): [r for r in ad if resource.get(r["lang_a"]) == level
                                 and r["layer_a"] == layer]
                for level in ("high", "low") for layer in (points[0], points[-1])}
        if not all(part.values()):
            log.warning("analyze: %s (did) left out: this run's languages are not both high- "
                        "and low-resource (analysis.resource)", where)
            return []
        return [(1.0, part[("high", points[-1])]), (-1.0, part[("high", points[0])]),
                (-1.0, part[("low", points[-1])]), (1.0, part[("low", points[0])])]
    cm, cl = rows["cross_modal"], rows["cross_lingual"]
    depths = sorted({int(r["depth"]) for r in cm})
    if not depths:
        raise RecipeError(f"{where}: the recipe computed no cross-modal rows for this stack")
    at = {d: [r for r in cm if int(r["depth"]) == d] for d in depths}
    if spec.kind == "trend":
        rel = [float(at[d][0]["rel_depth"]) for d in depths]
        return [(float(w), at[d]) for d, w in zip(depths, depth_weights(rel), strict=True)]
    first = _depth(depths, spec.depths[0] if spec.depths else -1, f"{where}.depths[0]")
    if spec.kind == "difference":
        second = _depth(depths, spec.depths[1] if len(spec.depths) > 1 else 0,
                        f"{where}.depths[1]")
        return [(1.0, at[first]), (-1.0, at[second])]
    speech, text = at[first][0]["layer_a"], at[first][0]["layer_b"]
    lingual = {"speech": [r for r in cl if r["layer_a"] == speech and r["modality_a"] == "speech"],
               "text": [r for r in cl if r["layer_a"] == text and r["modality_a"] == "text"]}
    if not lingual["speech"] or not lingual["text"]:
        raise RecipeError(f"{where}: kind {spec.kind} needs cross_lingual rows of both stacks "
                          "of the pair (add them to analysis.cross_lingual)")
    if spec.kind == "spread":
        return [(1.0, lingual["text"]), (-1.0, lingual["speech"])]
    return [(0.5, lingual["speech"]), (0.5, lingual["text"]), (-1.0, at[first])]


def _combine(groups: list[Group], keep: set[str], column: str = "score") -> float:
    """The contrast over the rows whose languages are all in ``keep``."""
    total = 0.0
    for w, rows in groups:
        v = [float(r[column]) for r in rows if r["lang_a"] in keep and r["lang_b"] in keep]
        total += w * (float(np.mean(v)) if v else np.nan)
    return total


def _at_language_value(groups: list[Group], lang: str, column: str = "score") -> float:
    """The contrast at one language from its rows' values (each group's mean over them)."""
    total = 0.0
    for w, rows in groups:
        v = [float(r[column]) for r in rows if lang in (r["lang_a"], r["lang_b"])]
        total += w * (float(np.mean(v)) if v else np.nan)
    return total


def _at_language(groups: list[Group], lang: str) -> list[tuple[Any, Any, float]]:
    """The contrast at one language as weighted pairs of views: each group's rows of that
    language (its own row, or every pair it is in), the group's weight shared among them."""
    terms = []
    for w, rows in groups:
        mine = [r for r in rows if lang in (r["lang_a"], r["lang_b"])]
        terms += [((r["layer_a"], r["lang_a"], r["modality_a"]),
                   (r["layer_b"], r["lang_b"], r["modality_b"]), w / len(mine)) for r in mine]
    return terms
