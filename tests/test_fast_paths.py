"""The analysis's faster paths give the numbers of the direct computation: CKA's permutation null
from kernel matrices formed once equals the measure recomputed on each row-shuffled view (same
shuffles), against an independent float64 reference written here; float32 stays within its
stated bound of float64; ``analysis.device`` and ``analysis.dtype`` reach the rows."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probekit.analysis import Comparer


def ref_linear_cka(x, y, debiased=False):
    """CKA from the features (not the Grams): Kornblith et al.'s feature-space formulas."""
    x, y = x - x.mean(0), y - y.mean(0)
    n = len(x)
    if not debiased:
        return np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    srx, sry = (x * x).sum(1), (y * y).sum(1)

    def hsic(xty, sa, sb):
        return xty - n / (n - 2.0) * sa.dot(sb) + sa.sum() * sb.sum() / ((n - 1) * (n - 2))

    xy = hsic(np.linalg.norm(x.T @ y) ** 2, srx, sry)
    return xy / np.sqrt(hsic(np.linalg.norm(x.T @ x) ** 2, srx, srx)
                        * hsic(np.linalg.norm(y.T @ y) ** 2, sry, sry))


def ref_rbf_cka(x, y, sigma):
    n = len(x)
    h = np.eye(n) - 1.0 / n

    def kernel(a):
        d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * sigma ** 2 * np.median(d2)))

    kx, ky = h @ kernel(x) @ h, h @ kernel(y) @ h
    return np.sum(kx * ky) / (np.linalg.norm(kx) * np.linalg.norm(ky))


def power_law_views(n=120, d=48, seed=0, shared=0.6):
    """Two views with power-law spectra sharing part of a latent (trained layers look so)."""
    rng = np.random.default_rng(seed)
    scale = np.arange(1, d + 1) ** -0.8
    z = rng.standard_normal((n, d))
    x = z * scale
    y = (shared * z + (1 - shared) * rng.standard_normal((n, d))) * scale
    return x @ rng.standard_normal((d, d)), y @ rng.standard_normal((d, d)) + 3.0


@pytest.mark.parametrize("measure,reference", [
    ("linear_cka", lambda x, y: ref_linear_cka(x, y)),
    ({"linear_cka": {"debiased": True}}, lambda x, y: ref_linear_cka(x, y, debiased=True)),
    ({"rbf_cka": {"sigma": 0.5}}, lambda x, y: ref_rbf_cka(x, y, 0.5))])
@pytest.mark.parametrize("zscore", [False, True])
def test_cka_chance_equals_the_measure_on_each_shuffled_view(measure, reference, zscore,
                                                            monkeypatch):
    from probekit.analysis import grid

    def direct(*args, **kwargs):
        raise AssertionError("the generic null ran: the kernel matrices were not reused")

    monkeypatch.setattr(grid, "permutation_null", direct)
    x, y = power_law_views()
    views = {"x": x, "y": y}
    row = Comparer(views.__getitem__, measure, n_perm=12, seed=5, zscore=zscore).compare(
        "x", "y")[0]

    def prepared(a):
        return (a - a.mean(0)) / a.std(0) if zscore else a

    px, py = prepared(x), prepared(y)
    assert abs(row["score"] - reference(px, py)) < 1e-10
    rng = np.random.default_rng(row["row_seed"])  # the generic null's shuffles, in order
    draws = np.array([reference(px, py[rng.permutation(len(y))]) for _ in range(12)])
    assert abs(row["chance"] - draws.mean()) < 1e-10
    assert abs(row["chance_std"] - draws.std(ddof=1)) < 1e-10
    assert row["p_perm"] == (1 + np.sum(draws >= row["score"])) / 13


