"""Every measure against an independent float64 numpy implementation written here."""

import warnings

import numpy as np
import pytest
import torch

from probekit.analysis import (
    AnalysisError,
    decompose,
    linear_cka,
    paired_cosine,
    pwcca,
    rbf_cka,
    retrieval_accuracy,
    svcca,
    svcca_null,
)
from probekit.analysis.basis import as_matrix


# -- independent references (numpy, float64, straight from the definitions) ------------------
def ref_kept_basis(x, variance=0.99, k=None):
    x = x - x.mean(0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    if k is None:
        frac = np.cumsum(s ** 2) / np.sum(s ** 2)
        k = int(np.argmax(frac >= variance - 1e-12)) + 1
    return u[:, :k], s, x


def ref_svcca(x, y, variance=0.99, k=None):
    ux, _, _ = ref_kept_basis(x, variance, k)
    uy, _, _ = ref_kept_basis(y, variance, k)
    rho = np.linalg.svd(ux.T @ uy, compute_uv=False)
    return rho.mean(), rho, (ux.shape[1], uy.shape[1])


def ref_pwcca_one_side(x, y, variance=0.99):
    ux, _, xc = ref_kept_basis(x, variance)
    uy, _, _ = ref_kept_basis(y, variance)
    a, rho, _ = np.linalg.svd(ux.T @ uy, full_matrices=False)
    h = ux @ a[:, :len(rho)]
    alpha = np.abs(h.T @ xc).sum(axis=1)
    return (alpha / alpha.sum()) @ rho


def ref_linear_cka(x, y, debiased=False):
    x, y = x - x.mean(0), y - y.mean(0)
    n = len(x)
    if not debiased:
        return np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))

    def helper(xty, srx, sry, snx, sny):
        return xty - n / (n - 2.0) * srx.dot(sry) + snx * sny / ((n - 1) * (n - 2))

    srx, sry = (x * x).sum(1), (y * y).sum(1)
    snx, sny = srx.sum(), sry.sum()
    xy = helper(np.linalg.norm(x.T @ y) ** 2, srx, sry, snx, sny)
    xx = helper(np.linalg.norm(x.T @ x) ** 2, srx, srx, snx, snx)
    yy = helper(np.linalg.norm(y.T @ y) ** 2, sry, sry, sny, sny)
    return xy / np.sqrt(xx * yy)


