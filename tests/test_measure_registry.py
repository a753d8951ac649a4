"""Measures as records: options from a recipe reach the rows, bad options are refused with a
clear message, and a new measure is one definition plus one registration."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from probekit.analysis import (
    MEASURES,
    AnalysisError,
    Comparer,
    Measure,
    comparer_for,
    rbf_cka,
    register_measure,
    similarity,
    svcca,
)
from probekit.analysis.registry import RBFCKAOptions
from probekit.recipe import RecipeError, load_recipe

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "recipes" / "demo.yaml"


def numpy_rbf_cka(x, y, sigma):
    """Biased RBF CKA in float64 numpy: Gaussian kernels with bandwidth sigma times the root
    of the median squared distance (zero diagonal included), centred, normalised HSIC."""
    def gram(a):
        d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * sigma ** 2 * np.median(d2)))

    h = np.eye(len(x)) - 1.0 / len(x)
    kx, ky = h @ gram(x) @ h, h @ gram(y) @ h
    return float((kx * ky).sum() / np.sqrt((kx * kx).sum() * (ky * ky).sum()))


def views(n=48, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 5))
    return {name: z @ rng.standard_normal((5, d)) + 0.4 * rng.standard_normal((n, d))
            for name, d in (("x", 16), ("y", 12), ("w", 16))}


def recipe_with(tmp_path, measures):
    """The demo recipe, copied (its data path made absolute), with ``analysis.measures``."""
    text = DEMO.read_text().replace("../data/demo/manifest.tsv",
                                    str(ROOT / "data" / "demo" / "manifest.tsv"))
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return load_recipe(path, [f"analysis.measures={measures}"])


# -- options from a recipe --------------------------------------------------------------------
def test_rbf_cka_options_from_a_recipe_reach_the_rows(tmp_path):
    a = recipe_with(tmp_path, "[svcca, {rbf_cka: {sigma: 0.5}}]").analysis
    assert a.measure_names == ["svcca", "rbf_cka"]
    assert a.measure_choices[1] == ("rbf_cka", RBFCKAOptions(sigma=0.5))
    assert a.measure_choices[0][0] == "svcca"
    v = views()
    comparer = comparer_for(a, v.__getitem__, zscore=False, intervals=True,
                            analysis_name="cross_modal")
    assert comparer.n_boot == a.n_boot > 0  # cross_modal is one of analysis.intervals
    plain, rbf = comparer.compare("x", "y")
    assert (plain["measure"], plain["measure_options"]) == ("svcca", "")
    assert (rbf["measure"], rbf["measure_options"]) == ("rbf_cka", "sigma=0.5")
    assert rbf["score"] == rbf_cka(v["x"], v["y"], sigma=0.5).score
    assert rbf["score"] == pytest.approx(numpy_rbf_cka(v["x"], v["y"], 0.5), abs=1e-12)
    assert rbf["score"] != pytest.approx(rbf_cka(v["x"], v["y"]).score, abs=1e-6)
    assert np.isfinite(rbf["chance"]) and np.isfinite(rbf["ci_low"])
    assert similarity("rbf_cka", v["x"], v["y"], sigma=0.5).score == rbf["score"]


def test_comparer_for_matches_the_hand_built_comparer(tmp_path):
    a = recipe_with(tmp_path, "[svcca, linear_cka]").analysis
    v = views()
    made = comparer_for(a, v.__getitem__, zscore=False, intervals=False,
                        analysis_name="cross_modal").compare_many("x", ["y", "w"])
    hand = Comparer(v.__getitem__, a.measures, variance=a.variance, k=a.k, n_perm=a.n_perm,
                    n_boot=0, ci=a.ci, seed=a.seed,
                    allow_large_k=a.allow_large_k).compare_many("x", ["y", "w"])
    assert [r["row_seed"] for r in made] == [r["row_seed"] for r in hand]
    assert [r["score"] for r in made] == [r["score"] for r in hand]
    assert [r["chance"] for r in made] == [r["chance"] for r in hand]
    other = comparer_for(a, v.__getitem__, zscore=False, intervals=True, analysis_name="adaptation")
    assert other.n_boot == 0  # not one of analysis.intervals


def test_plain_names_are_stored_as_before(tmp_path):
    a = recipe_with(tmp_path, "[svcca, linear_cka]").analysis
    assert dataclasses.asdict(a)["measures"] == ["svcca", "linear_cka"]
    assert a.measure_names == a.measures


REFUSED = {
    "[{rbf_cka: {sigmaa: 1}}]": "analysis.measures[0].rbf_cka.sigmaa: unknown key; did you mean "
                                "analysis.measures[0].rbf_cka.sigma?",
    "[svcca, {rbf_cka: {sigma: wide}}]": "analysis.measures[1].rbf_cka.sigma: expected float, "
                                         "got 'wide'",
    "[{linear_cka: {debiased: 1}}]": "analysis.measures[0].linear_cka.debiased: expected bool",
    "[{rbf_cka: 0.5}]": "expected a mapping of RBFCKAOptions fields",
    "[{rbf_cka: {sigma: 1}, svcca: {}}]": "one-key mapping name -> options",
    "[{rbf_ckaa: {sigma: 1}}]": "unknown measure 'rbf_ckaa'; did you mean 'rbf_cka'?",
    "[svcca, {svcca: {}}]": "names a measure twice",
}


@pytest.mark.parametrize("measures", REFUSED)
def test_bad_measure_options_are_refused_with_one_clear_message(measures, tmp_path):
    with pytest.raises(RecipeError) as e:
        recipe_with(tmp_path, measures)
    assert REFUSED[measures] in str(e.value) and str(tmp_path) in str(e.value)


# -- the Comparer -----------------------------------------------------------------------------
def test_comparer_takes_names_pairs_and_mappings_alike():
    v = views()
    forms = [("rbf_cka", {"sigma": 0.5}), {"rbf_cka": {"sigma": 0.5}},
             ("rbf_cka", RBFCKAOptions(sigma=0.5))]
    scores = {Comparer(v.__getitem__, f).compare("x", "y")[0]["score"] for f in forms}
    assert scores == {rbf_cka(v["x"], v["y"], sigma=0.5).score}
    assert Comparer(v.__getitem__, ("svcca", "linear_cka")).measures == ["svcca", "linear_cka"]
    with pytest.raises(AnalysisError, match=r"rbf_cka.sigmaa: unknown key; did you mean "
                                            r"rbf_cka.sigma\?"):
        Comparer(v.__getitem__, [("rbf_cka", {"sigmaa": 0.5})])
    with pytest.raises(AnalysisError, match="unknown measure 'cka'"):
        Comparer(v.__getitem__, "cka")


def test_the_older_options_argument_still_reaches_the_measures_that_take_it():
    v = views()
    rows = Comparer(v.__getitem__, ["svcca", "linear_cka", "rbf_cka"],
                    options={"debiased": True}).compare("x", "y")
    assert [r["measure_options"] for r in rows] == ["", "debiased=True", "debiased=True"]
    with pytest.raises(AnalysisError, match="option 'sigma' is taken by none"):
        Comparer(v.__getitem__, ["svcca"], options={"sigma": 0.5})


def test_the_registry_declares_what_each_measure_supports():
    assert {n for n, m in MEASURES.items() if m.uses_bases} == {"svcca", "pwcca"}
    assert MEASURES["svcca"].many_from_bases is not None and MEASURES["pwcca"].exact_null
    assert MEASURES["rbf_cka"].exact_null is None
    for m in MEASURES.values():  # every option is documented
        assert all(f.metadata.get("doc") for f in dataclasses.fields(m.options)), m.name


# -- a newcomer's measure -----------------------------------------------------------------------
def mean_gap(x, y, *, scale: float = 1.0) -> float:
    """A toy measure: minus the mean absolute gap between the views' column means, scaled."""
    return -scale * float(np.abs(x.mean(0) - y.mean(0)).mean())