@pytest.mark.parametrize("d", [48, 200])  # n > d, n <= d (the decomposition's own product)
@pytest.mark.parametrize("zscore", [False, True])
def test_linear_cka_beside_svcca_equals_the_measure_from_the_features(d, zscore):
    """With SVCCA in the same comparer, linear CKA's kernel is the decomposition's Gram matrix
    (of the view centred, and z-scored where asked): score and chance as from the features."""
    x, y = power_law_views(n=120, d=d, seed=3)
    x[:, 0] = 2.5  # a constant column: 0 once z-scored
    views = {"x": x, "y": y}
    rows = Comparer(views.__getitem__, ["svcca", "linear_cka"], k=5, n_perm=12, seed=5,
                    zscore=zscore).compare("x", "y")

    def prepared(a):
        if not zscore:
            return a
        sd = a.std(0, ddof=1)
        return np.where(sd > 0, (a - a.mean(0)) / np.where(sd > 0, sd, 1), 0.0)

    px, py = prepared(x), prepared(y)
    svcca, cka = rows
    assert abs(svcca["score"] - ref_svcca(px, py, 5)) < 1e-8
    assert abs(cka["score"] - ref_linear_cka(px, py)) < 1e-10
    rng = np.random.default_rng(cka["row_seed"])
    draws = np.array([ref_linear_cka(px, py[rng.permutation(len(y))]) for _ in range(12)])
    assert abs(cka["chance"] - draws.mean()) < 1e-10


def ref_svcca(x, y, k):
    """SVCCA by thin SVDs in numpy: the top-k left singular vectors of each centred view, the
    mean of the singular values of their product."""
    ux = np.linalg.svd(x - x.mean(0), full_matrices=False)[0][:, :k]
    uy = np.linalg.svd(y - y.mean(0), full_matrices=False)[0][:, :k]
    return np.linalg.svd(ux.T @ uy, compute_uv=False).mean()


@pytest.mark.parametrize("measure,reference", [
    ("svcca", lambda x, y: ref_svcca(x, y, 5)),
    ("linear_cka", lambda x, y: ref_linear_cka(x, y)),
    ({"linear_cka": {"debiased": True}}, lambda x, y: ref_linear_cka(x, y, debiased=True))])
@pytest.mark.parametrize("zscore", [False, True, "x only"])
def test_interval_draws_from_gram_matrices_equal_the_measure_on_each_subset(measure, reference,
                                                                            zscore, monkeypatch):
    """The interval's draws (the same subsets as half-sampling: the pair's ``draw_seed``) computed
    from Gram matrices equal the measure recomputed on the subset's rows, z-scored on those
    rows where asked (a z-scored view's scale changes with the rows)."""
    from probekit.analysis import draws, stats

    def direct(*args, **kwargs):
        raise AssertionError("the draws were recomputed from the features")

    monkeypatch.setattr(draws, "half_sampling", direct)
    x, y = power_law_views(n=80, d=30, seed=4)
    x[:, 3] = 2.5  # a constant column: 0 once z-scored, as the full rows have it
    x, y = x * np.linspace(0.1, 40, 30) + 7, y + 3  # scales and offsets z-scoring changes
    zx, zy = bool(zscore), zscore is True
    row = Comparer({"x": x, "y": y}.__getitem__, measure, k=5, n_perm=2, n_boot=30, seed=7,
                   ci=0.9, zscore=lambda key: zx if key == "x" else zy).compare("x", "y")[0]

    def z(a, on):
        flat = np.ptp(a, axis=0) == 0
        a = a - a.mean(0)
        return np.where(flat, 0.0, a / np.where(flat, 1, a.std(0, ddof=1))) if on else a

    def on_rows(i):
        return reference(z(x[i], zx), z(y[i], zy))
    fraction = stats.subsample_fraction(5 if row["measure"] == "svcca" else None, 5, 80)
    assert row["draw_seed"] == stats.row_seed(7, "draws", "x", "y")
    rng = np.random.default_rng(row["draw_seed"])
    m = int(round(fraction * 80))
    subsets = [np.sort(rng.choice(80, m, replace=False)) for _ in range(30)]
    values = np.array([on_rows(i) for i in subsets])
    sd = values.std(ddof=1) * np.sqrt(m / (80 - m))
    assert abs(row["score"] - on_rows(slice(None))) < 1e-10
    assert abs(row["ci_sd"] - sd) < 1e-10
    assert abs(row["ci_low"] - (row["score"] - 1.6448536269514722 * sd)) < 1e-10