def ref_rbf_cka(x, y, sigma=0.8):
    """Kornblith et al.'s gram_rbf: the median over the whole squared-distance matrix, its zero
    diagonal included."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n

    def kernel(a):
        d2 = np.array([[np.sum((a[i] - a[j]) ** 2) for j in range(n)] for i in range(n)])
        med = np.median(d2)
        return np.exp(-d2 / (2 * sigma ** 2 * med))

    kx, ky = h @ kernel(x) @ h, h @ kernel(y) @ h
    return np.sum(kx * ky) / (np.linalg.norm(kx) * np.linalg.norm(ky))


def shared_latent(n=400, dx=60, dy=40, latent=12, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, latent))
    x = z @ rng.standard_normal((latent, dx)) + noise * rng.standard_normal((n, dx))
    y = z @ rng.standard_normal((latent, dy)) + noise * rng.standard_normal((n, dy))
    return x, y


CASES = {
    "shared latent": shared_latent(),
    "offset and scaled": tuple(a * s + o for a, s, o in zip(shared_latent(seed=1), (1e3, 1e-2),
                                                            (50.0, -7.0), strict=True)),
    "n < d": shared_latent(n=60, dx=200, dy=150, latent=8, seed=2),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("variance,k", [(0.99, None), (0.9, None), (None, 5)])
def test_svcca_matches_reference(case, variance, k):
    x, y = CASES[case]
    ref, ref_rho, ref_k = ref_svcca(x, y, variance, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = svcca(x, y, variance=variance or 0.99, k=k)
    assert got.k == ref_k
    np.testing.assert_allclose(got.rho, ref_rho, atol=1e-7)
    assert abs(got.score - ref) < 5e-7


@pytest.mark.parametrize("case", CASES)
def test_pwcca_matches_reference_and_is_symmetric(case):
    x, y = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xy, yx = pwcca(x, y), pwcca(y, x)
    assert abs(xy.params["pwcca_x"] - ref_pwcca_one_side(x, y)) < 1e-6
    assert abs(xy.params["pwcca_y"] - ref_pwcca_one_side(y, x)) < 1e-6
    assert abs(xy.score - yx.score) < 1e-9


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_matches_reference(case, debiased):
    x, y = CASES[case]
    assert abs(linear_cka(x, y, debiased=debiased).score - ref_linear_cka(x, y, debiased)) < 1e-9


def test_rbf_cka_matches_reference():
    x, y = shared_latent(n=80, seed=3)
    assert abs(rbf_cka(x, y).score - ref_rbf_cka(x, y)) < 1e-9


def test_cosine_and_retrieval_match_reference():
    x, y = shared_latent(n=200, dx=30, dy=30, noise=1.0, seed=4)
    cos = np.sum(x * y, 1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    assert abs(paired_cosine(x, y).score - cos.mean()) < 1e-12
    xc, yc = x - x.mean(0), y - y.mean(0)
    sims = (xc / np.linalg.norm(xc, axis=1, keepdims=True)) @ (
        yc / np.linalg.norm(yc, axis=1, keepdims=True)).T
    assert retrieval_accuracy(x, y).score == np.mean(sims.argmax(1) == np.arange(len(x)))
    with pytest.raises(AnalysisError, match="width"):
        paired_cosine(x, y[:, :10])


def test_invariances_and_identity():
    x, y = shared_latent(seed=5)
    q, _ = np.linalg.qr(np.random.default_rng(6).standard_normal((x.shape[1], x.shape[1])))
    base = {"svcca": svcca(x, y).score, "cka": linear_cka(x, y).score}
    for transformed in (x @ q, 3.7 * x, x @ q * 0.01 + 5.0):
        assert abs(svcca(transformed, y).score - base["svcca"]) < 1e-6
        assert abs(linear_cka(transformed, y).score - base["cka"]) < 1e-9
    assert abs(svcca(x, x).score - 1) < 1e-9
    assert abs(linear_cka(x, x).score - 1) < 1e-12
    assert abs(pwcca(x, x).score - 1) < 1e-9


def test_gram_decomposition_equals_svd():
    for x, _ in CASES.values():
        t = as_matrix(x)
        g, s = decompose(t, method="gram"), decompose(t, method="svd")
        k = g.keep(0.99)
        assert k == s.keep(0.99)
        np.testing.assert_allclose(g.s[:k].numpy(), s.s[:k].numpy(), rtol=1e-9)
        # the same subspace: projector difference
        pg, ps = g.u[:, :k] @ g.u[:, :k].T, s.u[:, :k] @ s.u[:, :k].T
        assert float((pg - ps).abs().max()) < 5e-7


def test_float32_wide_scales_fall_back_to_svd():
    x, y = shared_latent(seed=7)
    x = x * np.logspace(0, 4, x.shape[1])  # feature scales spanning 1e4
    assert decompose(as_matrix(x, "float32")).method == "svd"
    assert decompose(as_matrix(x, "float64")).method == "gram"
    ref = ref_svcca(x, y)[0]
    assert abs(svcca(x, y, dtype="float32").score - ref) < 1e-3


def test_zscore_rescues_massive_activation_features():
    x, y = shared_latent(seed=8)
    x, y = x.copy(), y.copy()
    x[:, 0] += 1e4 * np.random.default_rng(9).standard_normal(len(x))  # one huge feature
    y[:, 0] += 1e4 * np.random.default_rng(10).standard_normal(len(y))
    plain, z = svcca(x, y), svcca(x, y, zscore=True)
    assert plain.k == (1, 1) and plain.score < 0.2
    assert z.score > 0.8
    assert z.params["zscore"] is True


def test_guard_rails():
    x, y = shared_latent(seed=11)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(AnalysisError, match="NaN"):
        svcca(bad, y)
    with pytest.raises(AnalysisError, match="rows must be paired"):
        svcca(x, y[:-1])
    with pytest.raises(AnalysisError, match="at least 5"):
        svcca(x[:3], y[:3])
    rng = np.random.default_rng(12)
    with pytest.warns(UserWarning, match="tend to 1"):
        svcca(rng.standard_normal((50, 80)), rng.standard_normal((50, 80)))


def test_permutation_null_of_independent_views_matches_simulation():
    n, d, k = 200, 40, 20
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    bx, by = decompose(as_matrix(x)), decompose(as_matrix(y))
    null = svcca_null(bx, by, k, k, n_perm=200, seed=1)
    again = svcca_null(bx, by, k, k, n_perm=200, seed=1)
    np.testing.assert_array_equal(null.draws, again.draws)  # seeded
    # simulation: fresh independent pairs, reference implementation
    sims = np.array([ref_svcca(rng.standard_normal((n, d)), rng.standard_normal((n, d)), k=k)[0]
                     for _ in range(60)])
    assert abs(null.mean - sims.mean()) < 4 * np.hypot(null.std / np.sqrt(200),
                                                       sims.std() / np.sqrt(60)) + 2e-3
    assert null.mean > 0.1  # far from 0: the reason a chance level is shown


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_svcca_on_gpu_equals_cpu():
    x, y = shared_latent(seed=15)
    assert abs(svcca(x, y, device="cuda").score - svcca(x, y).score) < 1e-9


def test_zscoring_keeps_a_constant_column_at_zero():
    """A constant column's centred values are its mean's rounding (1e-15, all equal): z-scoring
    must leave it at 0, not scale that rounding up to a unit-variance column."""
    import torch

    from probekit.analysis.basis import centre

    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4))
    x[:, 2] = 10.3  # 7 x 10.3 / 7 is not 10.3 in float64
    z = centre(torch.from_numpy(x), zscore=True).numpy()
    assert np.all(z[:, 2] == 0)
    live = x[:, [0, 1, 3]]
    np.testing.assert_allclose(z[:, [0, 1, 3]], (live - live.mean(0)) / live.std(0, ddof=1),
                               atol=1e-12)
