"""The examples run end to end (executed, not imported)."""

import subprocess
import sys
from pathlib import Path

import numpy as np

import probekit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script, *args):
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_capture_then_notebook_example(tmp_path):
    out = run("capture_tiny_seamless.py", "--out", tmp_path)
    assert "192 examples" in out
    store = probekit.open_store(tmp_path / "store")
    assert store.layers == [f"text_encoder.layers.{i}" for i in range(4)] + [
        f"text_decoder.layers.{i}" for i in range(4)]
    first = store.read("text_decoder.layers.3")
    again = run("capture_tiny_seamless.py", "--out", tmp_path)  # everything committed: no rework
    assert "192 examples" in again
    np.testing.assert_array_equal(probekit.open_store(tmp_path / "store").read(
        "text_decoder.layers.3"), first)

    png = tmp_path / "eng_fra.png"
    report = run("notebook_two_languages.py", tmp_path / "store", "--png", png)
    assert png.stat().st_size > 10_000
    rows = [line.split() for line in report.splitlines() if line.startswith("text_")]
    assert len(rows) == 8
    for row in rows:  # far above chance, for SVCCA and for cosine
        svcca, chance = float(row[2]), float(row[4].strip("(),"))
        cos_same, cos_other = float(row[-3]), float(row[-1])
        assert svcca > chance + 0.1 and cos_same > cos_other + 0.3


def test_new_model_recipe_example(tmp_path):
    out = run("new_model_recipe.py", "--out", tmp_path, "--sentences", 48)
    assert "done in" in out
    import pandas as pd
    sims = pd.read_csv(tmp_path / "run" / "results" / "similarities.csv")
    lingual = sims[sims["analysis"] == "cross_lingual"]
    assert set(lingual["stack"]) == {"encoder", "decoder"}
    # encoder on speech (3 layers), decoder on speech and on text (2 layers each) x 6 pairs
    assert len(lingual) == (3 + 2 + 2) * 6
    assert set(lingual[lingual["stack"] == "encoder"]["modality_a"]) == {"speech"}
    modal = sims[sims["analysis"] == "cross_modal"]
    assert set(modal["stack"]) == {"decoder~decoder"} and len(modal) == 2 * 4  # layers x langs
