"""Bringing a checkpoint: ``model.checkpoint=`` (and ``--checkpoint``) with a CTranslate2 Whisper
folder of another size than the spec's release: its layers listed from model.bin's header, its
sizes read (the spec's disagreeing ``sizes`` warned of), its name in labels and provenance."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import toy_tokenizers as toys

ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 (the converter) is not "
                                  "installed; it is pinned in requirements/*.lock")

from probekit.layers import main as layers  # noqa: E402
from probekit.run import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def my_whisper(tmp_path_factory):
    """A Whisper of 3 encoder and 2 decoder blocks of width 16 (the spec's release has 6 and 6
    of 512), with a real WhisperTokenizer, converted by ctranslate2 into ``my-whisper``."""
    from ctranslate2.converters import TransformersConverter
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    folder = tmp_path_factory.mktemp("hf")
    tok = toys.whisper_tokenizer(folder)
    gen = toys.whisper_generation_config(tok)
    config = WhisperConfig(
        vocab_size=len(tok), num_mel_bins=80, d_model=16, encoder_layers=3, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=gen.decoder_start_token_id, pad_token_id=gen.pad_token_id,
        bos_token_id=gen.bos_token_id, eos_token_id=gen.eos_token_id)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = gen
    model.save_pretrained(folder / "hf")
    tok.save_pretrained(folder / "hf")
    out = tmp_path_factory.mktemp("ct2") / "my-whisper"
    TransformersConverter(str(folder / "hf")).convert(str(out), quantization="float32")
    return out


def test_layers_of_a_ctranslate2_folder(my_whisper, capsys):
    assert layers(["whisper_base", "--checkpoint", str(my_whisper)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:-1]]
    assert [r[0] for r in rows] == ["encoder"] * 3 + ["decoder"] * 2
    assert {r[4] for r in rows} == {"16"}


def test_a_recipe_runs_on_the_checkpoint_it_brings(my_whisper, tmp_path, capsys):
    recipe = str(ROOT / "recipes" / "whisper_base_demo.yaml")
    small = ["data.max_sentences=12", "analysis.k=3", "analysis.n_perm=4", "analysis.n_boot=0",
             "analysis.control=null", "report.figures=false"]
    assert main([recipe, "--dry-run", "--checkpoint", str(my_whisper), *small]) == 0
    out = capsys.readouterr().out
    assert "model whisper_base:my-whisper" in out
    assert "sizes: read from" in out and "encoder 3 x 16, decoder 2 x 16" in out
    assert "the spec's sizes.encoder (6 x 512) disagree with the checkpoint's (3 x 16)" in out
    assert "record encoder: 3 layers x 16" in out
    assert "fidelity (whisper_base, tested)" not in out  # not the release the tests are about
    assert "batch independence measured now on 2 speech examples" in out
    assert "ready: everything this recipe needs is available here" in out
    run = tmp_path / "out"
    assert main([recipe, "--out", str(run), "--quiet", f"model.checkpoint={my_whisper}",
                 *small]) == 0
    store = json.loads((run / "store" / "store.json").read_text())["provenance"]
    assert store["label"] == "whisper_base:my-whisper"
    assert store["checkpoint"] == str(my_whisper)
    rows = pd.read_csv(run / "results" / "similarities.csv")
    assert set(rows["model"]) == {"whisper_base:my-whisper"}  # figure titles are made from it
    assert set(rows["checkpoint"]) == {str(my_whisper)}
    assert set(rows["layer_a"]) == {"decoder.layers.0", "decoder.layers.1"}  # its 2 blocks
