"""SALMONN built in probekit: tiny forward passes, spans, and the released checkpoints' layouts."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from probekit.batch import capture
from probekit.interop.salmonn import load_beats, load_salmonn_checkpoint, map_key
from probekit.nets.beats import BEATs, BEATsConfig
from probekit.wrappers import ModelLoadError, load_model
from probekit.wrappers.salmonn import WINDOW

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DURATIONS = [1.0, 2.2, 0.7]


def released_keys(name):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} (the released key lists in shared/) is not beside this checkout")
    return [(line.split("\t")[0], json_shape(line.split("\t")[1])) for line in
            path.read_text().splitlines() if line.strip()]


def json_shape(text):
    return tuple(int(x) for x in text.strip().strip("[]").split(",") if x)


@pytest.fixture(scope="module")
def salmonn():
    return load_model("salmonn", variant="tiny")


def speech_batch(seed=0):
    rng = np.random.default_rng(seed)
    return [{"id": str(i), "modality": "speech", "lang": "eng", "text": "a few words " * (i + 1),
             "audio": 0.1 * rng.standard_normal(int(16000 * d)).astype(np.float32)}
            for i, d in enumerate(DURATIONS)]


def raw_outputs(wrapper, layers):
    raw = {}
    hooks = [wrapper.model.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: raw.__setitem__(n, o[0] if isinstance(o, tuple) else o))
        for n in layers]
    return raw, hooks


def test_stacks_match_the_tiny_configs(salmonn):
    tiny = salmonn.spec.tiny
    assert len(salmonn.stacks["whisper"]) == tiny["whisper"]["encoder_layers"]
    assert len(salmonn.stacks["beats"]) == tiny["beats"]["encoder_layers"]
    assert len(salmonn.stacks["qformer"]) == tiny["qformer"]["num_hidden_layers"]
    assert len(salmonn.stacks["llm"]) == tiny["llm"]["num_hidden_layers"]


def test_speech_pass_fires_every_block_once_with_real_lengths(salmonn):
    layers = salmonn.layers()
    raw, hooks = raw_outputs(salmonn, layers)
    try:
        rec, inputs = capture(salmonn, speech_batch(), pool="none")
        lengths = inputs.lengths
    finally:
        for h in hooks:
            h.remove()
    assert rec.calls == {n: 1 for n in layers}
    whisper = raw["whisper.layers.0"]
    assert whisper.shape[1] == 1500  # Whisper always sees 30 s
    # clips under 1 s are padded with silence to 1 s, as the release does
    assert lengths["whisper"].tolist() == [int(np.ceil(round(max(d, 1.0) * 100) / 2))
                                           for d in DURATIONS]
    assert raw["beats.encoder.layers.0"].shape[1] == int(lengths["beats"].max())  # longest fills
    assert raw["qformer.encoder.layer.0"].shape[:2] == (3 * (1500 // WINDOW), 1)  # B x 88 windows
    windows = [int(np.ceil(n / WINDOW)) for n in lengths["whisper"].tolist()]
    assert lengths["qformer"].tolist() == windows == lengths["llm"].tolist()
    # the LLM span is exactly the speech positions that hold real audio
    llm = raw["llm.base_model.model.model.layers.1"]
    head = 1 + len(b"USER: <Speech>")  # BOS + byte tokens of the text before <SpeechHere>
    for i, n in enumerate(windows):
        torch.testing.assert_close(rec["llm.base_model.model.model.layers.1"][i],
                                   llm[i, head:head + n], rtol=0, atol=0)
        q = raw["qformer.encoder.layer.1"].reshape(3, 1500 // WINDOW, -1)
        torch.testing.assert_close(rec["qformer.encoder.layer.1"][i], q[i, :n], rtol=0, atol=0)


def test_text_pass_pools_over_the_transcript_only(salmonn):
    batch = [dict(ex, modality="text") for ex in speech_batch()]
    raw, hooks = raw_outputs(salmonn, ["llm.base_model.model.model.layers.0"])
    try:
        rec, inputs = capture(salmonn, batch, ["llm"], pool="mean")
        lengths = inputs.lengths
    finally:
        for h in hooks:
            h.remove()
    head = 1 + len(b"USER: <Speech>")
    out = raw["llm.base_model.model.model.layers.0"].double()
    for i, ex in enumerate(batch):
        n = len(ex["text"].encode())
        assert lengths["llm"][i] == n
        torch.testing.assert_close(rec["llm.base_model.model.model.layers.0"][i].double(),
                                   out[i, head:head + n].mean(0), rtol=1e-5, atol=1e-6)


def test_every_released_salmonn_key_is_mapped_or_ignored(salmonn):
    keys = released_keys("salmonn_ckpt_keys.txt") + released_keys(
        "salmonn_ckpt_keys_probable_extra.txt")
    own = {re.sub(r"\.\d+\.", ".N.", k) for k in salmonn.model.state_dict()}
    for key, _shape in keys:
        target = map_key(key)
        if target is not None:
            assert re.sub(r"\.\d+\.", ".N.", target) in own, (key, target)
    with pytest.raises(ModelLoadError, match="neither mapped nor ignored"):
        map_key("speech_Qformer.cls.predictions.bias")


def test_a_tiny_checkpoint_in_the_released_naming_loads(salmonn):
    keys = [k for k, _ in released_keys("salmonn_ckpt_keys.txt")]
    layers = {"llama_model": salmonn.spec.tiny["llm"]["num_hidden_layers"],
              "speech_Qformer": salmonn.spec.tiny["qformer"]["num_hidden_layers"],
              "beats": salmonn.spec.tiny["beats"]["encoder_layers"]}
    own = salmonn.model.state_dict()
    state = {}
    for key in keys:
        index = re.search(r"\.(\d+)\.", key)
        if index and int(index.group(1)) >= layers[key.split(".")[0]]:
            continue  # the tiny model has fewer layers
        target = map_key(key)
        state[key] = torch.randn_like(own[target].float()) if target else torch.zeros(1)
    ignored = load_salmonn_checkpoint(salmonn.model, {"model": state})
    assert ignored and all("relative_attention_bias" in k or "position_ids" in k for k in ignored)
    after = salmonn.model.state_dict()
    for key, value in state.items():
        if map_key(key):
            assert torch.equal(after[map_key(key)].float(), value), key


def test_beats_matches_the_released_layout_and_loads_strictly(tmp_path):
    expected = dict(released_keys("beats_ckpt_keys.txt"))
    full = BEATs(BEATsConfig()).state_dict()
    assert {k: tuple(v.shape) for k, v in full.items()} == expected
    cfg = BEATsConfig(embed_dim=16, encoder_layers=2, encoder_embed_dim=16,
                      encoder_ffn_embed_dim=32, encoder_attention_heads=2, conv_pos=8,
                      conv_pos_groups=2, predictor_class=5)
    donor = BEATs(cfg)
    path = tmp_path / "beats.pt"
    released_cfg = {"input_patch_size": 16, "embed_dim": 16, "encoder_layers": 2,
                    "encoder_embed_dim": 16, "encoder_ffn_embed_dim": 32,
                    "encoder_attention_heads": 2, "conv_pos": 8, "conv_pos_groups": 2,
                    "finetuned_model": True, "predictor_class": 5, "layer_norm_first": False,
                    "relative_position_embedding": True, "gru_rel_pos": True, "deep_norm": True,
                    "max_distance": 800, "dropout": 0.0}
    torch.save({"cfg": released_cfg, "model": donor.state_dict(), "label_dict": {}}, path)
    loaded = load_beats(str(path))
    for key, value in donor.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    torch.save({"cfg": dict(released_cfg, encoder_layers=3), "model": donor.state_dict()}, path)
    with pytest.raises(RuntimeError, match="Missing key"):  # strict: nothing silently skipped
        load_beats(str(path))


def test_real_checkpoints_fail_offline_with_an_actionable_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="openai/whisper-large-v2"):
        load_model("salmonn")


class _Payload:
    """Pickled, it runs a shell command when loaded with weights_only=False."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"cfg": {}, "model": {}, "extra": _Payload(marker)}, path)
    with pytest.raises(ModelLoadError, match="holds Python objects besides tensors.*weights_only"):
        load_beats(str(path))
    with pytest.raises(ModelLoadError, match="SALMONN checkpoint .*evil.pth holds Python objects"):
        load_salmonn_checkpoint(None, str(path))
    assert not marker.exists()
