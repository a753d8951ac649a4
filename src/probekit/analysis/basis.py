"""One view (an ``(n, d)`` matrix of paired examples) decomposed once, reused by every comparison.

The left singular vectors and singular values of the centred view come from the eigendecomposition
of the smaller Gram matrix (``X X^T`` when n <= d, else ``X^T X``), which is about 3x faster than a
thin SVD and agrees with a float64 SVD to ~1e-7 on the kept directions. Squaring loses the
directions whose singular value is below ``sqrt(size * eps)`` of the largest (about 3e-7 in
float64, 6e-3 in float32): those count as rounding, so the view's rank is what survives.
Input whose feature scales
span more than 1e3 in float32 (where squaring the condition number loses the small directions),
or whose Gram matrix turns out indefinite, is decomposed by a thin SVD instead.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ProbekitError

MIN_EXAMPLES = 5


class AnalysisError(ProbekitError):
    """Input that no similarity can be computed from (NaN, mismatched rows, too few examples)."""


class ConstantViewError(AnalysisError):
    """A view whose rows are all the same vector (a dead layer or a broken recording)."""


_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def as_matrix(x: Any, dtype: str = "float64", device: str | None = None,
              name: str = "x") -> torch.Tensor:
    """``x`` (numpy or torch, ``(n, d)``) as a torch matrix of ``dtype`` on ``device``."""
    if dtype not in _DTYPES:
        raise AnalysisError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    t = t.detach().to(dtype=_DTYPES[dtype], device=device or t.device)
    if t.dim() != 2:
        raise AnalysisError(f"{name} must be a matrix (n examples, d features); got shape "
                            f"{tuple(t.shape)}")
    if t.shape[0] < MIN_EXAMPLES:
        raise AnalysisError(f"{name} has {t.shape[0]} examples; at least {MIN_EXAMPLES} are "
                            "needed for a similarity (and hundreds for a meaningful one)")
    finite = (np.isfinite(t.numpy()).all() if t.device.type == "cpu"  # 10x faster than torch's
              else bool(torch.isfinite(t).all()))
    if not finite:
        raise AnalysisError(f"{name} contains NaN or inf; drop those examples first "
                            "(store.read(..., drop_nonfinite=True))")
    return t


def check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape[0] != y.shape[0]:
        raise AnalysisError(f"x has {x.shape[0]} examples and y has {y.shape[0]}; rows must be "
                            "paired examples (the same sentences in the same order)")


def centre(x: torch.Tensor, zscore: bool = False) -> torch.Tensor:
    """Centre each column; with ``zscore`` also divide by its standard deviation (a constant
    column, max equal to min, becomes 0: never its mean's rounding scaled up to unit variance)."""
    flat = (x.amax(dim=0) == x.amin(dim=0)) if zscore else None
    x = x - x.mean(dim=0, keepdim=True)
    if flat is not None:  # the columns are centred: a sum of squares (torch's std: 9 ms at
        std = torch.sqrt((x * x).sum(dim=0) / max(len(x) - 1, 1))  # 350 x 5120, this 2 ms)
        x = x / torch.where(flat | (std == 0), torch.full_like(std, torch.inf), std)
    return x


@dataclass
class Basis:
    """Orthonormal left singular vectors ``u`` (n, r) and singular values ``s`` (r,), descending,
    of a centred view, plus the centred view itself (for PWCCA weights and CKA) and, where the
    decomposition formed it, the Gram matrix ``x x^T`` of its rows (linear CKA's kernel)."""
    u: torch.Tensor
    s: torch.Tensor
    x: torch.Tensor
    method: str
    gram: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return int(self.u.shape[0])

    def keep(self, variance: float = 0.99, k: int | None = None) -> int:
        """How many top directions to keep: exactly ``k``, or the fewest whose squared singular
        values reach ``variance`` of the total."""
        if k is not None:
            if not 1 <= k <= len(self.s):
                raise AnalysisError(f"k={k} directions asked for, but the view has rank "
                                    f"{len(self.s)} (n={self.n})")
            return int(k)
        if not 0 < variance <= 1:
            raise AnalysisError(f"variance must be in (0, 1]; got {variance}")
        energy = self.s.double() ** 2
        cum = torch.cumsum(energy, 0) / energy.sum()
        return int(torch.searchsorted(cum, torch.tensor(variance, dtype=cum.dtype,
                                                        device=cum.device) - 1e-12)) + 1


def decompose(x: torch.Tensor, zscore: bool = False, method: str = "auto",
              name: str = "view") -> Basis:
    """Decompose an ``(n, d)`` view (already a checked matrix) once. A constant view (every
    example the same vector: a dead layer or a broken recording) has no directions and is an
    :class:`AnalysisError`."""
    if is_constant(x):
        raise ConstantViewError(constant_message(name))
    xc = centre(x, zscore)
    n, d = xc.shape
    if method == "auto":
        method = "gram"
        if xc.dtype == torch.float32:
            scale = xc.abs().amax(dim=0)
            nonzero = scale[scale > 0]
            if len(nonzero) and float(nonzero.max() / nonzero.min()) > 1e3:
                method = "svd"
    if method == "gram":
        basis = _gram(xc)
        if basis is not None:
            return basis
        method = "svd"
    if method != "svd":
        raise AnalysisError(f"method must be 'auto', 'gram' or 'svd'; got {method!r}")
    u, s, _ = torch.linalg.svd(xc, full_matrices=False)
    r = _rank(s, max(n, d))
    return Basis(u[:, :r], s[:r], xc, "svd")


def is_constant(x: torch.Tensor) -> bool:
    """Every row the same (exactly: each column's max equals its min)."""
    return bool((x.amax(dim=0) == x.amin(dim=0)).all())


def constant_message(name: str) -> str:
    return (f"{name} is constant (every example has the same vector, so it has no direction to "
            "compare): a dead layer or a broken recording; check it with store.read()")


def _rank(s: torch.Tensor, size: int, gram: bool = False) -> int:
    """Directions above rounding: ``s > s_max * size * eps`` for an SVD (numpy's matrix_rank
    rule). Singular values from a Gram matrix's eigenvalues carry the eigenvalues' rounding,
    ``size * eps * s_max^2``, so there the cut is ``s > s_max * sqrt(size * eps)``."""
    eps = torch.finfo(s.dtype).eps
    rel = (size * eps) ** 0.5 if gram else size * eps
    return max(1, int((s > float(s.max()) * rel).sum()))


def _eigh_gram(a: torch.Tensor, left: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eigendecomposition of ``g = a a^T`` (``left``) or ``a^T a``: eigenvalues and vectors,
    descending, and ``g``. On the CPU numpy's BLAS and LAPACK are used (measured here: its Gram
    product is a symmetric rank-k update, 12 vs 21 ms for torch's matmul at 1000 x 1024, and its
    eigh 1.3x faster than torch's)."""
    if a.device.type == "cpu":
        m = a.numpy()
        g_np = m @ m.T if left else m.T @ m
        w, v = np.linalg.eigh(g_np)
        return (torch.from_numpy(np.ascontiguousarray(w[::-1])),
                torch.from_numpy(np.ascontiguousarray(v[:, ::-1])), torch.from_numpy(g_np))
    g = a @ a.T if left else a.T @ a
    w, v = torch.linalg.eigh(g)
    return w.flip(0), v.flip(1), g


def gram_basis(g: torch.Tensor, width: int) -> Basis:
    """The basis of a view's rows from ``g``, the Gram matrix of those rows centred on their own
    mean, and the view's ``width``: the eigenvectors of ``g``, as :func:`decompose` computes them
    from the features (equal to rounding; no product with the features). ``x`` is left empty:
    PWCCA's weights need the features."""
    if g.device.type == "cpu":
        w_np, v_np = np.linalg.eigh(g.numpy())
        w = torch.from_numpy(np.ascontiguousarray(w_np[::-1]))
        v = torch.from_numpy(np.ascontiguousarray(v_np[:, ::-1]))
    else:
        w, v = torch.linalg.eigh(g)
        w, v = w.flip(0), v.flip(1)
    s = torch.sqrt(torch.clamp(w, min=0))
    r = _rank(s, max(len(g), width), gram=True)
    return Basis(v[:, :r], s[:r], g.new_empty((0, 0)), "gram")


def _gram(xc: torch.Tensor) -> Basis | None:
    n, d = xc.shape
    w, v, g = _eigh_gram(xc, left=n <= d)
    if float(w[-1]) < -1e-6 * float(w[0]):
        warnings.warn("Gram matrix is indefinite beyond rounding; using a thin SVD", stacklevel=3)
        return None
    s = torch.sqrt(torch.clamp(w, min=0))
    r = _rank(s, max(n, d), gram=True)
    s, v = s[:r], v[:, :r]
    u = v if n <= d else (xc @ v) / s
    return Basis(u, s, xc, "gram", g if n <= d else None)


@contextlib.contextmanager
def torch_single_thread(device: str | None) -> Iterator[None]:
    """torch on one thread while a grid runs on the CPU. Its products here are small, while
    numpy's BLAS does the heavy Gram products and eigendecompositions: with both thread pools
    awake, torch's spinning workers starved numpy's (the demo's analysis took 66 s instead of
    20 s on 2 cores)."""
    if device not in (None, "cpu"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
