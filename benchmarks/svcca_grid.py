"""Time the full cross-lingual SVCCA grid (languages x modalities x layers) three ways.

1. probekit: every view decomposed once (Gram eigendecomposition, float64), comparisons as
   stacked products plus a small eigenproblem each.
2. The floor: one Gram-matrix product per view at this machine's matmul rate, and, for scale, the
   time of LAPACK's tridiagonal reduction of one Gram matrix (the first step of any exact dense
   symmetric eigensolver, so a lower bound for an exact decomposition).
3. Per-pair recomputation with a thin float64 numpy SVD of both views for every pair, as the
   reference implementations are used (timed on a sample of pairs, then scaled to the grid).

Synthetic views with a power-law spectrum (about 200 directions reach 99% of the variance).
Prints numbers; asserts nothing.

    python benchmarks/svcca_grid.py [--langs 30] [--layers 24] [--n 1000] [--d 1024]
"""

import argparse
import time

import numpy as np
import torch

from probekit.analysis import Comparer, svcca


def make_layer(rng, langs, mods, n, d):
    spectrum = np.arange(1, d + 1) ** -0.9
    shared = rng.standard_normal((n, d))
    views = {}
    for lang in langs:
        for mod in mods:
            own = rng.standard_normal((n, d))
            views[(lang, mod)] = (0.6 * shared + 0.8 * own) * spectrum
    return views


def per_pair_numpy(x, y, variance=0.99):
    """SVCCA the way the reference code is used: thin SVD of both views for every pair."""
    def kept(a):
        a = a - a.mean(0)
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        frac = np.cumsum(s ** 2) / np.sum(s ** 2)
        return u[:, :int(np.argmax(frac >= variance)) + 1]
    return np.linalg.svd(kept(x).T @ kept(y), compute_uv=False).mean()


def lapack_reduction_s(x):
    """Time of the tridiagonal reduction of one view's Gram matrix (CPU, float64): a lower bound
    for any exact dense eigendecomposition of it."""
    from scipy.linalg import lapack

    g = x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        lapack.dsytrd(g, lower=1)
        times.append(time.perf_counter() - t0)
    return min(times)


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--langs", type=int, default=30)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--sample-pairs", type=int, default=12)
    ap.add_argument("--device", default="cpu", help="where probekit computes (cpu, cuda)")
    args = ap.parse_args()
    from probekit.allocator import keep_freed_memory
    keep_freed_memory()  # as the probekit command runs the analysis
    langs = [f"l{i:02d}" for i in range(args.langs)]
    mods = ["speech", "text"]
    pairs_per_layer = len(mods) * len(langs) * (len(langs) - 1) // 2
    n_pairs = pairs_per_layer * args.layers
    n_views = len(langs) * len(mods) * args.layers
    print(f"grid: {args.langs} languages x {len(mods)} modalities x {args.layers} layers, "
          f"n={args.n}, d={args.d}: {n_views} views, {n_pairs} cross-lingual pairs; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")

    rng = np.random.default_rng(0)
    decompose_s = compare_s = 0.0
    scores = []
    ks = []
    for _ in range(args.layers):
        views = make_layer(rng, langs, mods, args.n, args.d)
        comparer = Comparer(lambda key, views=views: views[key], "svcca", device=args.device)
        sync(args.device)
        t0 = time.perf_counter()
        for key in views:
            comparer.basis(key)
        sync(args.device)
        decompose_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for mod in mods:
            for i, a in enumerate(langs):
                rows = comparer.compare_many((a, mod), [(b, mod) for b in langs[i + 1:]])
                scores += [r["score"] for r in rows]
                ks += [r["kx"] for r in rows]
        compare_s += time.perf_counter() - t0
    total = decompose_s + compare_s

    x = np.ascontiguousarray(views[(langs[0], "text")])
    y = np.ascontiguousarray(views[(langs[1], "text")])
    # The floor: one Gram product (2 n^2 d flops) per view at the machine's matmul rate, measured
    # with a general product (numpy's BLAS on the CPU, torch on a GPU). numpy computes x @ x.T
    # itself as a symmetric rank-k update, about twice as fast: printed too.
    xd, od = (x, y) if args.device == "cpu" else (torch.as_tensor(x, device=args.device),
                                                      torch.as_tensor(y, device=args.device))

    def best(f):
        times = []
        for _ in range(5):
            sync(args.device)
            t0 = time.perf_counter()
            f()
            sync(args.device)
            times.append(time.perf_counter() - t0)
        return min(times)
    gemm = best(lambda: xd @ od.T)
    syrk = best(lambda: xd @ xd.T)
    flops = 2 * args.n * args.n * args.d / gemm / 1e9
    floor = gemm * n_views
    reduction = lapack_reduction_s(x)

    sample = []
    for _ in range(args.sample_pairs):
        t0 = time.perf_counter()
        ref = per_pair_numpy(x, y)
        sample.append(time.perf_counter() - t0)
    per_pair = float(np.median(sample)) * n_pairs
    ours = svcca(x, y).score

    print(f"mean kept directions k = {np.mean(ks):.0f}; mean score {np.mean(scores):.4f}; "
          f"|probekit - numpy SVD| on a pair = {abs(ours - ref):.1e}")
    print(f"probekit grid total          {total:8.1f} s  (decompositions {decompose_s:.1f} s, "
          f"comparisons {compare_s:.1f} s)")
    print(f"floor: one Gram product/view {floor:8.1f} s  ({gemm * 1e3:.1f} ms per view at the "
          f"matmul rate, {flops:.0f} GFLOP/s); decompositions / floor = {decompose_s / floor:.1f}x")
    print(f"  (x @ x.T as numpy's symmetric update: {syrk * 1e3:.1f} ms; decompositions / that = "
          f"{decompose_s / (syrk * n_views):.1f}x)")
    print(f"LAPACK dsytrd alone (the Householder reduction that starts every dense symmetric "
          f"eigensolver): {reduction * 1e3:.1f} ms per Gram matrix = "
          f"{reduction / gemm:.1f}x one Gram product at the matmul rate")
    print(f"per-pair thin SVD (numpy)    {per_pair:8.1f} s  (median {np.median(sample):.3f} s "
          f"per pair over {args.sample_pairs} pairs, scaled to {n_pairs}); "
          f"speed-up {per_pair / total:.0f}x")


if __name__ == "__main__":
    main()
