"""Statistics a reviewer can trust: intervals with a known population value, chance-adjusted
summaries, rank detection, degenerate views, per-row seeds and flags, depth alignment, measure
agreement. References are float64 numpy written here."""

import warnings

import numpy as np
import pytest
import torch

from probekit.analysis import (
    AnalysisError,
    Comparer,
    ConstantViewError,
    LargeKError,
    align_depths,
    decompose,
    half_sampling,
    length_adaptation,
    linear_cka,
    measure_agreement,
    modality_gap,
    pwcca,
    rbf_cka,
    subsample_fraction,
    svcca,
    with_control,
)
from probekit.analysis.basis import as_matrix


# -- independent references ------------------------------------------------------------------
def ref_svcca(x, y, k):
    def basis(a):
        a = a - a.mean(0)
        u, _, _ = np.linalg.svd(a, full_matrices=False)
        return u[:, :k]
    return np.linalg.svd(basis(x).T @ basis(y), compute_uv=False).mean()


def population(d=30, latent=(3.0, 2.5, 2.0, 1.0, 0.6, 0.4), sigma=1.0, seed=0):
    """x = z A + noise, y = z B + noise, z ~ N(0, diag(latent)): the covariances in closed form."""
    rng = np.random.default_rng(seed)
    lam = np.diag(latent)
    a, b = rng.standard_normal((len(latent), d)), rng.standard_normal((len(latent), d))
    cx = a.T @ lam @ a + sigma ** 2 * np.eye(d)
    cy = b.T @ lam @ b + sigma ** 2 * np.eye(d)
    return a, b, lam, sigma, cx, cy, a.T @ lam @ b


def population_svcca(cx, cy, cxy, k):
    """Top-k principal directions of each covariance, then the canonical correlations of the
    projections: singular values of Sx^-1/2 Px' Cxy Py Sy^-1/2."""
    px = np.linalg.eigh(cx)[1][:, ::-1][:, :k]
    py = np.linalg.eigh(cy)[1][:, ::-1][:, :k]
    sx, sy = px.T @ cx @ px, py.T @ cy @ py

    def inv_sqrt(m):
        w, v = np.linalg.eigh(m)
        return v @ np.diag(w ** -0.5) @ v.T
    return np.linalg.svd(inv_sqrt(sx) @ px.T @ cxy @ py @ inv_sqrt(sy), compute_uv=False).mean()


def sample(pop, n, rng):
    a, b, lam, sigma, *_ = pop
    z = rng.standard_normal((n, len(lam))) * np.sqrt(np.diag(lam))
    return (z @ a + sigma * rng.standard_normal((n, a.shape[1])),
            z @ b + sigma * rng.standard_normal((n, b.shape[1])))


# -- defect 1: intervals ---------------------------------------------------------------------
@pytest.mark.reference_leg  # numpy/torch arithmetic only: once is enough (about 40 s)
def test_half_sampling_interval_covers_the_expected_score_where_k_cuts_the_spectrum():
    """The interval names its estimand, the statistic's expected value at this n and k: it
    covers the mean score over many samples (not the population value, from which SVCCA at a
    fixed k is biased)."""
    pop = population()
    k, n = 3, 200  # k inside the 6-dim latent spectrum
    rng = np.random.default_rng(1)
    samples = [sample(pop, n, rng) for _ in range(40)]
    expected = np.mean([ref_svcca(x, y, k) for x, y in samples]
                       + [ref_svcca(*sample(pop, n, rng), k) for _ in range(60)])
    covered = []
    for r, (x, y) in enumerate(samples):
        iv = half_sampling(lambda a, b: svcca(a, b, k=k).score, x, y, n_draws=40, seed=r)
        covered.append(iv.low <= expected <= iv.high)
        assert iv.centre == svcca(x, y, k=k).score  # centred on the score itself
    assert np.mean(covered) >= 0.85, np.mean(covered)