def test_the_measures_of_a_pair_draw_the_same_subsets_and_form_their_grams_once(monkeypatch):
    """SVCCA and linear CKA of one pair of z-scored views: both intervals come from the pair's
    subsets (each equal to the measure recomputed on the subset's rows, z-scored on them), and
    each subset's Gram matrix of each view is formed once for both measures."""
    from probekit.analysis import measures, stats

    calls = []
    real = measures.zscored_subset_gram

    def counted(x, idx):
        calls.append(len(idx))
        return real(x, idx)

    monkeypatch.setattr(measures, "zscored_subset_gram", counted)
    monkeypatch.setattr("probekit.analysis.products.zscored_subset_gram", counted)
    x, y = power_law_views(n=90, d=40, seed=5)
    x, y = x * np.linspace(0.2, 30, 40) - 4, y + 2
    rows = Comparer({"x": x, "y": y}.__getitem__, ["svcca", "linear_cka"], k=5, n_perm=3,
                    n_boot=25, seed=3, zscore=True).compare("x", "y")
    assert len(calls) == 2 * 25  # two views x 25 draws, not once more per measure

    def z(a):
        a = a - a.mean(0)
        return a / a.std(0, ddof=1)
    rng = np.random.default_rng(stats.row_seed(3, "draws", "x", "y"))
    draws = [np.sort(rng.choice(90, 45, replace=False)) for _ in range(25)]
    for row, reference in zip(rows, (lambda a, b: ref_svcca(a, b, 5), ref_linear_cka),
                              strict=True):
        assert row["draw_seed"] == stats.row_seed(3, "draws", "x", "y")
        values = np.array([reference(z(x[i]), z(y[i])) for i in draws])
        assert abs(row["ci_sd"] - values.std(ddof=1)) < 1e-10, row["measure"]


FLOAT32_BOUND = 1e-5  # stated in docs/scale.md and the recipe key's doc


def test_float32_stays_within_its_stated_bound_of_float64():
    """At the paper's shape (n = 350, width 1024, k = 40), on float16-stored power-law views:
    the score, chance and adjusted score of every measure."""
    rng = np.random.default_rng(1)
    n, d = 350, 1024
    scale = np.arange(1, d + 1) ** -0.8
    z = rng.standard_normal((n, d))
    views = {}
    for i, share in enumerate((0.9, 0.5, 0.1)):
        mixed = (share * z + (1 - share) * rng.standard_normal((n, d))) * scale
        views[i] = (mixed @ rng.standard_normal((d, d)) / 30).astype(np.float16)
    rows = {}
    for dtype in ("float64", "float32"):
        c = Comparer(views.__getitem__, ["svcca", "pwcca", "linear_cka", "rbf_cka"], k=40,
                     n_perm=5, dtype=dtype, seed=2)
        rows[dtype] = [r for b in (1, 2) for r in c.compare(0, b)]
    for r64, r32 in zip(rows["float64"], rows["float32"], strict=True):
        assert r32["dtype"] == "float32"
        for key in ("score", "chance", "adjusted"):
            assert abs(r64[key] - r32[key]) < FLOAT32_BOUND, (r64["measure"], key)


def test_analysis_device_and_dtype_reach_the_rows_and_a_missing_gpu_is_one_line():
    import torch

    from probekit.analysis.basis import AnalysisError
    from probekit.analysis.recipe_comparer import analysis_device, comparer_for
    from probekit.recipe_schema import AnalysisSection

    assert analysis_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert analysis_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(AnalysisError, match="cuda:1 asked, but torch sees no GPU"):
            analysis_device("cuda:1")
    a = AnalysisSection(dtype="float32", device="cpu", n_perm=2)
    x, y = power_law_views()
    c = comparer_for(a, {"x": x, "y": y}.__getitem__)
    assert (c.dtype, c.device) == ("float32", "cpu")
    assert c.compare("x", "y")[0]["dtype"] == "float32"


RESUME = ["data.max_sentences=24", "data.languages=[eng,fra,deu]", "analysis.k=2",
          "analysis.n_perm=4", "analysis.n_boot=8", "analysis.control=null",
          "report.figures=false", "--quiet"]


def results_of(out):
    return {p.name: p.read_bytes() for p in sorted((out / "results").iterdir())
            if p.suffix in (".csv", ".md", ".tex", ".hash")}


