"""Validation of probekit's row intervals, paired contrasts and group means on views like
trained layers (power-law spectra, no gap at k, partial sharing), at the paper's n, k and widths.

Model (``probekit.analysis.simulate``): views of width d = 1024 with eigenvalues ``i^-alpha``
(alpha 1 or 0.5), sharing one latent per sentence with canonical correlations
``0.9 exp(-(i - 1) / 40)``, the shared part turned away from the principal axes (rotation
tilt 0.4); population SVCCA at a fixed k and population linear CKA are closed forms (checked
against a large sample in tests/test_claims.py).

Parts (numbers printed, and written to ``--out`` as CSV):

1. Row intervals: for alpha in {0.5, 1}, n in {100, 350, 1000}, SVCCA k in {10, 40} and linear
   CKA, R samples each with a half-sampling interval (D draws, probekit's ``half_sampling``
   rule: m = n / 2, sd = sd(draws) sqrt(m / (n - m)), centred on the score). Coverage of the
   estimand the interval names, the statistic's expected value at this n and k (estimated by
   the mean score over 2R samples), and, for reference, of the population value; sd ratio
   (interval sd / empirical sd of the score). k = 40 at n = 100 is refused by probekit
   (kx + ky > n / 2) and skipped.
2. Paired contrasts at n = 350 (alpha 1 and 0.5; SVCCA k = 40 and linear CKA), with
   ``paired_contrast`` (the same m sentences for every score in each draw): type-I error of a
   difference of two rows with equal population scores, of a trend over 4 depths with equal
   population scores, and power for a population difference of +0.03 SVCCA (the loadings of
   one view scaled to give it; CKA's population difference at that scaling is printed); the
   rejection rate of the old bias-corrected centre beside it. The spectrum confound: a view with
   the flatter spectrum (alpha 0.5) and the same population SVCCA; its mean sample difference,
   the paired test's rejection rate, and the mean effect of the spectrum-matched null
   (``SpectrumMatched``) on the same sample.
3. Group means: pair values ``mu + f_a + f_b + e_ab`` over 15 or 30 languages, through
   ``group_means`` (delete-one-language jackknife), coverage of ``mu``; the old t-interval over
   language means beside it; and the type-I error of the adaptation difference-in-differences
   (high minus low resource, jackknife over languages).
4. Adjusted scores and z: the mean adjusted SVCCA (k = 40) at n = 100 / 350 / 1000 for one
   population, and under independence the rate of |z| > 1.96 and of p_perm <= 0.05 (20
   permutations).

Run (single-threaded BLAS, about 30 minutes on 2 cores at the defaults):
    .venv/bin/python benchmarks/claims_validation.py [--reps 100] [--draws 40] [--quick]
``--quick`` (n = 350 and alpha = 1 only; R = 12 and D = 20 for the rows, R = 10 and D = 12 for
the contrasts, R = 40 for group means) is what tests/test_claims.py runs in CI (about 45 s).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from statistics import NormalDist  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from probekit.analysis import Comparer, group_means, jackknife, paired_contrast  # noqa: E402
from probekit.analysis.basis import as_matrix, decompose  # noqa: E402
from probekit.analysis.measures import linear_cka, svcca_from_bases  # noqa: E402
from probekit.analysis.simulate import (  # noqa: E402
    SharedViews,
    SpectrumMatched,
    decaying,
    pair_model,
    power_law,
)
from probekit.analysis.stats import adjust, p_perm, svcca_null  # noqa: E402

D, TILT = 1024, 0.4
Z95 = NormalDist().inv_cdf(0.975)


def scores(x: np.ndarray, y: np.ndarray, ks: list[int]) -> dict[str, float]:
    """SVCCA at each k (one decomposition per view) and linear CKA, as probekit computes them."""
    bx = decompose(as_matrix(x), name="x")
    by = decompose(as_matrix(y), name="y")
    out = {f"svcca k={k}": svcca_from_bases(bx, by, k=k, warn=False).score for k in ks}
    out["linear_cka"] = linear_cka(x, y).score
    return out


# -- 1. row intervals ---------------------------------------------------------------------------
def row_intervals(reps: int, draws: int, ns: list[int], alphas: list[float], seed: int):
    out = []
    for alpha in alphas:
        model = pair_model(D, alpha, decaying(D), seed=seed, tilt=TILT)
        for n in ns:
            ks = [k for k in (10, 40) if 4 * k <= n]
            names = [f"svcca k={k}" for k in ks] + ["linear_cka"]
            pop = {f"svcca k={k}": model.svcca("x", "y", k) for k in ks}
            pop["linear_cka"] = model.linear_cka("x", "y")
            rng = np.random.default_rng(seed + n + int(10 * alpha))
            full, sds = {m: [] for m in names}, {m: [] for m in names}
            t0 = time.time()
            for _ in range(reps):
                v = model.sample(n, rng)
                s = scores(v["x"], v["y"], ks)
                m = n // 2
                d = {name: [] for name in names}
                for _ in range(draws):
                    idx = np.sort(rng.choice(n, m, replace=False))
                    for name, value in scores(v["x"][idx], v["y"][idx], ks).items():
                        d[name].append(value)
                for name in names:
                    full[name].append(s[name])
                    sds[name].append(np.std(d[name], ddof=1) * (m / (n - m)) ** 0.5)
            extra = {name: [] for name in names}
            for _ in range(reps):  # more samples for the expected score
                v = model.sample(n, rng)
                for name, value in scores(v["x"], v["y"], ks).items():
                    extra[name].append(value)
            for name in names:
                s, sd = np.array(full[name]), np.array(sds[name])
                expected = float(np.mean(np.r_[s, extra[name]]))
                out.append({"part": "row interval", "alpha": alpha, "n": n, "measure": name,
                            "reps": reps, "draws": draws, "population": pop[name],
                            "expected": expected,
                            "coverage": float(np.mean(np.abs(s - expected) <= Z95 * sd)),
                            "coverage_population": float(np.mean(np.abs(s - pop[name])
                                                                 <= Z95 * sd)),
                            "sd_ratio": float(np.mean(sd) / np.std(np.r_[s, extra[name]],
                                                                   ddof=1)),
                            "seconds": time.time() - t0})
                print(_fmt(out[-1]), flush=True)
    return out


# -- 2. paired contrasts ------------------------------------------------------------------------
def _scaled(alpha: float, k: int, target: float, seed: int) -> tuple[SharedViews, float]:
    """Views x, y1..y4 (equal), up (population SVCCA(x, up) = SVCCA(x, y1) + target) and flat
    (y1's loadings and rotation, spectrum alpha 0.5: the same population SVCCA)."""
    c = np.sqrt(decaying(D))
    keys = ["x", "y1", "y2", "y3", "y4", "up", "flat"]
    spectra = {key: power_law(D, 0.5 if key == "flat" else alpha) for key in keys}
    model = SharedViews(spectra, {key: c for key in keys}, seed, TILT)
    model.rotations["flat"] = model.rotations["y1"]
    base = model.svcca("x", "y1", k)
    model.rotations["up"] = model.rotations["y1"]
    lo, hi = 1.0, 1.0 / c.min()  # every loading reaches 1 (clipped) at the top
    for _ in range(50):  # bisection on the loadings' scale
        mid = (lo + hi) / 2
        model.loadings["up"] = np.clip(c * mid, 0, 1)
        lo, hi = (mid, hi) if model.svcca("x", "up", k) - base < target else (lo, mid)
    return model, base


def contrasts(reps: int, draws: int, alphas: list[float], seed: int, n: int = 350, k: int = 40,
              target: float = 0.03, only_power: bool = False):
    out = []
    for alpha in alphas:
        model, base = _scaled(alpha, k, target, seed)
        svcca_gap = model.svcca("x", "up", k) - base
        cka_gap = model.linear_cka("x", "up") - model.linear_cka("x", "y1")
        rng = np.random.default_rng(seed + 7 + int(10 * alpha))
        w = np.array([-1.5, -0.5, 0.5, 1.5]) / 5.0  # the slope over depths 0..3
        kinds = {"difference (null)": [("x", "y1", 1.0), ("x", "y2", -1.0)],
                 "trend over 4 depths (null)": [("x", f"y{i + 1}", float(w[i]))
                                                for i in range(4)],
                 f"difference +{target:g} svcca (power)": [("x", "up", 1.0), ("x", "y1", -1.0)],
                 "flatter spectrum, equal population": [("x", "flat", 1.0), ("x", "y1", -1.0)]}
        if only_power:
            kinds = {kind: terms for kind, terms in kinds.items() if "power" in kind}
        res: dict[tuple[str, str], list] = {}
        t0 = time.time()
        for r in range(reps):
            views = model.sample(n, rng)
            for measure in ("svcca", "linear_cka"):
                comparer = Comparer(views.__getitem__, measure, k=k if measure == "svcca"
                                    else None)
                for kind, terms in kinds.items():
                    c = paired_contrast(comparer, measure, terms, draws, 0.95, seed + r)
                    m = n // 2
                    centre = c.effect - (np.mean(c.draws) - c.effect) * m / (n - m)
                    item = [c.p_value < 0.05, abs(centre) / c.sd > Z95, c.effect]
                    if kind.startswith("flatter"):
                        null = SpectrumMatched(views.__getitem__, seed + r)
                        sm = Comparer(null, measure, k=k if measure == "svcca" else None)
                        item.append(sum(w_ * sm.resample_function(measure, a, b)(
                            sm.array(a), sm.array(b)) for a, b, w_ in terms))
                    res.setdefault((measure, kind), []).append(item)
        for (measure, kind), items in res.items():
            a = np.array(items, dtype=float)
            row = {"part": "contrast", "alpha": alpha, "n": n, "measure": measure,
                   "k": k if measure == "svcca" else np.nan, "kind": kind, "reps": reps,
                   "draws": draws, "reject": float(a[:, 0].mean()),
                   "reject_se": float(np.sqrt(a[:, 0].mean() * (1 - a[:, 0].mean()) / len(a))),
                   "reject_bias_corrected": float(a[:, 1].mean()),
                   "mean_effect": float(a[:, 2].mean()),
                   "spectrum_null_effect": float(a[:, 3].mean()) if a.shape[1] > 3 else np.nan,
                   "population_gap": svcca_gap if "power" in kind and measure == "svcca" else (
                       cka_gap if "power" in kind else 0.0),
                   "seconds": time.time() - t0}
            out.append(row)
            print(_fmt(row), flush=True)
    return out


# -- 3. group means -----------------------------------------------------------------------------
def groups(reps: int, seed: int):
    from scipy.stats import t

    out = []
    rng = np.random.default_rng(seed + 11)
    for langs in (15, 30):
        for sd_f, sd_e in ((0.05, 0.02), (0.0, 0.02)):
            names = [f"l{i:02d}" for i in range(langs)]
            hit_new, hit_old, did = [], [], []
            for _ in range(reps):
                f = rng.normal(0, sd_f, langs)
                rows = [{"analysis": "cross_lingual", "stack": "s", "modality_a": "text",
                         "modality_b": "text", "measure": "svcca", "depth": 0, "n": 350,
                         "k": 40, "lang_a": names[a], "lang_b": names[b], "score": 0.5,
                         "chance": 0.0, "adjusted": 0.5 + f[a] + f[b] + rng.normal(0, sd_e)}
                        for a in range(langs) for b in range(a + 1, langs)]
                g = group_means(rows, dict.fromkeys(names, "all"), "all")
                row = next(r for r in g if r["group"] == "all~all")
                hit_new.append(row["ci_low"] <= 0.5 <= row["ci_high"])
                per = [np.mean([r["adjusted"] for r in rows if name in (r["lang_a"],
                                                                         r["lang_b"])])
                       for name in names]  # the old rule: t over language means
                half = t.ppf(0.975, langs - 1) * np.std(per, ddof=1) / np.sqrt(langs)
                hit_old.append(abs(np.mean(per) - 0.5) <= half)
                change = dict(zip(names, rng.normal(0, 0.05, langs), strict=True))
                high = set(names[:langs // 2])
                c = jackknife(names, lambda keep, change=change, high=high: float(
                    np.mean([v for k_, v in change.items() if k_ in keep and k_ in high])
                    - np.mean([v for k_, v in change.items() if k_ in keep and k_ not in high])))
                did.append(c.p_value < 0.05)
            row = {"part": "group mean", "langs": langs, "sd_language": sd_f, "sd_pair": sd_e,
                   "reps": reps, "coverage": float(np.mean(hit_new)),
                   "coverage_old_t_over_language_means": float(np.mean(hit_old)),
                   "did_type_I": float(np.mean(did))}
            out.append(row)
            print(_fmt(row), flush=True)
    return out


# -- 4. adjusted scores and z -------------------------------------------------------------------
def adjusted(reps: int, seed: int, ns: list[int]):
    out = []
    model = pair_model(D, 1.0, decaying(D), seed=seed, tilt=TILT)
    rng = np.random.default_rng(seed + 13)
    for n in ns:
        if n < 160:
            continue
        values = []
        for r in range(reps):
            v = model.sample(n, rng)
            bx, by = decompose(as_matrix(v["x"])), decompose(as_matrix(v["y"]))
            s = svcca_from_bases(bx, by, k=40, warn=False).score
            values.append(adjust(s, svcca_null(bx, by, 40, 40, 20, seed + r))[0])
        row = {"part": "adjusted vs n", "n": n, "measure": "svcca k=40", "reps": reps,
               "population": model.svcca("x", "y", 40), "mean_adjusted": float(np.mean(values))}
        out.append(row)
        print(_fmt(row), flush=True)
    z, p = [], []
    for r in range(reps * 2):
        x = rng.standard_normal((350, 256)) * np.sqrt(power_law(256, 1.0))
        y = rng.standard_normal((350, 256)) * np.sqrt(power_law(256, 1.0))
        bx, by = decompose(torch.from_numpy(x)), decompose(torch.from_numpy(y))
        s = svcca_from_bases(bx, by, k=40, warn=False).score
        null = svcca_null(bx, by, 40, 40, 20, seed + r)
        z.append(abs(adjust(s, null)[1]) > Z95)
        p.append(p_perm(s, null) <= 0.05)
    row = {"part": "independence", "n": 350, "measure": "svcca k=40", "reps": reps * 2,
           "z_above_1.96": float(np.mean(z)), "p_perm_at_most_0.05": float(np.mean(p))}
    out.append(row)
    print(_fmt(row), flush=True)
    return out


def _fmt(row: dict) -> str:
    return "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in row.items())


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=100)
    p.add_argument("--draws", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--parts", default="rows,contrasts,groups,adjusted")
    p.add_argument("--alphas", default="1,0.5")
    p.add_argument("--power", type=float, default=0.0,
                   help="only the power of the SVCCA difference at this population gap")
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    reps, draws, ns = a.reps, a.draws, [100, 350, 1000]
    alphas = [float(x) for x in a.alphas.split(",")]
    if a.quick:
        reps, draws, ns, alphas = 12, 20, [350], [1.0]
    parts = a.parts.split(",")
    rows: list[dict] = []
    if "rows" in parts:
        rows += row_intervals(reps, draws, ns, alphas, a.seed)
    if a.power:
        rows += contrasts(reps, draws, alphas, a.seed, target=a.power, only_power=True)
    elif "contrasts" in parts:
        rows += contrasts(10 if a.quick else reps, 12 if a.quick else draws, alphas, a.seed)
    if "groups" in parts:
        rows += groups(max(reps, 100) if not a.quick else 40, a.seed)
    if "adjusted" in parts:
        rows += adjusted(reps if not a.quick else 4, a.seed, ns if not a.quick else [350])
    if a.out:
        import pandas as pd

        pd.DataFrame(rows).to_csv(a.out, index=False)
    return rows


if __name__ == "__main__":
    main()