def test_half_sampling_redoes_the_decomposition_and_is_seeded():
    pop = population(seed=2)
    x, y = sample(pop, 120, np.random.default_rng(3))
    seen = []

    def measure(a, b):
        seen.append(len(a))
        return svcca(a, b, k=3).score
    iv = half_sampling(measure, x, y, n_draws=10, seed=5)
    assert seen == [120] + [60] * 10  # every draw recomputes from its own rows
    again = half_sampling(lambda a, b: svcca(a, b, k=3).score, x, y, n_draws=10, seed=5)
    np.testing.assert_array_equal(iv.draws, again.draws)
    # the draws are the measure on half-samples without replacement, as a reference computes it
    rng = np.random.default_rng(5)
    idx = np.sort(rng.choice(120, 60, replace=False))
    assert abs(iv.draws[0] - ref_svcca(x[idx], y[idx], 3)) < 1e-9
    sd = np.std(iv.draws, ddof=1)
    assert iv.centre == svcca(x, y, k=3).score
    assert abs((iv.high - iv.low) / 2 - 1.959963984540054 * sd) < 1e-9
    # m of n draws: the spread scaled by sqrt(m / (n - m)), no bias correction
    seen.clear()
    iv = half_sampling(measure, x, y, n_draws=6, seed=5, fraction=0.8)
    assert seen == [120] + [96] * 6
    assert iv.centre == svcca(x, y, k=3).score
    assert abs(iv.sd - 2 * np.std(iv.draws, ddof=1)) < 1e-12


def test_draws_keep_the_kept_directions_under_half_their_examples():
    assert subsample_fraction(3, 3, 100) == 0.5
    assert subsample_fraction(20, 20, 100) == 0.8  # kx + ky = 40 <= 80 / 2
    assert subsample_fraction(40, 40, 100) == 0.9 and subsample_fraction() == 0.5
    pop = population(seed=18)
    x, y = sample(pop, 100, np.random.default_rng(19))
    (row,) = Comparer({"x": x, "y": y}.__getitem__, "svcca", k=20, n_boot=4).compare("x", "y")
    assert row["ci_method"].startswith("subsampling 0.80 n x4 around the score: sampling "
                                       "variability of the statistic at this n and k")


def test_every_row_records_its_interval_method_and_level():
    pop = population(seed=4)
    x, y = sample(pop, 100, np.random.default_rng(5))
    views = {"x": x, "y": y}
    rows = Comparer(views.__getitem__, ["svcca", "pwcca", "linear_cka"], k=3, n_perm=5,
                    n_boot=8, ci=0.9).compare("x", "y")
    assert [r["measure"] for r in rows] == ["svcca", "pwcca", "linear_cka"]
    for r in rows:
        assert r["ci_method"].startswith("half-sampling x8 around the score")
        assert r["ci_level"] == 0.9
        assert abs((r["ci_low"] + r["ci_high"]) / 2 - r["score"]) < 1e-12
        assert abs((r["adjusted_ci_low"] + r["adjusted_ci_high"]) / 2 - r["adjusted"]) < 1e-12


# -- defect 2: chance-adjusted comparisons -----------------------------------------------------
def _row(analysis, score, chance, lang_a="eng", lang_b="eng", mod_a="speech", mod_b="text",
         layer="l0", depth=0, measure="svcca", **extra):
    return {"analysis": analysis, "stack": "s", "depth": depth, "layer_a": layer,
            "layer_b": layer, "lang_a": lang_a, "lang_b": lang_b, "modality_a": mod_a,
            "modality_b": mod_b, "measure": measure, "score": score, "chance": chance,
            "adjusted": (score - chance) / (1 - chance), **extra}


def test_modality_gap_and_length_adaptation_compare_chance_adjusted_scores():
    # cross-modal raw 0.60 at chance 0.50; cross-lingual raw 0.50 at chance 0.10: raw says the
    # modalities are closer (gap -0.10), adjusted says the languages are (0.444 - 0.2 = +0.244)
    cm = [_row("cross_modal", 0.60, 0.50, lang, lang) for lang in ("eng", "fra", "deu")]
    cl = [_row("cross_lingual", 0.50, 0.10, a, b, m, m)
          for m in ("speech", "text") for a, b in (("eng", "fra"), ("eng", "deu"), ("fra", "deu"))]
    (gap,) = modality_gap(cm, cl)
    assert abs(gap["gap"] - (0.4 / 0.9 - 0.2)) < 1e-12
    assert abs(gap["cross_modal_raw"] - 0.6) < 1e-12 and gap["score_kind"] == "chance-adjusted"
    la = length_adaptation(cm, {"after": "l0"}, {"eng": "high", "fra": "high", "deu": "low"})
    high = next(r for r in la if r["resource"] == "high")
    assert abs(high["adjusted"] - 0.2) < 1e-12 and abs(high["score"] - 0.6) < 1e-12


