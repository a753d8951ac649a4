"""Similarity measures between two views whose rows are paired examples.

SVCCA (Raghu et al. 2017), as computed here: centre each column (optionally z-score it); per view
keep the fewest top singular directions whose squared singular values reach ``variance`` of the
total (or exactly ``k``); the canonical correlations ``rho`` are the singular values of
``U_x^T U_y`` for the kept orthonormal bases; the score is their mean over ``min(kx, ky)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .basis import (
    AnalysisError,
    Basis,
    ConstantViewError,
    as_matrix,
    centre,
    check_pair,
    constant_message,
    decompose,
    gram_basis,
    is_constant,
)


@dataclass
class Similarity:
    """A similarity and how it was computed."""
    measure: str
    score: float
    n: int
    params: dict[str, Any] = field(default_factory=dict)
    rho: Any = None                  # canonical correlations (CCA measures)
    k: tuple[int, int] | None = None  # kept directions (kx, ky)

    def __float__(self) -> float:
        return self.score


def canonical_correlations(bx: Basis, by: Basis, kx: int, ky: int) -> torch.Tensor:
    """Singular values of ``U_x[:, :kx]^T U_y[:, :ky]``, descending, clipped to [0, 1]."""
    m = bx.u[:, :kx].T @ by.u[:, :ky]
    if kx > ky:
        m = m.T
    # eigenvalues of the smaller m m^T are the squared singular values (faster than an SVD)
    ev = torch.linalg.eigvalsh(m @ m.T).flip(0)
    return torch.sqrt(torch.clamp(ev, 0.0, 1.0))


def _warn_k(kx: int, ky: int, n: int) -> None:
    if kx + ky > n // 2:
        warnings.warn(
            f"SVCCA keeps kx={kx} + ky={ky} directions for n={n} examples: canonical "
            "correlations tend to 1 for any data as kx + ky approaches n; compare with the "
            "permutation null, use more examples or a fixed smaller k", stacklevel=3)


def svcca_from_bases(bx: Basis, by: Basis, variance: float = 0.99, k: int | None = None,
                     warn: bool = True) -> Similarity:
    kx, ky = bx.keep(variance, k), by.keep(variance, k)
    if warn:
        _warn_k(kx, ky, bx.n)
    rho = canonical_correlations(bx, by, kx, ky)
    return Similarity("svcca", float(rho.mean()), bx.n, {"variance": None if k else variance,
                      "k": k}, rho=rho.cpu().numpy(), k=(kx, ky))


def svcca_many_from_bases(ba: Basis, kx: int, others: list[tuple[Basis, int]]) -> list[float]:
    """SVCCA of view ``a`` with each of ``others`` (its basis and kept directions): one product
    ``U_a^T [U_b1 U_b2 ...]`` for all of them (the views' k come from the caller)."""
    if not others:
        return []
    products = ba.u[:, :kx].T @ torch.cat([bb.u[:, :ky] for bb, ky in others], 1)
    scores, start = [], 0
    for _, ky in others:
        m = products[:, start:start + ky]
        start += ky
        if kx > ky:
            m = m.T
        rho = torch.sqrt(torch.clamp(torch.linalg.eigvalsh(m @ m.T), 0, 1))
        scores.append(float(rho.mean()))
    return scores


def _pair(x: Any, y: Any, dtype: str, device: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    tx = as_matrix(x, dtype, device, "x")
    ty = as_matrix(y, dtype, device or str(tx.device), "y")
    check_pair(tx, ty)
    return tx, ty


def _not_constant(tx: torch.Tensor, ty: torch.Tensor) -> None:
    for t, name in ((tx, "x"), (ty, "y")):
        if is_constant(t):
            raise ConstantViewError(constant_message(name))


def svcca(x: Any, y: Any, variance: float = 0.99, k: int | None = None, *, zscore: bool = False,
          dtype: str = "float64", device: str | None = None) -> Similarity:
    """SVCCA of two views (numpy or torch, rows paired). See the module docstring.

    ``dtype="float32"`` is faster and loses about 1e-4 absolute in the score; ``device="cuda"``
    runs on a GPU."""
    tx, ty = _pair(x, y, dtype, device)
    out = svcca_from_bases(decompose(tx, zscore, name="x"), decompose(ty, zscore, name="y"),
                           variance, k)
    out.params.update(zscore=zscore, dtype=dtype)
    return out


def pwcca_from_bases(bx: Basis, by: Basis, variance: float = 0.99,
                     k: int | None = None) -> Similarity:
    kx, ky = bx.keep(variance, k), by.keep(variance, k)
    m = bx.u[:, :kx].T @ by.u[:, :ky]
    a, rho, bt = torch.linalg.svd(m, full_matrices=False)
    rho = torch.clamp(rho, 0.0, 1.0)
    scores = []
    for basis, dirs in ((bx, bx.u[:, :kx] @ a), (by, by.u[:, :ky] @ bt.T)):
        # weight of canonical variate i: how much of the view's features it accounts for
        weights = (dirs.T @ basis.x).abs().sum(dim=1)
        scores.append(float((weights / weights.sum()) @ rho))
    return Similarity("pwcca", 0.5 * (scores[0] + scores[1]), bx.n,
                      {"variance": None if k else variance, "k": k,
                       "pwcca_x": scores[0], "pwcca_y": scores[1]},
                      rho=rho.cpu().numpy(), k=(kx, ky))


def pwcca(x: Any, y: Any, variance: float = 0.99, k: int | None = None, *, zscore: bool = False,
          dtype: str = "float64", device: str | None = None) -> Similarity:
    """Projection-weighted CCA (Morcos et al. 2018) on the SVCCA-reduced views, made symmetric:
    the mean of the x-weighted and y-weighted sums (both are in ``params``)."""
    tx, ty = _pair(x, y, dtype, device)
    out = pwcca_from_bases(decompose(tx, zscore, name="x"), decompose(ty, zscore, name="y"),
                           variance, k)
    out.params.update(zscore=zscore, dtype=dtype)
    return out


def _hsic(k: torch.Tensor, m: torch.Tensor, debiased: bool) -> torch.Tensor:
    n = k.shape[0]
    if not debiased:
        return (k * m).sum()  # both already centred
    k = k.clone()
    m = m.clone()
    k.fill_diagonal_(0)
    m.fill_diagonal_(0)
    ones_k, ones_m = k.sum(dim=1), m.sum(dim=1)
    return ((k * m).sum() + ones_k.sum() * ones_m.sum() / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (ones_k @ ones_m)) / (n * (n - 3))


def _cka_from_grams(kx: torch.Tensor, ky: torch.Tensor, debiased: bool,
                    centred: bool = False) -> float:
    if not debiased and not centred:
        kx, ky = _double_centre(kx), _double_centre(ky)
    xy, xx, yy = _hsic(kx, ky, debiased), _hsic(kx, kx, debiased), _hsic(ky, ky, debiased)
    return float(xy / torch.sqrt(xx * yy))


def _double_centre(g: torch.Tensor) -> torch.Tensor:
    return g - g.mean(dim=0, keepdim=True) - g.mean(dim=1, keepdim=True) + g.mean()


def linear_gram(t: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of a view's centred rows (linear CKA's kernel); on the CPU numpy's
    symmetric rank-k update (2x faster than torch's matmul at 350 x 5120)."""
    t = t - t.mean(0)
    if t.device.type == "cpu":
        m = t.numpy()
        return torch.from_numpy(m @ m.T)
    return t @ t.T


def rbf_gram(t: torch.Tensor, sigma: float) -> torch.Tensor:
    """The Gaussian kernel matrix of a view (see :func:`rbf_cka`)."""
    t = t - t.mean(0)  # distances do not change; the products lose less to rounding
    sq = (t * t).sum(1)
    d2 = torch.clamp(sq[:, None] + sq[None, :] - 2 * t @ t.T, min=0)
    d2.fill_diagonal_(0)
    flat = d2.flatten().sort().values
    med = 0.5 * (flat[(len(flat) - 1) // 2] + flat[len(flat) // 2])  # numpy's median
    return torch.exp(-d2 / (2 * sigma ** 2 * med))


def cka_grams(x: Any, y: Any, dtype: str, device: str | None, sigma: float | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Both views' kernel matrices: linear, or Gaussian with ``sigma`` (constant views refused)."""
    tx, ty = _pair(x, y, dtype, device)
    _not_constant(tx, ty)
    if sigma is None:
        return linear_gram(tx), linear_gram(ty)
    return rbf_gram(tx, sigma), rbf_gram(ty, sigma)


def subset_of_gram(gram: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of rows ``idx`` of a view, centred on their own mean, from the Gram matrix
    of the whole view's centred rows: the sub-matrix, double-centred (exactly equal)."""
    return _double_centre(gram[idx][:, idx])


def zscored_subset_gram(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of rows ``idx`` of features ``x``, each column z-scored on those rows
    (as :func:`~.basis.centre` with ``zscore``: a constant column becomes 0, not its mean's
    rounding over a rounding-sized deviation). On the CPU in numpy,
    in place, its product a symmetric rank-k update (4.3 ms vs torch's 5.9 ms at 175 x 5120)."""
    if x.device.type != "cpu":
        c = centre(x[idx], zscore=True)
        return c @ c.T
    r = np.take(x.numpy(), idx.numpy(), axis=0)
    flat = r.max(axis=0) == r.min(axis=0)
    r -= r.mean(axis=0)
    scale = np.sqrt(np.einsum("ij,ij->j", r, r) / (len(idx) - 1))
    scale[flat | (scale == 0)] = np.inf
    r *= 1.0 / scale
    return torch.from_numpy(r @ r.T)


def svcca_on_subset(gx: torch.Tensor, gy: torch.Tensor, widths: tuple[int, int],
                    variance: float, k: int | None, options: Any = None) -> float:
    """SVCCA of a subset of two views' rows from the Gram matrices of those rows (each centred
    on the subset): what an interval draw computes, without the features."""
    bx, by = gram_basis(gx, widths[0]), gram_basis(gy, widths[1])
    kx, ky = bx.keep(variance, k), by.keep(variance, k)
    return float(canonical_correlations(bx, by, kx, ky).mean())


def linear_cka_on_subset(gx: torch.Tensor, gy: torch.Tensor, widths: tuple[int, int],
                         variance: float, k: int | None, options: Any = None) -> float:
    """Linear CKA of a subset of two views' rows from the Gram matrices of those rows (each
    centred on the subset)."""
    return _cka_from_grams(gx, gy, bool(getattr(options, "debiased", False)), centred=True)


@dataclass(frozen=True)
class Kernel:
    """How a kernel measure (CKA) is computed from each view's kernel matrix, which a
    :class:`~probekit.analysis.Comparer` forms once per view and shares between rows:
    ``gram(view, options)``, ``score(gx, gy, options)`` and ``permuted(gx, gy, options, perms)``
    (the scores with ``y``'s rows shuffled by each permutation)."""
    gram: Any
    score: Any
    permuted: Any


def _cka_gram(t: torch.Tensor, options: Any) -> torch.Tensor:
    _not_constant(t, t)
    sigma = getattr(options, "sigma", None)
    return linear_gram(t) if sigma is None else rbf_gram(t, sigma)


CKA_KERNEL = Kernel(
    gram=_cka_gram,
    score=lambda gx, gy, options: _cka_from_grams(gx, gy, options.debiased),
    permuted=lambda gx, gy, options, perms: cka_permuted(gx, gy, options.debiased, perms))


def linear_cka(x: Any, y: Any, *, debiased: bool = False, dtype: str = "float64",
               device: str | None = None) -> Similarity:
    """Linear CKA (Kornblith et al. 2019); ``debiased=True`` uses the unbiased HSIC estimator
    (Song et al. 2012), which removes the upward bias at small n."""
    gx, gy = cka_grams(x, y, dtype, device)
    return Similarity("linear_cka", _cka_from_grams(gx, gy, debiased), gx.shape[0],
                      {"debiased": debiased, "dtype": dtype})


def rbf_cka(x: Any, y: Any, *, sigma: float = 0.8, debiased: bool = False,
            dtype: str = "float64", device: str | None = None) -> Similarity:
    """CKA with Gaussian kernels ``exp(-|a-b|^2 / (2 s^2))``, ``s = sigma * sqrt(median |a-b|^2)``
    per view, the median taken over the whole n x n matrix of squared distances, zero diagonal
    included: Kornblith et al.'s rule as their ``gram_rbf`` computes it."""
    gx, gy = cka_grams(x, y, dtype, device, sigma)
    return Similarity("rbf_cka", _cka_from_grams(gx, gy, debiased), gx.shape[0],
                      {"sigma": sigma, "debiased": debiased, "dtype": dtype})


def cka_permuted(gx: torch.Tensor, gy: torch.Tensor, debiased: bool,
                 perms: list[Any]) -> list[float]:
    """CKA of ``gx`` with ``gy``'s rows and columns permuted by each of ``perms``: the Grams of
    ``x`` and of ``y[perm]`` (centring commutes with a row permutation), formed once."""
    if not debiased:
        gx, gy = _double_centre(gx), _double_centre(gy)
    norm = torch.sqrt(_hsic(gx, gx, debiased) * _hsic(gy, gy, debiased))
    n = gy.shape[0]
    if debiased:  # the terms of _hsic that a permutation of gy only reorders
        gx, gy = gx.clone().fill_diagonal_(0), gy.clone().fill_diagonal_(0)
        sums_x, sums_y = gx.sum(dim=1), gy.sum(dim=1)
        fixed = sums_x.sum() * sums_y.sum() / ((n - 1) * (n - 2))
    cpu = gy.device.type == "cpu"  # numpy's gather is 4x faster than torch's there
    flat_x, flat_y = (gx.numpy().ravel(), gy.numpy().ravel()) if cpu else (gx.reshape(-1),
                                                                           gy.reshape(-1))
    out = []
    for perm in perms:  # sum(gx * gy[p][:, p]) from one gather of the flattened gy
        p = np.asarray(perm) if cpu else torch.as_tensor(perm, device=gy.device)
        trace = flat_x @ flat_y[(p[:, None] * n + p[None, :]).reshape(-1)]
        if debiased:
            trace = (trace + fixed - 2.0 / (n - 2) * (sums_x @ sums_y[torch.as_tensor(p)])) / (
                n * (n - 3))
        out.append(float(trace / norm))
    return out


def _same_space(x: Any, y: Any, what: str, centred: bool, dtype: str,
                device: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired views of one width, centred if asked (for cosine-based measures)."""
    tx, ty = _pair(x, y, dtype, device)
    if tx.shape[1] != ty.shape[1]:
        raise AnalysisError(f"{what} compares vectors in one space: x has width {tx.shape[1]} "
                            f"and y {ty.shape[1]}; use svcca/cka for views of different widths")
    if centred:
        tx, ty = tx - tx.mean(0), ty - ty.mean(0)
    return tx, ty


def paired_cosine(x: Any, y: Any, *, centred: bool = False, dtype: str = "float64",
                  device: str | None = None) -> Similarity:
    """Mean cosine similarity of each x row with its paired y row."""
    tx, ty = _same_space(x, y, "paired cosine", centred, dtype, device)
    cos = torch.nn.functional.cosine_similarity(tx, ty, dim=1)
    return Similarity("paired_cosine", float(cos.mean()), tx.shape[0], {"centred": centred})


def retrieval_accuracy(x: Any, y: Any, *, centred: bool = True, dtype: str = "float64",
                       device: str | None = None) -> Similarity:
    """Fraction of x rows whose nearest y row (by cosine) is their own pair (chance: 1/n)."""
    tx, ty = _same_space(x, y, "retrieval", centred, dtype, device)
    tx = torch.nn.functional.normalize(tx, dim=1)
    ty = torch.nn.functional.normalize(ty, dim=1)
    hits = (tx @ ty.T).argmax(dim=1) == torch.arange(len(tx), device=tx.device)
    return Similarity("retrieval", float(hits.double().mean()), tx.shape[0],
                      {"centred": centred, "chance": 1.0 / len(tx)})


__all__ = ["AnalysisError", "Similarity", "linear_cka", "paired_cosine", "pwcca", "rbf_cka",
           "retrieval_accuracy", "svcca"]
