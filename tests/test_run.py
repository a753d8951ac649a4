"""The run command on the embedded demo: all stages, resume after kill -9, refusals."""

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import rerun_demo

import probekit

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "recipes" / "demo.yaml"


# a handful of sentences: few directions, no control, no figures (these tests are about the data)
SMALL = ("analysis.k=2", "analysis.control=null", "report.figures=false")
THREE = ("data.languages=[eng,fra,deu]",)  # fra/3.ogg is the clip these tests break


def run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "probekit.run", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_demo_runs_every_stage(demo_run):
    out, done = demo_run
    assert (out / "recipe.yaml").exists() and (out / "run.log").exists()
    log = (out / "run.log").read_text()  # each stage's time, each analysis pass's, the figures'
    first = log.splitlines()[0]  # what ran, with what, on which recipe
    # run by the checkout, or by the installed wheel as the quick start says (conftest.demo_run)
    assert re.search(r"INFO start: (python -m probekit.run \S*demo.yaml|probekit run demo) "
                     r"--out \S+ --quiet \| "
                     r"probekit \d+\.\d+\.\d+, python 3\.\d+\.\d+, torch \d\S*, "
                     r"transformers \d\S*, numpy \d\S*.* \| recipe \S*demo.yaml hash [0-9a-f]{8,}",
                     first), first
    for stage in ("extract", "extract (control)", "analyze", "report"):
        assert f"time: {stage} took " in log
    assert re.search(r"analyze \[1/\d+\]: \d+ rows in \d+ s", log)
    assert re.search(r"report: \d+ figures \(PNG and PDF\) in \d+ s", log)
    store = probekit.open_store(out / "store")
    assert store.complete and len(store) == 100 * 10 * 2
    ex = store.examples  # each example's tokens, and each clip's seconds
    assert ex["length"].notna().all() and (ex[ex["modality"] == "speech"]["duration"] > 1).all()
    sims = pd.read_csv(out / "results" / "similarities.csv")
    assert {"analysis", "stack", "depth", "lang_a", "lang_b", "modality_a", "modality_b",
            "score", "chance", "ci_low", "ci_high", "kx", "ky", "n", "variance"} <= set(sims)
    assert set(sims["analysis"]) == {"cross_modal", "cross_lingual"}
    # chance-adjusted scores, the interval's method and the control beside every row
    assert {"adjusted", "z", "p_perm", "ci_method", "ci_level", "control_score",
            "control_adjusted", "flags", "row_seed"} <= set(sims)
    np.testing.assert_allclose(sims["adjusted"],
                               (sims["score"] - sims["chance"]) / (1 - sims["chance"]))
    assert sims["control_adjusted"].notna().all() and (sims["control"] == "random_init").all()
    assert not np.allclose(sims["score"], sims["control_score"])  # re-drawn weights
    cm = sims[sims["analysis"] == "cross_modal"]
    assert cm["ci_method"].str.startswith("half-sampling x20 around the score: sampling "
                                          "variability of the statistic").all()
    assert np.allclose((cm["ci_low"] + cm["ci_high"]) / 2, cm["score"])
    assert (cm["ci_level"] == 0.95).all() and cm["ci_low"].notna().all()
    assert set(sims["measure"]) == {"svcca", "linear_cka"} and sims["row_seed"].is_unique
    assert probekit.open_store(out / "control" / "store").complete
    gap = pd.read_csv(out / "results" / "modality_gap.csv")
    assert {"cross_modal", "cross_modal_raw", "cross_modal_control", "gap"} <= set(gap)
    agreement = pd.read_csv(out / "results" / "measure_agreement.csv")
    assert set(agreement["kind"]) == {"layer curves", "language matrices"}
    # curves of 3 blocks (a Spearman of fewer than 5 points cannot differ from chance)
    layer_curves = agreement[agreement["kind"] == "layer curves"]
    assert (layer_curves["points"] < 5).all() and not layer_curves["meaningful"].any()
    # random weights are said to be random, never named by the checkpoint they did not load
    for name in ("group_means.tex", "group_means.md", "claims.tex", "claims.md"):
        text = (out / "results" / name).read_text().replace("\\_", "_")  # LaTeX's escapes
        assert "seamless_m4t_v2-tiny (random weights):" in text, name
        assert "facebook/" not in text, name
    md = (out / "results" / "group_means.md").read_text()
    assert md.count("n counts the languages whose rows") == md.count("\n## ") + md.startswith("## ")
    assert (out / "results" / "length_adaptation.csv").exists()
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert {"modality_gap.png", "length_adaptation.png", "modality_gap_linear_cka.png",
            "measure_agreement.png"} <= set(pngs) and len(pngs) >= 12
    assert "done in" in done.stdout and "cross_modal" in done.stdout
    for csv in (out / "results").glob("*.csv"):  # what made every table, in every table
        stamped = pd.read_csv(csv)
        assert {"model", "checkpoint", "revision", "recipe_hash", "ci_level"} <= set(stamped), csv
        assert (stamped["revision"] == "random weights").all()
        assert (stamped["checkpoint"] == "none (random weights)").all(), csv
        assert (stamped["decoder_target"] == "eng").all(), csv  # data.target_language
    means = pd.read_csv(out / "results" / "group_means.csv")
    assert set(means["group"]) >= {"high", "low", "high~low", "Romance", "Germanic~Romance"}
    assert set(means["grouping"]) == {"resource", "family", "genus", "family_distance"}
    romance = means[(means["grouping"] == "genus") & (means["group"] == "Romance")]
    assert (romance["n_langs"] == 4).all()
    assert {"group_means_cross_modal.png", "group_means_cross_lingual.png",
            "group_means_cross_modal_by_genus.png"} <= set(pngs)
    assert r"\toprule" in (out / "results" / "group_means.tex").read_text()
    assert means["ci_method"].str.startswith("delete-one-language jackknife").all()
    # the paper's findings as contrasts, the recipe's own contrasts, every view's spectrum
    claims = pd.read_csv(out / "results" / "claims.csv")
    assert {"claim", "contrast", "measure", "k", "n", "effect", "ci_low", "ci_high", "p_value",
            "p_adjusted", "control_effect", "control_p_value", "robust",
            "spectrum_effect"} <= set(claims)
    assert set(claims["claim"]) == {"convergence", "speech_spread", "adaptation",
                                    "modality_gap"}
    assert claims["robustness"].str.contains("svcca k=10").all()
    contrasts = pd.read_csv(out / "results" / "contrasts.csv")
    assert set(contrasts["lang"]) == {"(all)", "eng"} and contrasts["p_adjusted"].notna().all()
    assert contrasts["spectrum_effect"].notna().all()
    eng = cm[(cm["lang_a"] == "eng") & (cm["measure"] == "svcca")
             & (cm["stack"] == "speech_encoder~text_encoder")].sort_values("rel_depth")
    trend = contrasts[(contrasts["lang"] == "eng") & (contrasts["measure"] == "svcca")]
    assert abs(trend["effect"].iloc[0] - np.polyfit(eng["rel_depth"], eng["score"], 1)[0]) \
        < 1e-9 and trend["ci_method"].iloc[0] == "paired subsampling over 100 sentences"
    spectra = pd.read_csv(out / "results" / "spectra.csv")
    assert {"participation_ratio", "power_law_alpha", "largest_feature_share",
            "outlier_feature"} <= set(spectra) and len(spectra) == 100
    assert {"claims.png", "spectra.png"} <= set(pngs)
    # the closing summary has a row per measure, analysis, stack, modality and depth: the
    # decoder's speech and text rows are not averaged together
    numbers = re.compile(r".*\s\d+(\s+-?\d+\.\d+){4}$")
    printed = [line for line in done.stdout.splitlines() if numbers.match(line)]
    assert len(printed) == len(sims.groupby(["measure", "analysis", "stack", "modality_a",
                                             "modality_b", "depth"]))