def test_rows_carry_adjusted_score_and_z_against_the_null():
    pop = population(seed=6)
    x, y = sample(pop, 150, np.random.default_rng(7))
    (row,) = Comparer({"x": x, "y": y}.__getitem__, "svcca", k=3, n_perm=30).compare("x", "y")
    assert abs(row["adjusted"] - (row["score"] - row["chance"]) / (1 - row["chance"])) < 1e-12
    assert abs(row["z"] - (row["score"] - row["chance"]) / row["chance_std"]) < 1e-9
    assert 0 < row["chance"] < row["score"] and row["z"] > 5


def test_large_k_is_refused_by_default_and_flagged_when_allowed():
    rng = np.random.default_rng(8)
    views = {"x": rng.standard_normal((60, 80)), "y": rng.standard_normal((60, 80))}
    with pytest.raises(LargeKError, match="allow_large_k"):
        Comparer(views.__getitem__, "svcca", k=20).compare("x", "y")
    (row,) = Comparer(views.__getitem__, "svcca", k=20, allow_large_k=True).compare("x", "y")
    assert row["flags"] == "large_k"
    (row,) = Comparer(views.__getitem__, "svcca", k=5).compare("x", "y")
    assert row["flags"] == ""


# -- defect 3: rank on the Gram path -------------------------------------------------------------
@pytest.mark.parametrize("n,d", [(500, 300), (100, 300)])
def test_rank_deficient_view_is_seen_at_its_rank(n, d):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((n, 40)) @ rng.standard_normal((40, d))
    y = rng.standard_normal((n, d))
    assert np.linalg.matrix_rank(x - x.mean(0)) == 40
    for method in ("gram", "svd"):
        basis = decompose(as_matrix(x), method=method)
        assert len(basis.s) == 40, method
        gram = (basis.u.T @ basis.u).numpy()
        assert np.abs(gram - np.eye(40)).max() < 1e-10
    with pytest.raises(AnalysisError, match="rank 40"):
        svcca(x, y, k=45)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert abs(svcca(x, y, k=40).score - ref_svcca(x, y, 40)) < 1e-9


# -- defect 4: degenerate views --------------------------------------------------------------
@pytest.mark.parametrize("fill", [0.0, 0.1])
def test_constant_views_raise_one_clear_error(fill):
    rng = np.random.default_rng(10)
    dead, y = np.full((50, 16), fill), rng.standard_normal((50, 16))
    for fn in (svcca, pwcca, linear_cka, rbf_cka):
        with pytest.raises(ConstantViewError, match="constant"):
            fn(dead, y)
        with pytest.raises(ConstantViewError, match="constant"):
            fn(y, dead)


def test_a_dead_layer_gives_flagged_rows_not_silent_nans():
    rng = np.random.default_rng(11)
    views = {"dead": np.full((40, 8), 0.1), "y": rng.standard_normal((40, 8)),
             "z": rng.standard_normal((40, 8))}
    rows = Comparer(views.__getitem__, ["svcca", "linear_cka"], k=2, n_perm=3).compare_many(
        "y", ["dead", "z"])
    dead = [r for r in rows if r["b"] == "dead"]
    assert len(dead) == 2 and all(np.isnan(r["score"]) and r["flags"] == "constant_view"
                                  for r in dead)
    assert all(np.isfinite(r["score"]) for r in rows if r["b"] == "z")


# -- defect 5: seeds, flags, depth alignment -----------------------------------------------------
def test_each_row_draws_its_own_reproducible_null():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((80, 10))
    views = {"a": x, "b": rng.standard_normal((80, 10))}
    views["c"] = views["b"].copy()  # the same data under another key
    comparer = Comparer(views.__getitem__, "svcca", k=3, n_perm=10, seed=7)
    rb, rc = comparer.compare_many("a", ["b", "c"])
    assert rb["score"] == rc["score"] and rb["chance"] != rc["chance"]
    assert rb["row_seed"] != rc["row_seed"]
    again = Comparer(views.__getitem__, "svcca", k=3, n_perm=10, seed=7).compare("a", "b")[0]
    assert again["chance"] == rb["chance"]


