"""Bad input: values refused before anything loads, output folders checked before anything is
written, and bad examples skipped with their reason instead of stopping the run."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import probekit
from probekit.run import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "recipes" / "demo.yaml"
FAST = ("analysis.k=1", "analysis.control=null", "--stage", "extract", "--quiet")


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "probekit.run", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


REFUSED = {
    "record.batch_size=-3": "record.batch_size: at least 1; got -3",
    "record.batch_size=0": "record.batch_size: at least 1; got 0",
    "record.shard_size=0": "record.shard_size: at least 1; got 0",
    "data.max_sentences=-5": "data.max_sentences: at least 1, or null",
    "analysis.n_perm=-1": "analysis.n_perm: at least 2 permutations",
    "analysis.measure=nonsense": "did you mean recipe.analysis.measures",
    "analysis.measures=[nonsense]": "unknown measure 'nonsense'",
    "analysis.variance=2.5": "analysis.variance: a fraction of variance in (0, 1]",
    "model.overrides.options.max_seconds=abc": "options.max_seconds: expected float, "
                                               "got 'abc'",
    "model.overrides.options.max_secs=20": "did you mean options.max_seconds?",
    "model.overrides.options.min_seconds=-1": "options.min_seconds: must be positive",
    "model.overrides.options.lora_r=8": "options.lora_r: unknown key",
    "name=../../..": "name: '../../..' names the output folder",
    "data.languages=[eng,eng]": "data.languages: eng listed twice",
}


@pytest.mark.parametrize("override", REFUSED)
def test_bad_values_are_refused_before_anything_is_written_or_loaded(override, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(DEMO), override, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert REFUSED[override] in err and "Traceback" not in err, err
    assert not out.exists()  # refused before the output folder (and so before any model)


def test_an_output_folder_with_the_users_files_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    assert main([str(DEMO), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds 1 item(s) a probekit run does not make (chapter1.tex)" in err
    assert sorted(os.listdir(out)) == ["chapter1.tex"]  # no recipe.yaml, no run.log
    assert (out / "chapter1.tex").read_text() == "precious"


def test_out_root_and_unwritable_folders_are_refused_without_writing(tmp_path, capsys):
    before = set(os.listdir("/"))
    assert main([str(DEMO), "--out", "/", "--quiet"]) == 2
    assert "output folder / holds" in capsys.readouterr().err
    assert set(os.listdir("/")) == before
    for out, message in ((Path("/proc/probekit-out"), "/proc"),  # root may pass os.access
                         (tmp_path / "file.txt" / "run", "file.txt is not a writable folder")):
        (tmp_path / "file.txt").write_text("keep")
        assert main([str(DEMO), "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and "choose a writable folder with --out" in err, err
        assert "Traceback" not in err
    assert (tmp_path / "file.txt").read_text() == "keep"


@pytest.mark.reference_leg  # probekit's own logic, the same on either stack
def test_a_store_of_another_recipe_is_refused_before_recipe_yaml_and_run_log_change(tmp_path):
    out = tmp_path / "out"
    first = run(DEMO, "data.max_sentences=3", "data.languages=[eng,fra]", *FAST, "--out", out)
    assert first.returncode == 0, first.stderr
    kept = {name: (out / name).read_bytes() for name in ("recipe.yaml", "run.log")}
    other = run(DEMO, "data.max_sentences=4", "data.languages=[eng,fra]", *FAST, "--out", out)
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert "was made by recipe" in other.stderr and "nothing was written" in other.stderr
    assert {name: (out / name).read_bytes() for name in kept} == kept
    # --overwrite always starts afresh, even with the same recipe
    again = run(DEMO, "data.max_sentences=3", "data.languages=[eng,fra]", *FAST, "--out", out,
                "--overwrite")
    assert again.returncode == 0 and "overwriting store" in again.stderr, again.stderr
    assert "already in the store" not in again.stderr
    assert len(probekit.open_store(out / "store")) == 3 * 2 * 2


def bad_data(tmp_path):
    """The demo's eng and fra rows of five sentences, plus sentences whose clips or texts are
    bad in every way the campaign found (each row's audio path is absolute)."""
    rows = ["sentence\tlang\ttext\taudio"]
    for s in range(1, 6):
        for lang in ("eng", "fra"):
            text = next(line.split("\t")[2] for line in
                        (ROOT / "data/demo/manifest.tsv").read_text().splitlines()
                        if line.startswith(f"{s}\t{lang}\t"))
            rows.append(f"{s}\t{lang}\t{text}\t{ROOT}/data/demo/audio/{lang}/{s}.ogg")
    clips = tmp_path / "clips"
    clips.mkdir()
    rng = np.random.default_rng(0)
    soundfile.write(clips / "5ms.wav", 0.1 * rng.standard_normal(80), 16000)
    nan = 0.1 * rng.standard_normal(16000)
    nan[100] = np.nan
    soundfile.write(clips / "nan.wav", nan, 16000, subtype="FLOAT")
    os.mkfifo(clips / "fifo.wav")
    os.symlink(clips / "loop-b.wav", clips / "loop-a.wav")
    os.symlink(clips / "loop-a.wav", clips / "loop-b.wav")
    good = f"{ROOT}/data/demo/audio/eng/1.ogg"
    rows += [f"short\teng\tA short clip.\t{clips}/5ms.wav", f"short\tfra\tCourt.\t{good}",
             f"fifo\teng\tA pipe.\t{good}", f"fifo\tfra\tUn tube.\t{clips}/fifo.wav",
             f"loop\teng\tA loop.\t{clips}/loop-a.wav", f"loop\tfra\tUne boucle.\t{good}",
             f"nan\teng\tNot a number.\t{good}", f"nan\tfra\tPas un nombre.\t{clips}/nan.wav",
             f"long\teng\t{'word ' * 20000}\t{good}", f"long\tfra\tLong.\t{good}"]
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def test_bad_examples_are_skipped_with_their_reason_and_the_rerun_goes_on(tmp_path):
    manifest = bad_data(tmp_path)
    out = tmp_path / "out"
    args = (DEMO, f"data.path={manifest}", "data.languages=[eng,fra]", "record.batch_size=4",
            *FAST, "--out", out)
    done = run(*args, timeout=240)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    store = probekit.open_store(out / "store", verify=True)
    reasons = {s["id"]: s["reason"] for s in store.skipped}
    assert "shorter than the model's minimum (0.1 s, options.min_seconds)" in reasons[
        "eng/speech/short"]
    assert "is not a regular file" in reasons["fra/speech/fifo"]
    assert "Too many levels of symbolic links" in reasons["eng/speech/loop"]
    assert "NaN or infinite samples" in reasons["fra/speech/nan"]
    assert "text of 100000 tokens (100000 characters) is longer than the model takes (1024, " \
           "options.max_text_tokens)" in reasons["eng/text/long"]
    # the decoder of every speech example of that sentence reads the English text as its target
    assert "target text of 100000 tokens" in reasons["fra/speech/long"]
    assert len(store) + len(reasons) == 10 * 2 * 2 and store.complete
    # audio paths are stored relative to the data's folder, which is recorded once
    assert store.provenance["data_root"] == str(tmp_path)
    paths = store.select(modality="speech")["audio_path"]
    assert not any(p.startswith("/") for p in paths) and "manifest" not in store.provenance
    again = run(*args)
    assert again.returncode == 0 and "already in the store" in again.stderr, again.stderr


def test_an_example_that_breaks_the_model_costs_only_itself(tmp_path):
    # with no minimum duration, a 5 ms clip reaches the feature extractor, which fails on it
    # (ValueError: negative dimensions); its batch is rerun example by example
    manifest = bad_data(tmp_path)
    out = tmp_path / "out"
    args = (DEMO, f"data.path={manifest}", "data.languages=[eng,fra]", "record.batch_size=4",
            "model.overrides.options.min_seconds=0.0001", *FAST, "--out", out)
    done = run(*args, timeout=240)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "running them one by one" in done.stderr
    reasons = {s["id"]: s["reason"] for s in probekit.open_store(out / "store").skipped}
    assert reasons["eng/speech/short"].startswith("the model failed on it alone: ValueError")
    assert len(probekit.open_store(out / "store")) == 10 * 2 * 2 - len(reasons)
    assert len(reasons) == 8  # and nothing else was lost with its batch


@pytest.mark.reference_leg  # probekit's own logic, the same on either stack
def test_a_model_failing_on_every_example_stops_the_run_and_records_no_skips(tmp_path):
    rows = ["sentence\tlang\ttext\taudio"]
    clip = tmp_path / "5ms.wav"
    soundfile.write(clip, 0.1 * np.random.default_rng(0).standard_normal(80), 16000)
    rows += [f"{s}\teng\tSentence {s}.\t{clip}" for s in range(12)]
    (tmp_path / "m.tsv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    args = (DEMO, f"data.path={tmp_path / 'm.tsv'}", "data.languages=[eng]",
            "analysis.cross_lingual=[]", *FAST, "--out", out)
    done = run(*args, "model.overrides.options.min_seconds=0.0001")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "10 examples in a row failed alone" in done.stderr
    assert "not recorded as skipped" in done.stderr
    assert not probekit.open_store(out / "store").skipped
    done = run(*args, "--overwrite")  # with the minimum back, skipped before the model
    assert done.returncode == 0, done.stderr
    assert len(probekit.open_store(out / "store").skipped) == 12


def test_a_long_clip_is_refused_by_its_header_without_decoding_it(tmp_path, monkeypatch):
    from probekit.data import DataError, load_audio

    clip = tmp_path / "long.wav"
    soundfile.write(clip, 0.1 * np.random.default_rng(0).standard_normal(16000 * 5), 16000)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the clip was decoded")

    monkeypatch.setattr(soundfile, "read", no_decoding)
    with pytest.raises(DataError, match=r"lasts 5\.0 s by its header, longer than the model "
                                        r"accepts \(3 s, options\.max_seconds\)"):
        load_audio(str(clip), max_seconds=3)


def test_a_truncated_clip_is_used_as_far_as_it_goes_and_said(tmp_path, caplog):
    """A WAV cut in half: its half is stored, with the note in the example's ``audio_note``
    column and a warning; the whole clips of the other examples carry no note."""
    import logging

    rng = np.random.default_rng(0)
    soundfile.write(tmp_path / "whole.wav", 0.1 * rng.standard_normal(16000 * 2), 16000,
                    subtype="PCM_16")
    data = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:len(data) // 2])
    rows = ["sentence\tlang\ttext\taudio"]
    for s in range(1, 6):
        rows.append(f"{s}\teng\tSentence number {s}.\t{ROOT}/data/demo/audio/eng/{s}.ogg")
    rows.append(f"6\teng\tA cut clip.\t{tmp_path / 'cut.wav'}")
    (tmp_path / "m.tsv").write_text("\n".join(rows) + "\n")
    caplog.set_level(logging.INFO)
    out = tmp_path / "out"
    assert main([str(DEMO), f"data.path={tmp_path / 'm.tsv'}", "data.languages=[eng]",
                 "data.modalities=[speech]", "analysis.cross_lingual=[]", "analysis.cross_modal=[]",
                 "analysis.adaptation_points={}", "analysis.contrasts=[]", *FAST,
                 "--out", str(out)]) == 0
    store = probekit.open_store(out / "store")
    table = store.examples.set_index("id")
    assert len(store) == 6 and not store.skipped
    assert abs(table.loc["eng/speech/6", "duration"] - 1.0) < 0.01
    note = table.loc["eng/speech/6", "audio_note"]
    assert "ends before its header says (31,978 of 64,000 bytes of samples)" in note
    assert "may be truncated" in note and note in caplog.text
    assert not any(isinstance(v, str) and v for v in table.drop("eng/speech/6")["audio_note"])