def test_rerun_reuses_the_store_and_the_results(demo_run):
    again = rerun_demo(demo_run, "report.figures=false")  # not in any hash
    assert again.returncode == 0
    assert "already in the store" in again.stderr and "up to date" in again.stderr


@pytest.mark.reference_leg  # the store-level kill -9 tests run on both legs
def test_kill_9_during_extraction_then_rerun_gives_the_same_results(demo_run, tmp_path):
    out, _ = demo_run
    killed = tmp_path / "killed"
    no_control = "analysis.control=null"  # the control's extraction resumes the same way
    proc = subprocess.Popen([sys.executable, "-m", "probekit.run", str(DEMO), "--out",
                             str(killed), "--quiet", "--stage", "extract", no_control], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        shards = killed / "store" / "shards"
        if shards.is_dir() and len(list(shards.glob("*.h5"))) >= 1:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the rerun's store equals the uninterrupted one's (the analysis reads nothing else)
    done = run(DEMO, "--out", killed, "--quiet", "--stage", "extract", no_control)
    assert done.returncode == 0, done.stderr
    a, b = probekit.open_store(out / "store"), probekit.open_store(killed / "store")
    assert b.complete and list(a.examples["id"]) == list(b.examples["id"])
    for layer in a.layers:
        for modality in ("text", "speech"):  # noqa: B007 (the query's @modality)
            ids = list(a.recorded(layer).query("modality == @modality")["id"])
            if ids:
                np.testing.assert_array_equal(a.read(layer, ids=ids), b.read(layer, ids=ids))


@pytest.mark.reference_leg  # the estimate's logic; the current leg runs --dry-run elsewhere
def test_dry_run_estimates_the_time_of_what_the_run_computes(demo_run):
    out, _ = demo_run
    done = run(DEMO, "--dry-run")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "2000 examples = 100 sentences x 10 languages x 2 modalities" in text
    assert "record speech_encoder: 3 layers" in text and "ready:" in text
    probe = re.search(r"time: extraction probe on cpu \(20 text: (\d+) ms/example, 20 speech: "
                      r"(\d+) ms/example; .*\): about .* for 2000 examples, .* with the control",
                      text)
    assert probe and int(probe[2]) > 0, text
    # the counts are the run's: its similarity rows per measure and its adaptation rows (2
    # points x 10 languages, with intervals, as the cross-modal rows), its figures
    sims = pd.read_csv(out / "results" / "similarities.csv")
    rows = re.search(r"analysis of (\d+) rows \((\d+) with 20-draw intervals\) x 2 measure", text)
    assert int(rows[1]) == len(sims) // 2 + 2 * 10
    assert int(rows[2]) == len(sims[sims["analysis"] == "cross_modal"]) // 2 + 2 * 10
    figures = re.search(r"time: (\d+) figures", text)
    assert int(figures[1]) == len(list((out / "figures").glob("*.png")))
    assert re.search(r"time: about [\d.]+ (s|min) in all on this machine", text)
    skipped = run(DEMO, "--dry-run", "--no-probe")
    assert "time: extraction not estimated (--no-probe)" in skipped.stdout
    assert "extraction probe" not in skipped.stdout and "time: analysis" in skipped.stdout
    assert "redrawn over sentences" not in skipped.stdout  # 10 languages: a jackknife
    two = run(DEMO, "--dry-run", "--no-probe", "data.languages=[eng,fra]")
    assert "with 2 language(s) the claims are redrawn over sentences (200 draws of each claim " \
        "row)" in two.stdout, two.stdout + two.stderr


BAD = {
    "record.batch_size=eight": "record.batch_size: expected int",
    "record.batchsize=8": "did you mean recipe.record.batch_size",
    "data.path=missing.tsv": "does not exist",
    "data.languages=[eng,xyz]": "unknown language code 'xyz'",
    "data.languages=[en,fr]": "'en' is ISO 639-1: use eng, 'fr' is ISO 639-1: use fra",
    "data.languages=[eng,tur]": "the data has no sentence in tur (it has cym, deu, eng",
    "data.languages=family:Turkic": "family:Turkic selects no language of this run: the data "
                                    "has none of: azj kaz kir tur uzn",
    "data.max_sentences=3": "the data gives 3 sentences in every language and modality; a "
                            "similarity needs at least 5",
    "analysis.k=30": "analysis.k=30 needs at least 120 sentences (kx + ky <= n/2, with kx = ky = "
                     "k) and the data gives 100: set analysis.k to at most 25",
    "model.spec=seamless_m4t_v3": "did you mean seamless_m4t_v2",
    "data.modalities=[video]": "use text and/or speech",
    "record.pool=median": "is not one of",
    "analysis.cross_modal=[[speech_encoder,llm]]": "each entry is [speech stack, text stack]",
    "model.spec=whisper": "each entry is [speech stack, text stack] from encoder, decoder",
    "analysis.variance=high": "analysis.variance: expected float",
    "data.languages=7": "data.languages: expected a list",
    "data.source=fleurs_local": "data.path:",
    "reportt.figures=true": "did you mean recipe.report",
    ("data.source=fleurs", "data.languages=[eng,xyz]"): "unknown language code 'xyz'",
    ("model.spec=sonar", "data.languages=[eng,yor]"): "SONAR has no speech encoder for 'yor'",
    "analysis.cross_lingual=[text_encodr]": "did you mean 'text_encoder'",
    "analysis.adaptation_points={a: foo.bar}": "'foo.bar' is in no stack",
    "analysis.resource={eng: medium}": "levels are 'high' or 'low'",
    "analysis.groups={family: {eng: IE, fra: IE, frx: Other}}": "unknown language 'frx'; did you",
    "analysis.groups={family: {eng: IE, fra: IE}}": "give at least two groups",
    "analysis.groups={resource: {eng: a, fra: b}}": "other than 'resource'",
    "analysis.groups={family: [eng]}": "analysis.groups.family: expected a mapping",
    "record.shard_size=1.5": "record.shard_size: expected int",
    "model.variant=huge": "model.variant: 'huge' is not one of",
    "analysis.measures=[svcca,cka]": "unknown measure 'cka'",
    "analysis.measure=svcca": "did you mean recipe.analysis.measures",
    "analysis.n_perm=0": "analysis.n_perm: at least 2 permutations",
    "analysis.n_boot=1": "analysis.n_boot: 0 (no intervals) or at least 2",
    "analysis.ci=95": "analysis.ci: the interval's level",
    "analysis.k=0": "analysis.k: kept directions must be at least 1",
    "analysis.control=shuffled": "analysis.control: 'shuffled' is not one of",
    "analysis.depth_alignment=nearest": "analysis.depth_alignment: 'nearest' is not one of",
    "analysis.intervals=[modality_gap]": "analysis.intervals: 'modality_gap' is not one of",
}


@pytest.mark.parametrize("override", BAD)
def test_invalid_recipes_give_one_clear_message(override, tmp_path):
    overrides = override if isinstance(override, tuple) else (override,)
    done = run(DEMO, *overrides, "--out", tmp_path / "out", "--quiet")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert BAD[override] in done.stderr, done.stderr


def demo_with_bad_clip(tmp_path, content):
    """A copy of the demo set whose fra/3.ogg holds ``content``, and a recipe reading it."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data" / "demo", data)
    (data / "audio" / "fra" / "3.ogg").write_bytes(content)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(DEMO.read_text().replace("../data/demo/manifest.tsv",
                                               str(data / "manifest.tsv")))
    return recipe


def test_bad_audio_is_skipped_and_reported(tmp_path):
    recipe = demo_with_bad_clip(tmp_path, b"not audio at all")
    done = run(recipe, "data.max_sentences=20", *SMALL, *THREE, "--out", tmp_path / "out",
               "--quiet")
    assert done.returncode == 0, done.stderr
    assert "skipping fra/speech/3" in done.stderr
    store = probekit.open_store(tmp_path / "out" / "store")
    assert [s["id"] for s in store.skipped] == ["fra/speech/3"]
    sims = pd.read_csv(tmp_path / "out" / "results" / "similarities.csv")
    assert (sims["n"] == 19).all()  # sentence 3 dropped from every language for pairing


@pytest.mark.reference_leg  # probekit's own logic, the same on either stack
def test_fail_fast_stops_at_the_first_bad_clip_and_keeps_what_was_committed(tmp_path):
    recipe = demo_with_bad_clip(tmp_path, b"")
    data = tmp_path / "data"
    args = (recipe, "data.max_sentences=20", *SMALL, *THREE, "record.shard_size=6",
            "record.batch_size=6", "--out", tmp_path / "out", "--quiet", "--stage", "extract")
    done = run(*args, "data.fail_fast=true")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "fra/3.ogg" in done.stderr
    committed = len(probekit.open_store(tmp_path / "out" / "store"))
    assert committed > 0  # the shards written before the bad clip stay
    (data / "audio" / "fra" / "3.ogg").write_bytes(
        (ROOT / "data/demo/audio/fra/3.ogg").read_bytes())
    again = run(*args)
    assert again.returncode == 0, again.stderr
    assert len(probekit.open_store(tmp_path / "out" / "store")) == 20 * 3 * 2


def test_clips_longer_than_the_model_accepts_are_skipped_with_the_reason(tmp_path):
    done = run(DEMO, "data.max_sentences=6", *SMALL, "data.languages=[eng,fra]",
               "model.overrides.options.max_seconds=2.0", "--out", tmp_path / "out", "--quiet",
               "--stage", "extract")
    assert done.returncode == 0, done.stderr
    store = probekit.open_store(tmp_path / "out" / "store")
    skipped = {s["id"]: s["reason"] for s in store.skipped}
    assert skipped and all("longer than the model accepts (2 s, options.max_seconds)" in r
                           for r in skipped.values())
    assert all("/speech/" in i for i in skipped) and len(store) + len(skipped) == 6 * 2 * 2


@pytest.mark.reference_leg  # probekit's own logic, the same on either stack
def test_too_many_directions_for_the_sentences_are_refused_unless_allowed(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    done = run(DEMO, "--out", copy, "--stage", "analyze", "--quiet", "analysis.k=30")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "kx=30 + ky=30 directions for n=100" in done.stderr
    assert "analysis.allow_large_k: true" in done.stderr
    done = run(DEMO, "--out", copy, "--stage", "analyze", "--quiet", "analysis.k=30",
               "analysis.allow_large_k=true", "analysis.n_boot=0", "analysis.control=null",
               "analysis.measures=[svcca]")
    assert done.returncode == 0, done.stderr
    sims = pd.read_csv(copy / "results" / "similarities.csv")
    assert sims["flags"].str.split(";").map(lambda flags: "large_k" in flags).all()


ANALYSIS_ONLY = ("analysis.measures=[svcca]", "analysis.n_boot=0")  # what z-scoring changes


@pytest.mark.reference_leg  # probekit's own logic, the same on either stack
def test_zscore_follows_the_spec_per_stack_unless_the_recipe_forces_it(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    done = run(DEMO, "--out", copy, "--stage", "analyze", "--quiet",
               "model.overrides.zscore=[text_decoder]", "analysis.control=null", *ANALYSIS_ONLY)
    assert done.returncode == 0, done.stderr
    sims = pd.read_csv(copy / "results" / "similarities.csv")
    z = sims.groupby("stack")["zscore"].agg(set).to_dict()
    assert z["text_decoder"] == {True} and z["text_decoder~text_decoder"] == {True}
    assert z["speech_encoder"] == {False} and z["speech_encoder~text_encoder"] == {False}
    before = pd.read_csv(out / "results" / "similarities.csv")
    assert (before["zscore"] == False).all()  # noqa: E712 (the demo's spec z-scores nothing)
    mine = sims[sims["stack"] == "text_decoder"]["score"].to_numpy()
    theirs = before[(before["stack"] == "text_decoder")
                    & (before["measure"] == "svcca")]["score"].to_numpy()
    assert not np.allclose(mine, theirs)
    done = run(DEMO, "--out", copy, "--stage", "analyze", "--quiet", "analysis.zscore=true",
               "analysis.control=null", *ANALYSIS_ONLY)
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(copy / "results" / "similarities.csv")["zscore"].all()


def test_run_log_keeps_other_libraries_out_and_records_an_interruption(tmp_path, monkeypatch,
                                                                        capsys, caplog):
    """run.log holds probekit's lines only (matplotlib's "generated new fontManager" ended it),
    and a Ctrl-C is written there as well as on the screen."""
    import logging

    from probekit.pipeline import preflight
    from probekit.run import main

    def interrupted(*args, **kwargs):
        logging.getLogger("matplotlib.font_manager").info("generated new fontManager")
        logging.getLogger("probekit.analysis").info("a line of probekit's")
        raise KeyboardInterrupt

    monkeypatch.setattr(preflight, "preflight", interrupted)
    caplog.set_level(logging.INFO)
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        assert main(["demo", "--out", str(tmp_path / "out"), "--quiet"]) == 130
    finally:
        for h in set(root.handlers) - set(handlers):
            root.removeHandler(h)
            h.close()
    assert "interrupted: run the same command again to resume" in capsys.readouterr().err
    log = (tmp_path / "out" / "run.log").read_text()
    assert log.splitlines()[0].split(" INFO ")[1].startswith("start: python -m probekit.run demo")
    assert "a line of probekit's" in log and "fontManager" not in log
    assert log.splitlines()[-1].endswith("interrupted: run the same command again to resume")


def test_the_closing_summary_names_a_control_only_when_there_is_one(tmp_path):
    from probekit.pipeline.figures import summary

    (tmp_path / "results").mkdir()
    rows = pd.DataFrame({"measure": "svcca", "analysis": "cross_modal", "stack": "enc",
                         "modality_a": "speech", "modality_b": "text", "depth": [0.0, 1.0],
                         "score": [0.5, 0.6], "chance": 0.1, "adjusted": [0.44, 0.55]})
    rows.to_csv(tmp_path / "results" / "similarities.csv", index=False)
    assert "control" not in summary(tmp_path)
    rows.assign(control_adjusted=0.01).to_csv(tmp_path / "results" / "similarities.csv",
                                              index=False)
    assert "control: the same recipe on random weights" in summary(tmp_path)