def test_depth_alignment_refuses_or_maps_by_fraction():
    a, b = [f"a{i}" for i in range(4)], [f"b{i}" for i in range(7)]
    with pytest.raises(AnalysisError, match="depth_alignment: relative"):
        align_depths(a, b, "same_index", ("speech_encoder", "llm"))
    assert align_depths(a, b, "relative") == [("a0", "b0"), ("a1", "b2"), ("a2", "b4"),
                                              ("a3", "b6")]
    assert align_depths(b, a, "relative") == [("b0", "a0"), ("b2", "a1"), ("b4", "a2"),
                                              ("b6", "a3")]
    assert align_depths(a, a[::-1], "same_index") == list(zip(a, a[::-1], strict=True))


# -- defect 6: float32 error, RBF bandwidth --------------------------------------------------
def test_float32_error_is_within_the_documented_bound():
    """docs/statistics.md: float32 scores agree with float64 within 5e-4 (canonical
    correlations 2e-2), also with a few features 1000x larger than the rest."""
    rng = np.random.default_rng(13)
    worst, worst_rho = 0.0, 0.0
    for n, d in ((500, 128), (300, 512)):
        x = rng.standard_normal((n, d))
        y = x @ rng.standard_normal((d, d)) * 0.5 + rng.standard_normal((n, d))
        x[:, :3] *= 1000
        for k in (10, 50):
            ref = ref_svcca(x, y, k)
            worst = max(worst, abs(svcca(x, y, k=k, dtype="float32").score - ref))
            rho = np.linalg.svd(np.linalg.svd(x - x.mean(0), full_matrices=False)[0][:, :k].T
                                @ np.linalg.svd(y - y.mean(0), full_matrices=False)[0][:, :k],
                                compute_uv=False)
            worst_rho = max(worst_rho, np.abs(svcca(x, y, k=k, dtype="float32").rho - rho).max())
    assert worst < 5e-4 and worst_rho < 2e-2


def test_rbf_bandwidth_is_kornbliths_median_with_the_diagonal():
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((30, 7))

    def gram_rbf(a, threshold=0.8):  # Kornblith et al.'s gram_rbf, as published
        dots = a @ a.T
        sq = np.diag(dots)
        d2 = -2 * dots + sq[:, None] + sq[None, :]
        return np.exp(-d2 / (2 * threshold ** 2 * np.median(d2)))

    def cka(gx, gy):
        h = np.eye(len(gx)) - 1 / len(gx)
        gx, gy = h @ gx @ h, h @ gy @ h
        return np.sum(gx * gy) / (np.linalg.norm(gx) * np.linalg.norm(gy))
    assert abs(rbf_cka(x, y).score - cka(gram_rbf(x), gram_rbf(y))) < 1e-10


# -- several measures, control -----------------------------------------------------------------
def test_measure_agreement_is_spearman_of_curves_and_matrices():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(15)
    rows, curves = [], {}
    for lang in ("eng", "fra", "deu"):
        base = rng.standard_normal(6)
        for measure, values in (("svcca", base), ("linear_cka", base + rng.standard_normal(6))):
            curves[(lang, measure)] = values
            rows += [_row("cross_modal", 0.5, 0.0, lang, lang, depth=d, measure=measure,
                          layer=f"l{d}") | {"adjusted": v} for d, v in enumerate(values)]
    out = measure_agreement(rows)
    curves_row = next(r for r in out if r["kind"] == "layer curves")
    expected = np.mean([scipy_stats.spearmanr(curves[(lang, "svcca")],
                                              curves[(lang, "linear_cka")])[0]
                        for lang in ("eng", "fra", "deu")])
    assert curves_row["n_items"] == 3 and abs(curves_row["spearman_mean"] - expected) < 1e-12


def test_control_scores_sit_beside_their_rows():
    rows = [_row("cross_modal", 0.8, 0.3, lang, lang) for lang in ("eng", "fra")]
    control = [_row("cross_modal", 0.5, 0.3, "eng", "eng")]
    out = with_control(rows, control)
    assert abs(out[0]["control_adjusted"] - 0.2 / 0.7) < 1e-12 and out[0]["control_score"] == 0.5
    assert np.isnan(out[1]["control_adjusted"]) and out[1]["control"] == "random_init"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_half_sampling_on_gpu_equals_cpu():
    pop = population(seed=16)
    x, y = sample(pop, 100, np.random.default_rng(17))
    cpu = half_sampling(lambda a, b: svcca(a, b, k=3).score, x, y, n_draws=5, seed=1)
    gpu = half_sampling(lambda a, b: svcca(a, b, k=3, device="cuda").score, x, y, n_draws=5,
                        seed=1)
    np.testing.assert_allclose(cpu.draws, gpu.draws, atol=1e-9)
