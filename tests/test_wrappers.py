"""Model wrappers on tiny random models of the real classes: stacks, firing, lengths, pooling."""

import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from probekit.batch import capture
from probekit.wrappers import ModelLoadError, SpecError, load_model, load_spec

DURATIONS = [1.0, 2.3, 0.6, 1.7]


def speech_batch(durations=DURATIONS, seed=0):
    rng = np.random.default_rng(seed)
    return [{"id": f"s{i}", "modality": "speech", "lang": "eng",
             "text": "a short sentence " * (i + 1),
             "audio": 0.1 * rng.standard_normal(int(16000 * d)).astype(np.float32)}
            for i, d in enumerate(durations)]


def text_batch():
    return [dict(ex, modality="text", id=f"t{i}") for i, ex in enumerate(speech_batch())]


@pytest.fixture(scope="module", params=["seamless_m4t_v2", "seamless_m4t_medium"])
def seamless(request):
    return load_model(request.param, variant="tiny")


def test_block_counts_match_the_architecture(seamless):
    cfg = seamless.model.config
    assert len(seamless.stacks["speech_encoder"]) == cfg.speech_encoder_layers
    assert len(seamless.stacks["text_encoder"]) == cfg.encoder_layers
    assert len(seamless.stacks["text_decoder"]) == cfg.decoder_layers
    assert seamless.stacks["adaptor"] == (["speech_encoder.adapter:input"]
                                          + [f"speech_encoder.adapter.layers.{i}"
                                             for i in range(cfg.num_adapter_layers)]
                                          + ["speech_encoder.inner_layer_norm"])
    assert not seamless.model.training and not any(p.requires_grad
                                                   for p in seamless.model.parameters())


@pytest.mark.parametrize("modality", ["speech", "text"])
def test_every_block_fires_once_and_lengths_are_the_real_lengths(seamless, modality):
    batch = speech_batch() if modality == "speech" else text_batch()
    rec, inputs = capture(seamless, batch, pool="none")
    lengths = inputs.lengths
    ran = {n for n, c in rec.calls.items() if c == 1}
    expected = set(seamless.layers(["speech_encoder", "adaptor", "text_decoder"]
                                   if modality == "speech" else ["text_encoder", "text_decoder"]))
    assert ran == expected and all(c in (0, 1) for c in rec.calls.values())
    # each example alone, unpadded: its output length is the real length
    for i, ex in enumerate(batch):
        alone, _ = capture(seamless, [ex], pool="none", require_lengths=False)
        for name in expected:
            assert rec[name][i].shape[0] == alone[name][0].shape[0], (name, i)
    if modality == "speech":
        assert lengths["adaptor"].tolist() == [int(n) // 8 + 1 for n in lengths["speech_encoder"]]


def test_pooled_values_equal_an_independent_masked_mean(seamless):
    batch = speech_batch(seed=1)
    raw = {}
    hooks = [seamless.model.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: raw.__setitem__(n, (o[0] if isinstance(o, tuple) else o).double()))
        for n in seamless.layers(["speech_encoder", "text_decoder"])]
    try:
        rec, inputs = capture(seamless, batch, ["speech_encoder", "text_decoder"], pool="mean")
        lengths = inputs.lengths
    finally:
        for h in hooks:
            h.remove()
    for name, out in raw.items():
        stack = "speech_encoder" if name.startswith("speech") else "text_decoder"
        for b, n in enumerate(lengths[stack].tolist()):
            ref = out[b, :n].mean(0)
            torch.testing.assert_close(rec[name][b].double(), ref, rtol=1e-5, atol=1e-6)