def test_a_killed_analysis_resumes_its_rows_and_writes_the_same_tables(tmp_path):
    """kill -9 during the analysis stage, then the same command: the rows computed before the
    kill are reused (said in the log) and the tables equal an uninterrupted run's, byte for
    byte; the rows file is gone once the results are published."""
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    whole = tmp_path / "whole"
    cmd = [sys.executable, "-m", "probekit.run", "demo", *RESUME]
    done = subprocess.run([*cmd, "--out", str(whole)], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (whole / "analysis.partial.jsonl").exists()
    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copytree(whole / "store", killed / "store")
    shutil.copy(whole / "recipe.yaml", killed / "recipe.yaml")
    partial = killed / "analysis.partial.jsonl"
    proc = subprocess.Popen([*cmd, "--out", str(killed), "--stage", "analyze"], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and (
            not partial.exists() or partial.read_text().count("\n") < 6):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = partial.read_text().count("\n")
    assert kept >= 6 and not (killed / "results").exists()
    again = subprocess.run([*cmd, "--out", str(killed), "--stage", "analyze"],
                           capture_output=True, text=True, cwd=root)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming: {kept} comparisons of an interrupted analysis are reused" in again.stderr
    assert "were computed already (by an interrupted run or other processes)" in again.stderr
    assert results_of(killed) == results_of(whole)
    assert not partial.exists()


def test_two_worker_processes_write_the_tables_of_one(tmp_path, caplog):
    """``analysis.workers: 2`` on one machine: the same tables as one process, byte for byte,
    the rows computed by the workers (none left for the main process)."""
    import logging
    import shutil

    from probekit.run import main

    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["demo", *RESUME, "--out", str(one)]) == 0
    two.mkdir()
    shutil.copytree(one / "store", two / "store")
    caplog.set_level(logging.INFO)
    assert main(["demo", *RESUME, "analysis.workers=2", "--out", str(two), "--stage",
                 "analyze"]) == 0
    assert "analyze: 2 processes compute the rows" in caplog.text
    assert "were computed already (by an interrupted run or other processes)" in caplog.text
    assert "reused; 0 computed here" in caplog.text  # the claims' passes too
    assert results_of(two) == results_of(one)
    assert not list(two.glob("analysis.partial*"))


def test_rows_of_spectrum_matched_views_are_found_without_drawing_them(monkeypatch):
    """A row of spectrum-matched views is keyed by what the views are drawn from (source data,
    seed, tilt, key), so the main process finds the workers' rows without drawing the views
    again; drawn views differ in the last bits between processes with other BLAS threads,
    which made it recompute the whole pass (282 s at the paper's size)."""
    from probekit.analysis.simulate import SpectrumMatched

    rng = np.random.default_rng(0)
    source = {k: rng.standard_normal((40, 16)) for k in "ab"}
    drawn = SpectrumMatched(source.__getitem__, seed=3)
    key = Comparer(drawn, "svcca", k=3).row_key("a", "b")
    assert key == Comparer(SpectrumMatched(source.__getitem__, seed=3), "svcca",
                           k=3).row_key("a", "b")
    assert key != Comparer(SpectrumMatched(source.__getitem__, seed=4), "svcca",
                           k=3).row_key("a", "b")
    changed = {**source, "b": source["b"] + 1e-9}
    assert key != Comparer(SpectrumMatched(changed.__getitem__, seed=3), "svcca",
                           k=3).row_key("a", "b")

    def no_drawing(self, key):
        raise AssertionError("a view was drawn to find its row")
    monkeypatch.setattr(SpectrumMatched, "__call__", no_drawing)
    assert Comparer(SpectrumMatched(source.__getitem__, seed=3), "svcca",
                    k=3).row_key("a", "b") == key


def test_rows_of_store_views_are_keyed_by_the_shards_checksums_without_reading_them(tmp_path,
                                                                                    monkeypatch):
    """A row's key names each view by its layer, ids, shard rows and the shards' SHA-256 (the
    views' data was hashed in every process and pass: about 58 s per worker at 3 languages of
    SALMONN's shape); a rewritten shard, another order or a store without checksums changes it
    or falls back to the data."""
    import json

    from probekit import StoreWriter, open_store
    from probekit.analysis import paired_views
    from probekit.store.reader import Store

    def write(path, scale):
        rng = np.random.default_rng(0)
        with StoreWriter(path, shard_size=8, recipe_hash="r") as w:
            for mod in ("speech", "text"):
                meta = [{"id": f"eng/{mod}/{i}", "sentence": str(i), "lang": "eng",
                         "modality": mod} for i in range(12)]
                w.add(meta, {"enc.0": scale * rng.standard_normal((12, 6)).astype(np.float32)})
    write(tmp_path / "a", 1.0)
    write(tmp_path / "b", 2.0)  # the same ids and layout, other values
    keys = {}
    for name in "ab":
        views = paired_views(open_store(tmp_path / name))
        a, b = ("enc.0", "eng", "speech"), ("enc.0", "eng", "text")
        monkeypatch.setattr(Store, "read", lambda *args, **kw: pytest.fail("data read"))
        keys[name] = Comparer(views, "svcca", k=2).row_key(a, b)
        assert keys[name] == Comparer(views, "svcca", k=2).row_key(a, b)
        monkeypatch.undo()
        swapped = paired_views(open_store(tmp_path / name))
        swapped.ids[("eng", "text")] = swapped.ids[("eng", "text")][::-1]
        assert Comparer(swapped, "svcca", k=2).row_key(a, b) != keys[name]
    assert keys["a"] != keys["b"]
    for manifest in (tmp_path / "a").rglob("manifest*.json"):  # a store before checksums
        m = json.loads(manifest.read_text())
        for entry in m.get("shards", []):
            entry.pop("sha256", None)
        manifest.write_text(json.dumps(m))
    old = paired_views(open_store(tmp_path / "a"))
    assert old.digest(a) is None
    assert Comparer(old, "svcca", k=2).row_key(a, b) not in keys.values()  # from the data


def test_the_dry_run_times_workers_in_a_process_of_their_own(tmp_path):
    """With analysis.workers > 1 the comparisons are timed in a spawned process on one BLAS
    thread, as each worker runs (timed in this process, on every BLAS thread, the estimate was
    0.6x the measured time at 3 languages of SALMONN's shape): everything it needs travels."""
    from probekit.pipeline import resolve_run
    from probekit.pipeline.analyses import plan
    from probekit.pipeline.analyze import CLAIM_ANALYSES
    from probekit.pipeline.estimate import analysis_seconds
    from probekit.recipe import load_recipe

    root = Path(__file__).resolve().parent.parent
    run = resolve_run(load_recipe(root / "recipes" / "demo.yaml", [
        "analysis.n_perm=2", "analysis.n_boot=4", "analysis.control=null"]), tmp_path)
    comparisons = plan(run.recipe.analysis, {s: [f"{s}.*"] for s in run.spec.sizes},
                       ["text", "speech"], [f"{s}.{i}" for s in run.spec.sizes for i in range(2)],
                       lambda layer: {"text", "speech"}, [])  # as the dry run plans, 2 layers
    assert comparisons
    args = (run.recipe.analysis, comparisons, ["eng", "fra", "deu"], 40,
            dict.fromkeys(run.spec.stacks, 16), set(), 0, 0, [], CLAIM_ANALYSES, False)
    assert 0 < analysis_seconds(*args, workers=2) < 60


def test_the_robustness_check_at_the_recipes_k_is_the_runs_own_rows(tmp_path, caplog):
    """A robust k equal to the recipe's k (SVCCA as the recipe lists it) is not a pass of its
    own: the claims read the run's own SVCCA rows, which equal, score for score, what that
    pass computes on the store (the pass run here, on its own)."""
    import logging

    from probekit import open_store
    from probekit.pipeline import resolve_run
    from probekit.pipeline.analyses.claims import Claims
    from probekit.pipeline.analyze import CLAIM_ANALYSES, similarities
    from probekit.recipe import load_recipe
    from probekit.run import main

    overrides = [o for o in RESUME if o != "--quiet"] + ["analysis.claims.robust_k=[2,4]"]
    caplog.set_level(logging.INFO)
    assert main(["demo", *overrides, "--quiet", "--out", str(tmp_path)]) == 0
    assert "(claims: svcca k=4)" in caplog.text and "(claims: svcca k=2)" not in caplog.text
    claims = pd.read_csv(tmp_path / "results" / "claims.csv")
    assert claims["robustness"].str.contains(r"svcca k=2: [+-]\d").all()
    run = resolve_run(load_recipe("demo", overrides), tmp_path)
    assert [label for label, *_ in Claims.passes(run.recipe.analysis, 24)][:1] == ["svcca k=4"]
    store = open_store(run.store)
    own = similarities(run, store, False, True, "", only=set(CLAIM_ANALYSES))
    again = similarities(run, store, False, True, " (claims: svcca k=2)", only=set(
        CLAIM_ANALYSES), settings={"k": 2, "measures": ["svcca"], "n_perm": 0})

    def scores(rows):
        return {(kind, r["layer_a"], r["layer_b"], r["lang_a"], r["lang_b"], r["modality_a"],
                 r["modality_b"]): r["score"] for kind, v in rows.items() for r in v
                if r["measure"] == "svcca"}
    assert len(scores(again)) > 50 and scores(own) == scores(again)