@pytest.fixture
def registered():
    yield register_measure(Measure("mean_gap", mean_gap))
    del MEASURES["mean_gap"]


def test_a_new_measure_is_one_definition_and_one_registration(registered, tmp_path):
    v = views()
    (row,) = Comparer(v.__getitem__, [("mean_gap", {"scale": 2})], n_perm=4,
                      n_boot=3).compare("x", "w")
    assert row["score"] == mean_gap(v["x"], v["w"], scale=2.0)
    assert row["measure_options"] == "scale=2.0"
    assert np.isfinite(row["chance"]) and np.isfinite(row["ci_low"])
    a = recipe_with(tmp_path, "[svcca, {mean_gap: {scale: 3}}]").analysis
    assert a.measure_choices[1][1].scale == 3.0
    with pytest.raises(RecipeError, match=r"mean_gap.scale: expected float, got 'big'"):
        recipe_with(tmp_path, "[{mean_gap: {scale: big}}]")
    with pytest.raises(AnalysisError, match="already registered"):
        register_measure(Measure("mean_gap", mean_gap))


def test_a_measure_from_bases_without_shortcuts_gets_the_generic_null():
    def svcca_bases(bx, by, variance, k):
        return MEASURES["svcca"].from_bases(bx, by, variance, k)

    register_measure(Measure("svcca_plain", svcca, MEASURES["svcca"].options, svcca_bases))
    try:
        v = views()
        fast, plain = Comparer(v.__getitem__, ["svcca", "svcca_plain"], k=3,
                               n_perm=5).compare("x", "y")
    finally:
        del MEASURES["svcca_plain"]
    assert plain["score"] == pytest.approx(fast["score"], abs=1e-12)
    assert (plain["kx"], plain["ky"], plain["k"]) == (3, 3, 3)
    assert np.isfinite(plain["chance"]) and plain["chance"] < plain["score"]


def test_a_measure_whose_options_do_not_fit_its_function_is_refused_at_definition():
    @dataclasses.dataclass(frozen=True)
    class Wrong:
        width: float = 1.0

    with pytest.raises(AnalysisError, match="option 'width' is not a parameter"):
        Measure("wrong", mean_gap, Wrong)