def test_generic_wrapper_whisper_from_yaml_alone():
    whisper = load_model("whisper", variant="tiny")
    cfg = whisper.model.config
    assert len(whisper.stacks["encoder"]) == cfg.encoder_layers
    assert len(whisper.stacks["decoder"]) == cfg.decoder_layers
    batch = speech_batch()
    rec, inputs = capture(whisper, batch, pool="none")
    lengths = inputs.lengths
    assert all(c == 1 for c in rec.calls.values())
    # 100 mel frames per second, halved by the encoder's stride-2 convolution
    assert lengths["encoder"].tolist() == [int(np.ceil(round(d * 100) / 2)) for d in DURATIONS]
    assert [t.shape[0] for t in rec["encoder.layers.1"]] == lengths["encoder"].tolist()
    shapes = []
    hook = whisper.model.encoder.layers[0].register_forward_hook(
        lambda m, i, o: shapes.append(tuple((o[0] if isinstance(o, tuple) else o).shape)))
    try:
        capture(whisper, batch, pool="mean")
    finally:
        hook.remove()
    assert shapes == [(len(batch), cfg.max_source_positions, cfg.d_model)]  # padded to 30 s


def test_real_checkpoints_fail_offline_with_an_actionable_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for spec in ("seamless_m4t_v2", "whisper"):
        t0 = time.time()
        with pytest.raises(ModelLoadError) as err:
            load_model(spec)
        msg = str(err.value)
        assert load_spec(spec).checkpoint in msg and "model.checkpoint=/path" in msg
        assert time.time() - t0 < 30


def test_spec_errors_name_the_fix(tmp_path):
    with pytest.raises(SpecError, match="did you mean seamless_m4t_v2"):
        load_spec("seamless_m4t_v3")
    bad = tmp_path / "m.yaml"
    bad.write_text("wrapper: hf\ncheckpoint: x\nmodel_class: WhisperModel\nstack: {}\n")
    with pytest.raises(SpecError, match="unknown field 'stack'; did you mean 'stacks'"):
        load_spec(bad)


def test_layers_command_lists_hook_points():
    out = subprocess.run([sys.executable, "-m", "probekit.layers", "seamless_m4t_v2",
                          "--variant", "tiny"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "speech_encoder.adapter.layers.0" in out.stdout and "sub-sampling" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "probekit.layers", "nope"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "no model spec" in bad.stderr


def test_load_time_self_check_catches_wrong_stacks():
    from probekit.errors import RecordingError

    stacks = dict(load_spec("seamless_m4t_v2").stacks)
    with pytest.raises(RecordingError, match="hooks 1 blocks but the architecture has 3"):
        load_model("seamless_m4t_v2", variant="tiny",
                   stacks={**stacks, "speech_encoder": ["speech_encoder.encoder.layers.0"]})
    modalities = load_spec("seamless_m4t_v2").modalities
    with pytest.raises(SpecError, match="stack.s. t2u run on no modality"):
        load_model("seamless_m4t_v2", variant="tiny",
                   stacks={**stacks, "t2u": ["t2u_model.model.encoder.layers.*"]})
    with pytest.raises(RecordingError, match="never ran on a probe text example: t2u_model"):
        load_model("seamless_m4t_v2", variant="tiny",
                   stacks={**stacks, "t2u": ["t2u_model.model.encoder.layers.*"]},
                   modalities={**modalities, "text": modalities["text"] + ["t2u"]})
    # a modality that runs a stack its spec entry does not list
    with pytest.raises(RecordingError, match="a text example runs text_decoder.layers.0"):
        load_model("seamless_m4t_v2", variant="tiny",
                   modalities={**modalities, "text": ["text_encoder"],
                               "speech": modalities["speech"]})


def test_routes_must_cover_the_modalities_and_speech_needs_the_encoder():
    from probekit.wrappers.hf import routes_of

    spec = load_spec("whisper")
    assert routes_of(spec) == {"speech": "encoder+decoder", "text": "decoder"}
    with pytest.raises(SpecError, match="speech enters through the encoder"):
        routes_of(load_spec("whisper", options={"routes": {"speech": "decoder",
                                                           "text": "decoder"}}))
    with pytest.raises(SpecError, match="give a route for each"):
        routes_of(load_spec("whisper", options={"routes": {"speech": "encoder+decoder"}}))
    with pytest.raises(SpecError, match="text_format: 'gpt' is not one of"):
        routes_of(load_spec("whisper", options={"text_format": "gpt"}))
