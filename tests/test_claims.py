"""Claims a reviewer can check: row intervals around the score on views like trained layers,
paired contrasts, delete-one-language jackknife group means, the permutation p-value, spectrum
diagnostics, the spectrum-matched null and the claims table. References are float64 numpy
written here."""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t as student_t

from probekit.analysis import (
    Comparer,
    benjamini_hochberg,
    claims_table,
    group_means,
    holm,
    jackknife,
    modality_gap,
    paired_contrast,
    spectrum,
)
from probekit.analysis.simulate import SharedViews, SpectrumMatched, decaying, pair_model, power_law
from probekit.analysis.stats import Null, p_perm

ROOT = Path(__file__).resolve().parent.parent


def ref_svcca(x, y, k):
    def basis(a):
        a = a - a.mean(0)
        return np.linalg.svd(a, full_matrices=False)[0][:, :k]
    return np.linalg.svd(basis(x).T @ basis(y), compute_uv=False).mean()


def ref_cka(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


# -- the model the statistics are validated on ------------------------------------------------
def test_closed_forms_match_a_large_sample():
    model = pair_model(48, 1.0, decaying(48), seed=3, tilt=0.4)
    v = model.sample(200_000, np.random.default_rng(4))
    x, y = v["x"], v["y"]
    # population SVCCA at k: top-k principal directions of each (large-sample) covariance
    assert abs(model.svcca("x", "y", 8) - ref_svcca(x[:40_000], y[:40_000], 8)) < 0.01
    assert abs(model.linear_cka("x", "y") - ref_cka(x, y)) < 0.01
    # the spectra are the power law asked for
    lam = np.linalg.eigvalsh(np.cov(x.T))[::-1]
    np.testing.assert_allclose(lam[:5], power_law(48, 1.0)[:5], rtol=0.03)


# -- defect 1: row intervals around the score ---------------------------------------------------
def test_row_interval_holds_its_own_score_on_power_law_views():
    """At n = 350, k = 40 on power-law spectra, the old bias-corrected centre moved ~7 sd below
    the score, so every row's score lay outside its own interval."""
    model = pair_model(256, 1.0, decaying(256), seed=0, tilt=0.4)
    v = model.sample(350, np.random.default_rng(1))
    for measure, k in (("svcca", 40), ("linear_cka", None)):
        (row,) = Comparer(v.__getitem__, measure, k=k, n_boot=20, n_perm=5).compare("x", "y")
        assert row["ci_low"] < row["score"] < row["ci_high"], row
        assert abs((row["ci_low"] + row["ci_high"]) / 2 - row["score"]) < 1e-12
        assert abs((row["adjusted_ci_low"] + row["adjusted_ci_high"]) / 2
                   - row["adjusted"]) < 1e-12
        assert "sampling variability of the statistic at this n and k" in row["ci_method"]
        assert "score_bc" not in row


@pytest.mark.reference_leg  # numpy/torch arithmetic only: once is enough (about 45 s)
def test_reduced_validation_meets_the_targets():
    """benchmarks/claims_validation.py --quick (d = 1024, n = 350, k = 40, alpha = 1, 10-12
    samples): row intervals cover the expected score, contrasts hold their error rate and
    find +0.03 SVCCA, group means cover; the full run's numbers are in the closing note."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import claims_validation
    finally:
        sys.path.pop(0)
    rows = claims_validation.main(["--quick", "--parts", "rows,contrasts,groups"])
    intervals = [r for r in rows if r["part"] == "row interval"]
    assert all(r["coverage"] >= 0.75 for r in intervals), intervals
    k40 = next(r for r in intervals if r["measure"] == "svcca k=40")
    assert k40["coverage_population"] > 0.5  # the old centre: 0 of 120
    by = {(r["measure"], r["kind"]): r for r in rows if r["part"] == "contrast"}
    for measure in ("svcca", "linear_cka"):
        assert by[(measure, "difference (null)")]["reject"] <= 0.2
        assert by[(measure, "trend over 4 depths (null)")]["reject"] <= 0.2
    assert by[("svcca", "difference +0.03 svcca (power)")]["reject"] >= 0.6
    flat = by[("svcca", "flatter spectrum, equal population")]
    assert flat["mean_effect"] < 0 and flat["spectrum_null_effect"] < 0  # the null sees it
    groups = [r for r in rows if r["part"] == "group mean"]
    assert all(r["coverage"] >= 0.85 for r in groups), groups


# -- defect 2: paired contrasts -----------------------------------------------------------------
def test_paired_contrast_redraws_the_same_sentences_for_every_term():
    model = SharedViews({k: power_law(40, 1.0) for k in "abc"},
                        {k: np.sqrt(decaying(40)) for k in "abc"}, seed=2, tilt=0.4)
    v = model.sample(120, np.random.default_rng(3))
    comparer = Comparer(v.__getitem__, "svcca", k=5)
    c = paired_contrast(comparer, "svcca", [("a", "b", 1.0), ("a", "c", -1.0)], n_draws=12,
                        ci=0.9, seed=7)
    assert abs(c.effect - (ref_svcca(v["a"], v["b"], 5) - ref_svcca(v["a"], v["c"], 5))) < 1e-9
    rng = np.random.default_rng(7)
    draws = []
    for _ in range(12):
        idx = np.sort(rng.choice(120, 60, replace=False))
        draws.append(ref_svcca(v["a"][idx], v["b"][idx], 5)
                     - ref_svcca(v["a"][idx], v["c"][idx], 5))
    np.testing.assert_allclose(c.draws, draws, atol=1e-9)
    sd = np.std(draws, ddof=1)  # a half: sqrt(m / (n - m)) = 1
    assert abs(c.sd - sd) < 1e-9 and abs((c.ci_high - c.ci_low) / 2 - 1.6448536269514722 * sd) \
        < 1e-9
    from statistics import NormalDist
    assert abs(c.p_value - 2 * NormalDist().cdf(-abs(c.effect) / sd)) < 1e-12


def test_contrasts_sharing_rows_reuse_their_draws_only_where_the_draws_are_the_same():
    model = SharedViews({k: power_law(40, 1.0) for k in "abc"},
                        {k: np.sqrt(decaying(40)) for k in "abc"}, seed=2, tilt=0.4)
    v = model.sample(120, np.random.default_rng(3))
    loads = []
    comparer = Comparer(lambda key: loads.append(key) or v[key], "svcca", k=5)
    paired_contrast(comparer, "svcca", [("a", "b", 1.0), ("a", "c", -1.0)], n_draws=12, seed=7)
    comparer.forget()  # the views go; the rows' draws stay
    loads.clear()
    paired_contrast(comparer, "svcca", [("a", "c", 3.0)], n_draws=12, seed=7)
    assert loads == []  # every draw kept: no view loaded again
    for seed, draws in ((7, 12), (8, 12), (7, 9)):  # same draws, another seed, fewer draws
        c = paired_contrast(comparer, "svcca", [("a", "b", 2.0)], n_draws=draws, seed=seed)
        rng = np.random.default_rng(seed)
        want = [2 * ref_svcca(v["a"][i], v["b"][i], 5)
                for i in (np.sort(rng.choice(120, 60, replace=False)) for _ in range(draws))]
        np.testing.assert_allclose(c.draws, want, atol=1e-9)
        assert abs(c.effect - 2 * ref_svcca(v["a"], v["b"], 5)) < 1e-9


def test_a_contrast_too_small_to_redraw_keeps_its_effect_and_says_no_interval(caplog):
    v = pair_model(16, 1.0, decaying(16), seed=1, tilt=0.4).sample(8, np.random.default_rng(0))
    comparer = Comparer(v.__getitem__, "linear_cka")
    with caplog.at_level(logging.WARNING, "probekit.analysis"):
        c = paired_contrast(comparer, "linear_cka", [("x", "y", 1.0)], n_draws=10)
    assert abs(c.effect - ref_cka(v["x"], v["y"])) < 1e-9 and np.isnan(c.ci_low)
    assert "no interval" in caplog.text  # a draw of 4 sentences is too few for a similarity
    assert np.isnan(paired_contrast(comparer, "linear_cka", []).effect)


def test_holm_and_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, np.nan, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, running maximum
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, np.nan, 0.02])
    # BH: p * 4 / rank, running minimum from the top
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, np.nan, 0.02])


def test_jackknife_of_a_mean_is_the_t_interval_over_languages():
    values = dict(zip("abcdefg", [0.3, 0.5, 0.45, 0.6, 0.2, 0.55, 0.4], strict=True))
    c = jackknife(list(values), lambda keep: float(np.mean([values[k] for k in keep])))
    v = np.array(list(values.values()))
    half = student_t.ppf(0.975, 6) * v.std(ddof=1) / np.sqrt(7)
    assert abs(c.effect - v.mean()) < 1e-12
    assert abs(c.ci_high - c.ci_low - 2 * half) < 1e-12


# -- defect 4: group means over pairs of languages ----------------------------------------------
def _pairs(rng, names, f, sd_pair=0.02, n=350, measure="svcca", modality="text"):
    return [{"analysis": "cross_lingual", "stack": "s", "modality_a": modality,
             "modality_b": modality, "measure": measure, "depth": 0, "n": n, "k": 40,
             "layer_a": "l0", "layer_b": "l0", "lang_a": names[a], "lang_b": names[b],
             "score": 0.5, "chance": 0.0,
             "adjusted": 0.5 + f[a] + f[b] + rng.normal(0, sd_pair)}
            for a in range(len(names)) for b in range(a + 1, len(names))]


def test_cross_lingual_group_means_cover_when_languages_differ():
    """Pair values mu + f_a + f_b + e_ab: the old t-interval over language means covered mu
    0.57-0.67 of the time; the delete-one-language jackknife covers."""
    rng = np.random.default_rng(0)
    names = [f"l{i:02d}" for i in range(15)]
    hits = []
    for _ in range(120):
        rows = _pairs(rng, names, rng.normal(0, 0.05, 15))
        (row,) = [r for r in group_means(rows, dict.fromkeys(names, "g"), "all")
                  if r["group"] == "g~g"]
        hits.append(row["ci_low"] <= 0.5 <= row["ci_high"])
        assert "jackknife" in row["ci_method"] and "generalises over languages" in \
            row["ci_method"]
    assert np.mean(hits) >= 0.88, np.mean(hits)


def test_modality_gap_takes_a_language_jackknife_of_the_gap():
    rng = np.random.default_rng(5)
    names = ["eng", "fra", "deu", "spa", "ita"]
    f = rng.normal(0, 0.05, 5)
    cl = _pairs(rng, names, f, modality="speech") + _pairs(rng, names, f, modality="text")
    cm = [{"analysis": "cross_modal", "stack": "s", "depth": 0, "layer_a": "l0",
           "layer_b": "l0", "lang_a": x, "lang_b": x, "modality_a": "speech",
           "modality_b": "text", "measure": "svcca", "score": 0.3, "chance": 0.0, "n": 350,
           "k": 40, "adjusted": 0.3 + rng.normal(0, 0.05)} for x in names]
    (row,) = modality_gap(cm, cl)

    def gap(keep):
        return (np.mean([r["adjusted"] for r in cl if {r["lang_a"], r["lang_b"]} <= keep])
                - np.mean([r["adjusted"] for r in cm if r["lang_a"] in keep]))
    leave = np.array([gap(set(names) - {x}) for x in names])
    se = np.sqrt(4 / 5 * ((leave - leave.mean()) ** 2).sum())
    assert abs(row["gap"] - gap(set(names))) < 1e-12
    assert abs(row["gap_ci_high"] - row["gap"] - student_t.ppf(0.975, 4) * se) < 1e-12
    assert 0 <= row["gap_p_value"] <= 1


# -- defect 5: p_perm and pooled n --------------------------------------------------------------
def test_p_perm_counts_the_null_draws_at_or_above_the_score():
    null = Null(0.1, 0.05, 0.2, np.array([0.1, 0.3, 0.5, 0.2]))
    assert p_perm(0.3, null) == (1 + 2) / 5 and p_perm(0.9, null) == 1 / 5
    model = pair_model(64, 1.0, decaying(64), seed=1, tilt=0.4)
    v = model.sample(200, np.random.default_rng(2))
    (row,) = Comparer(v.__getitem__, "linear_cka", n_perm=9).compare("x", "y")
    assert row["p_perm"] == 0.1  # 1 / (1 + 9): the smallest it can be with 9 permutations


def test_pooling_rows_of_different_n_warns(caplog):
    rng = np.random.default_rng(0)
    names = ["eng", "fra", "deu"]
    rows = _pairs(rng, names, np.zeros(3)) + _pairs(rng, names, np.zeros(3), n=100,
                                                    measure="svcca")[:1]
    with caplog.at_level(logging.WARNING, "probekit.analysis"):
        group_means(rows, dict.fromkeys(names, "g"))
    assert "different n" in caplog.text


# -- defect 3: the spectrum confound ------------------------------------------------------------
def test_one_massive_feature_flags_rows_unless_zscored():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 20))
    x[:, 3] *= 30  # one feature holds most of the variance
    y = x + rng.standard_normal((120, 20))
    views = {"x": x, "y": y}
    (row,) = Comparer(views.__getitem__, "linear_cka").compare("x", "y")
    assert "outlier_feature" in row["flags"].split(";")
    (row,) = Comparer(views.__getitem__, "linear_cka", zscore=True).compare("x", "y")
    assert "outlier_feature" not in row["flags"]
    d = spectrum(x)
    var = x.var(0)
    assert abs(d["largest_feature_share"] - var.max() / var.sum()) < 1e-12
    lam = np.linalg.eigvalsh(np.cov(x.T))
    assert abs(d["participation_ratio"] - lam.sum() ** 2 / (lam ** 2).sum()) < 1e-9
    z = spectrum(x, zscore=True)
    assert z["participation_ratio"] > 5 * d["participation_ratio"]


def test_power_law_exponent_is_recovered():
    x = np.random.default_rng(1).standard_normal((4000, 200)) * np.sqrt(power_law(200, 1.0))
    assert abs(spectrum(x)["power_law_alpha"] - 1.0) < 0.15


def test_spectrum_matched_views_reproduce_a_difference_made_by_the_spectrum():
    """Equal population SVCCA, one layer flatter: the sample difference is the spectra's; the
    spectrum-matched views, with one alignment for every pair, show a difference of that
    sign."""
    c = np.sqrt(decaying(256))
    model = SharedViews({"x": power_law(256, 1.0), "y": power_law(256, 1.0),
                         "flat": power_law(256, 0.5)}, dict.fromkeys(("x", "y", "flat"), c),
                        seed=0, tilt=0.4)
    model.rotations["flat"] = model.rotations["y"]
    assert model.svcca("x", "flat", 40) == model.svcca("x", "y", 40)
    rng = np.random.default_rng(1)
    seen, null = [], []
    for r in range(4):
        v = model.sample(350, rng)
        seen.append(ref_svcca(v["x"], v["flat"], 40) - ref_svcca(v["x"], v["y"], 40))
        sm = SpectrumMatched(v.__getitem__, seed=r)
        null.append(ref_svcca(sm("x"), sm("flat"), 40) - ref_svcca(sm("x"), sm("y"), 40))
    assert np.mean(seen) < -0.01 and np.mean(null) < -0.01, (seen, null)
    assert sm("x").shape == (350, 256)


# -- the claims table ---------------------------------------------------------------------------
def _claim_rows(rng, langs, rise):
    cm, cl, ad = [], [], []
    depths = 4
    for d in range(depths):
        for lang in langs:
            cm.append({"analysis": "cross_modal", "stack": "sp~tx", "depth": d,
                       "rel_depth": d / (depths - 1), "layer_a": f"sp{d}", "layer_b": f"tx{d}",
                       "lang_a": lang, "lang_b": lang, "modality_a": "speech",
                       "modality_b": "text", "measure": "svcca", "n": 350, "k": 40,
                       "score": 0.3 + rise * d + rng.normal(0, 0.01),
                       "control_score": 0.3 + rng.normal(0, 0.01)})
        for a_i, a in enumerate(langs):
            for b in langs[a_i + 1:]:
                for mod, layer, base in (("speech", f"sp{d}", 0.4), ("text", f"tx{d}", 0.6)):
                    cl.append({"analysis": "cross_lingual", "stack": layer[:2], "depth": d,
                               "layer_a": layer, "layer_b": layer, "lang_a": a, "lang_b": b,
                               "modality_a": mod, "modality_b": mod, "measure": "svcca",
                               "n": 350, "k": 40, "score": base + rng.normal(0, 0.01),
                               "control_score": 0.5 + rng.normal(0, 0.01)})
    return {"cross_modal": cm, "cross_lingual": cl, "adaptation": ad}


def test_claims_table_by_an_independent_computation():
    rng = np.random.default_rng(0)
    langs = ["eng", "fra", "deu", "spa", "ita", "por"]
    rows = _claim_rows(rng, langs, rise=0.05)
    table = claims_table(rows, ["sp~tx"], [], {}, level=0.95)
    by = {r["claim"]: r for r in table}
    assert set(by) == {"convergence", "speech_spread", "modality_gap"}
    slopes = []
    for lang in langs:
        curve = sorted((r["rel_depth"], r["score"]) for r in rows["cross_modal"]
                       if r["lang_a"] == lang)
        slopes.append(np.polyfit(*zip(*curve, strict=True), 1)[0])
    assert abs(by["convergence"]["effect"] - np.mean(slopes)) < 1e-12
    half = student_t.ppf(0.975, len(langs) - 1) * np.std(slopes, ddof=1) / np.sqrt(len(langs))
    assert abs(by["convergence"]["ci_high"] - by["convergence"]["effect"] - half) < 1e-9
    spread = np.mean([r["score"] for r in rows["cross_lingual"] if r["modality_a"] == "text"]) \
        - np.mean([r["score"] for r in rows["cross_lingual"] if r["modality_a"] == "speech"])
    assert abs(by["speech_spread"]["effect"] - spread) < 1e-12
    lingual = np.mean([r["score"] for r in rows["cross_lingual"]])
    modal = np.mean([r["score"] for r in rows["cross_modal"]])
    assert abs(by["modality_gap"]["effect"] - (lingual - modal)) < 1e-12
    np.testing.assert_allclose([r["p_adjusted"] for r in table],
                               holm([r["p_value"] for r in table]))
    assert by["convergence"]["supported"] and abs(by["convergence"]["control_effect"]) < 0.03
    # a variant where the trend reverses makes the claim not robust
    flat = _claim_rows(np.random.default_rng(1), langs, rise=-0.05)
    table = claims_table(rows, ["sp~tx"], [], {}, variants={"svcca k=10": (flat, {"k": 10})})
    assert next(r for r in table if r["claim"] == "convergence")["robust"] is False
    assert next(r for r in table if r["claim"] == "speech_spread")["robust"] is True


def test_adaptation_claim_is_a_difference_in_differences():
    rng = np.random.default_rng(2)
    langs = ["eng", "fra", "deu", "swh", "cym", "yor"]
    resource = {"eng": "high", "fra": "high", "deu": "high", "swh": "low", "cym": "low",
                "yor": "low"}
    ad = []
    for lang in langs:
        for point, layer in (("before", "b"), ("after", "a")):
            gain = 0.2 if resource[lang] == "high" and point == "after" else 0.0
            ad.append({"analysis": "cross_modal", "stack": "adaptation", "depth": 0,
                       "rel_depth": 1.0, "layer_a": layer, "layer_b": "t", "lang_a": lang,
                       "lang_b": lang, "modality_a": "speech", "modality_b": "text",
                       "measure": "svcca", "n": 350, "k": 40,
                       "score": 0.4 + gain + rng.normal(0, 0.01)})
    (row,) = claims_table({"cross_modal": [], "cross_lingual": [], "adaptation": ad}, [],
                          ["b", "a"], resource)
    at = {(r["lang_a"], r["layer_a"]): r["score"] for r in ad}
    change = {lang: at[(lang, "a")] - at[(lang, "b")] for lang in langs}
    expect = np.mean([change[x] for x in langs[:3]]) - np.mean([change[x] for x in langs[3:]])
    assert row["claim"] == "adaptation" and abs(row["effect"] - expect) < 1e-12
    assert row["supported"] and row["ci_low"] > 0.1


def test_with_two_languages_a_claim_is_redrawn_over_sentences():
    """Fewer than 3 languages leave no jackknife: the claim's weighted sum of rows is redrawn
    over sentences (paired), with weights that are the claim's own."""
    from probekit.analysis.claims import claim_terms

    langs, depths = ["eng", "fra"], 3
    keys = [(f"l{d}", lang, mod) for d in range(depths) for lang in langs
            for mod in ("speech", "text")]
    model = SharedViews({k: power_law(30, 1.0) for k in keys},
                        {k: np.sqrt(decaying(30)) for k in keys}, seed=1, tilt=0.4)
    views = model.sample(80, np.random.default_rng(2))
    comparer = Comparer(views.__getitem__, "svcca", k=4)
    cm = []
    for d in range(depths):
        for lang in langs:
            (r,) = comparer.compare((f"l{d}", lang, "speech"), (f"l{d}", lang, "text"))
            cm.append({**r, "analysis": "cross_modal", "stack": "sp~tx", "depth": d,
                       "rel_depth": d / (depths - 1), "layer_a": f"l{d}", "layer_b": f"l{d}",
                       "lang_a": lang, "lang_b": lang, "modality_a": "speech",
                       "modality_b": "text"})
    rows = {"cross_modal": cm, "cross_lingual": [], "adaptation": []}
    terms = claim_terms(rows, ("convergence", "sp~tx", "svcca"), ["sp~tx"], [], {})
    # the slope over relative depths 0, 0.5, 1 has weights -1, 0, 1; averaged over 2 languages
    assert sorted(round(w, 12) for _, _, w in terms) == [-0.5, -0.5, 0.5, 0.5]

    def draws(measure, terms, control, settings):
        return paired_contrast(comparer, measure, terms, 16, 0.95, 0)
    (row,) = claims_table(rows, ["sp~tx"], [], {}, draws=draws)
    expect = np.mean([(next(r["score"] for r in cm if r["lang_a"] == x and r["depth"] == 2)
                       - next(r["score"] for r in cm if r["lang_a"] == x and r["depth"] == 0))
                      for x in langs])
    assert abs(row["effect"] - expect) < 1e-12 and np.isfinite(row["ci_low"])
    assert row["ci_method"] == "paired subsampling over 80 sentences"


def test_a_claim_that_cannot_be_computed_is_not_redrawn(monkeypatch):
    """Adaptation with languages of one resource level has no effect: it is left out without
    building its terms (each term re-evaluates every claim on all rows: 45 s of the claims
    tables at 10 languages of SONAR's shape)."""
    from probekit.analysis import claims

    monkeypatch.setattr(claims, "claim_terms", lambda *a: pytest.fail("terms were built"))
    ad = [{"analysis": "cross_modal", "stack": "adaptation", "depth": 0, "rel_depth": 1.0,
           "layer_a": layer, "layer_b": "t", "lang_a": lang, "lang_b": lang,
           "modality_a": "speech", "modality_b": "text", "measure": "svcca", "n": 80, "k": 4,
           "score": 0.5} for lang in ("eng", "fra") for layer in ("b", "a")]
    rows = {"cross_modal": [], "cross_lingual": [], "adaptation": ad}
    assert claims_table(rows, [], ["b", "a"], {"eng": "high", "fra": "high"},
                        draws=lambda *a: pytest.fail("redrawn")) == []


def test_did_contrast_is_the_adaptation_claim():
    from types import SimpleNamespace

    from probekit.pipeline.analyses.claims import contrasts
    from probekit.recipe_schema import AnalysisSection, ContrastSpec

    rng = np.random.default_rng(4)
    resource = {"eng": "high", "fra": "high", "deu": "high", "swh": "low", "cym": "low"}
    ad = [{"analysis": "cross_modal", "stack": "adaptation", "depth": 0, "rel_depth": 1.0,
           "layer_a": layer, "layer_b": "t", "lang_a": lang, "lang_b": lang,
           "modality_a": "speech", "modality_b": "text", "measure": "svcca", "n": 350, "k": 40,
           "score": 0.4 + rng.normal(0, 0.05)} for lang in resource for layer in ("b", "a")]
    rows = {"cross_modal": [], "cross_lingual": [], "adaptation": ad}
    a = AnalysisSection(contrasts=[ContrastSpec(kind="did")],
                        adaptation_points={"before": "b", "after": "a"})
    (did,) = contrasts(rows, a, [], SimpleNamespace(analysis=a, resource=resource,
                                                    comparer=None))
    (claim,) = claims_table(rows, [], ["b", "a"], resource)
    assert did["kind"] == "did" and abs(did["effect"] - claim["effect"]) < 1e-12
    assert abs(did["ci_high"] - claim["ci_high"]) < 1e-12
    # languages of one resource level: the contrast is left out, not the run
    only_high = {k: "high" for k in resource}
    assert contrasts(rows, a, [], SimpleNamespace(analysis=a, resource=only_high,
                                                  comparer=None)) == []


@pytest.mark.parametrize("bad", [{"kind": "slope"}, {"stack": "nowhere"}, {"depths": [9, 0]},
                                 {"kind": "did"}])  # did: the recipe has no adaptation points
def test_a_wrong_contrast_is_one_clear_message(bad):
    from probekit.errors import RecipeError
    from probekit.pipeline.analyses.claims import contrasts
    from probekit.recipe_schema import AnalysisSection, ContrastSpec

    rows = _claim_rows(np.random.default_rng(0), ["eng", "fra", "deu"], 0.05)
    a = AnalysisSection(contrasts=[ContrastSpec(**{"kind": "difference", **bad})])
    from types import SimpleNamespace

    ctx = SimpleNamespace(analysis=a, resource={}, comparer=None)
    with pytest.raises(RecipeError, match=r"analysis\.contrasts\[0\]"):
        contrasts(rows, a, ["sp~tx"], ctx)
