"""Fidelity: an example's activations do not depend on its batch, half precision runs and agrees
with float32, and each family's known deviations from the released code are the ones documented.

Every shipped spec (tiny variant) runs clips whose lengths hit every remainder of each stack's
stride in 10 ms frames (its wrapper's ``STRIDE_PERIOD``), alone and in a padded batch.
"""

import importlib.util

import numpy as np
import pytest
import torch

from probekit.batch import capture
from probekit.errors import ProbekitError, RecordingError
from probekit.wrappers import Wrapper, available_specs, load_model, load_spec

HOP = 160          # samples per 10 ms fbank / mel frame


def clip_lengths(period=34):
    """Sample counts: 1.1 s + r frames for every remainder, plus a longer and a shorter clip."""
    return [17600 + r * HOP + 37 for r in range(period)] + [16000 * 3 + 5, 9000]


def examples(modality, lang="eng", seed=0, period=34):
    rng = np.random.default_rng(seed)
    words = "the quick brown fox jumps over a lazy dog while seven birds sing".split()
    out = []
    for i, n in enumerate(clip_lengths(period)):
        text = " ".join(words[j % len(words)] for j in range(i % 9 + 1 + (i % 4) * 3))
        out.append({"id": f"{modality}{i}", "modality": modality, "lang": lang, "text": text,
                    "audio": 0.1 * rng.standard_normal(n).astype(np.float32)})
    return out


def shipped_specs():
    specs = []
    for name in available_specs():
        needs_sonar = load_spec(name).wrapper == "sonar"
        marks = [pytest.mark.skipif(needs_sonar and importlib.util.find_spec("sonar") is None,
                                    reason="SONAR (fairseq2) is in the reference environment only")]
        specs.append(pytest.param(name, marks=marks))
    return specs


def record(wrapper, batch):
    return capture(wrapper, batch, pool="none")[0]


def stride_period(wrapper):
    """The period of the family's strides in 10 ms frames, which the family itself declares
    (``Wrapper.STRIDE_PERIOD``; the base class's default does not count)."""
    family = type(wrapper)
    declared = [c for c in family.__mro__ if c is not Wrapper and "STRIDE_PERIOD" in vars(c)]
    assert declared, f"{family.__name__} does not declare its STRIDE_PERIOD"
    return family.STRIDE_PERIOD


@pytest.mark.parametrize("name", shipped_specs())
def test_every_layer_of_every_spec_is_the_same_alone_and_in_a_padded_batch(name):
    wrapper = load_model(name, variant="tiny")
    for modality in wrapper.modalities:
        batch = examples(modality, lang="fra" if wrapper.spec.wrapper == "sonar" else "eng",
                         period=stride_period(wrapper))
        layers = wrapper.layers(wrapper.spec.stacks_for(modality))
        # two batch compositions: all clips together, and long/short interleaved in pairs
        together = record(wrapper, batch)
        steps = range(0, len(batch) // 2, 3)
        pairs = [record(wrapper, [batch[i], batch[-1 - i]]) for i in steps]
        for i, ex in enumerate(batch):
            alone = record(wrapper, [ex])
            for layer in layers:
                ref = alone[layer][0].double()
                got = together[layer][i].double()
                assert got.shape == ref.shape, (name, modality, ex["id"], layer)
                scale = ref.abs().max().clamp_min(1e-6)
                err = float((got - ref).abs().max() / scale)
                assert err < 1e-4, (name, modality, ex["id"], layer, err)
        for k, i in enumerate(steps):
            for layer in layers:
                ref = together[layer][i].double()
                got = pairs[k][layer][0].double()
                assert float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-6)) < 1e-4


def assert_close_in_precision(ref, half, tolerance, period):
    """Mean-pooled layers of ``half`` are finite and within ``tolerance`` (relative norm) of
    ``ref``'s, for both modalities."""
    for modality in ("speech", "text"):
        batch = examples(modality, period=period)
        a, _ = capture(ref, batch, pool="mean")
        b, _ = capture(half, batch, pool="mean")
        for layer in ref.layers(ref.spec.stacks_for(modality)):
            x, y = a[layer].double(), b[layer].double()
            assert torch.isfinite(y).all(), (modality, layer)
            rel = float((x - y).norm() / x.norm())
            assert rel < tolerance, (modality, layer, rel)


# -- SALMONN -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def salmonn():
    return load_model("salmonn", variant="tiny")


def test_salmonn_takes_clips_up_to_30_s(salmonn):
    """29.92-30 s: Whisper's 1500 frames give ceil(1500 / 17) = 89 windows, 88 exist."""
    rng = np.random.default_rng(0)
    batch = [{"id": str(i), "modality": "speech", "lang": "eng", "text": "x",
              "audio": 0.1 * rng.standard_normal(n).astype(np.float32)}
             for i, n in enumerate([int(16000 * 29.92), 16000 * 30, 16000 * 2])]
    rec, inputs = capture(salmonn, batch, ["qformer", "llm"], pool="mean")
    lengths = inputs.lengths
    assert lengths["qformer"].tolist() == [88, 88, 6]
    assert torch.isfinite(rec["qformer.encoder.layer.1"]).all()


def test_salmonn_pads_clips_under_one_second_with_silence(salmonn):
    rng = np.random.default_rng(1)
    short = 0.1 * rng.standard_normal(7000).astype(np.float32)
    padded = np.concatenate([short, np.zeros(16000 - 7000, np.float32)])
    runs = [record(salmonn, [{"id": "a", "modality": "speech", "lang": "eng", "text": "x",
                              "audio": audio}]) for audio in (short, padded)]
    for layer in salmonn.layers():
        torch.testing.assert_close(runs[0][layer][0], runs[1][layer][0], rtol=0, atol=0)


def test_salmonn_prompt_is_the_releases_asr_prompt_and_an_option():
    from probekit.wrappers import describe_inputs

    spec = load_spec("salmonn")
    release = "Recognize the speech and give me the transcription."
    assert spec.options.instruction == release
    assert describe_inputs(spec)["speech"] == (
        f"<s>USER: <Speech><SpeechHere></Speech> {release}\nASSISTANT:")
    mine = load_spec("salmonn", options={"instruction": "Describe the audio."})
    assert "Describe the audio." in describe_inputs(mine)["text"]
    wrapper = load_model("salmonn", variant="tiny", options={"instruction": "Describe the audio."})
    assert wrapper.instruction == "Describe the audio."


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_salmonn_in_half_precision_runs_both_modalities_and_agrees_with_float32(salmonn, dtype):
    half = load_model("salmonn", variant="tiny", dtype=dtype)
    llm = half.model.llm.get_base_model()
    assert llm.model.layers[0].self_attn.q_proj.weight.dtype == getattr(torch, dtype)
    assert half.model.whisper.conv1.weight.dtype == torch.float32  # float32, as released
    assert_close_in_precision(salmonn, half, tolerance=0.03, period=4)

def test_beats_config_flags_are_read_or_refused(tmp_path):
    from probekit.interop.salmonn import load_beats
    from probekit.nets.beats import RELEASED_DEFAULTS, BEATs, config_from_checkpoint
    from probekit.wrappers import ModelLoadError

    released = {**RELEASED_DEFAULTS, "input_patch_size": 16, "deep_norm": True,
                "relative_position_embedding": True, "gru_rel_pos": True, "max_distance": 800,
                "finetuned_model": True}
    cfg = config_from_checkpoint(released)
    assert (cfg.patch_size, cfg.max_distance, cfg.deep_norm, cfg.predictor_class) == (16, 800,
                                                                                       True, 527)
    with pytest.raises(ProbekitError, match="unknown cfg flag.*layer_scale"):
        config_from_checkpoint({**released, "layer_scale": 0.1})
    with pytest.raises(ProbekitError, match="layer_norm_first=True is not supported"):
        config_from_checkpoint({**released, "layer_norm_first": True})
    # loading a checkpoint with a flag probekit does not implement fails, naming it
    tiny = {**released, "embed_dim": 16, "encoder_layers": 1, "encoder_embed_dim": 16,
            "encoder_ffn_embed_dim": 32, "encoder_attention_heads": 2, "conv_pos": 8,
            "conv_pos_groups": 2, "predictor_class": 5}
    donor = BEATs(config_from_checkpoint(tiny))
    torch.save({"cfg": {**tiny, "layer_scale": 0.1}, "model": donor.state_dict()},
               tmp_path / "beats.pt")
    with pytest.raises(ModelLoadError, match="unknown cfg flag.*layer_scale"):
        load_beats(str(tmp_path / "beats.pt"))
    without = {k: v for k, v in released.items() if k != "gru_rel_pos"}
    with pytest.raises(ProbekitError, match="gru_rel_pos=False .the released default."):
        config_from_checkpoint(without)


# -- SeamlessM4T ---------------------------------------------------------------------------------
def test_seamless_adaptor_reads_no_frame_of_a_longer_clip():
    """The stride-8 convolution's last window reaches past a clip's end: in a batch it would
    read the padded frames of longer clips; probekit gives it zeros, as alone."""
    wrapper = load_model("seamless_m4t_v2", variant="tiny")
    batch = examples("speech", period=1)[-2:-1] * 2          # 3 s: the longer clip
    batch[0] = dict(batch[0], audio=batch[0]["audio"][:16000])  # 1 s: 49 frames, 49 % 8 = 1
    together = record(wrapper, batch)
    alone = record(wrapper, batch[:1])
    layer = "speech_encoder.adapter.layers.0"
    torch.testing.assert_close(together[layer][0], alone[layer][0], rtol=1e-4, atol=1e-5)
    # and without probekit's fix, transformers' batched output differs (so the test can fail)
    import contextlib
    wrapper._adaptor_reads_own_frames = lambda frames: contextlib.nullcontext()
    unfixed = record(wrapper, batch)
    assert (unfixed[layer][0] - alone[layer][0]).abs().max() > 1e-2


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_seamless_in_half_precision_on_cpu(dtype):
    ref = load_model("seamless_m4t_v2", variant="tiny")
    half = load_model("seamless_m4t_v2", variant="tiny", dtype=dtype)
    assert next(half.model.parameters()).dtype == getattr(torch, dtype)
    assert_close_in_precision(ref, half, tolerance=0.05, period=2)

def test_recipes_take_a_model_dtype(tmp_path):
    from probekit.recipe import RecipeError, load_recipe

    recipe = load_recipe("recipes/demo.yaml", ["model.dtype=bfloat16"])
    assert recipe.model.dtype == "bfloat16"
    with pytest.raises(RecipeError, match="model.dtype: 'float8' is not one of"):
        load_recipe("recipes/demo.yaml", ["model.dtype=float8"])


# -- modalities ----------------------------------------------------------------------------------
def test_a_modality_runs_only_the_stacks_its_spec_names():
    whisper = load_model("whisper", variant="tiny")
    assert whisper.spec.stacks_for("text") == ["decoder"]
    text = examples("text", period=1)
    rec, _ = capture(whisper, text, pool="mean")
    assert {n for n, c in rec.calls.items() if c} == set(whisper.layers(["decoder"]))
    with pytest.raises(RecordingError, match="a batch holds one modality"):
        capture(whisper, [examples("speech", period=1)[0], text[0]], pool="mean")


def test_every_fidelity_claim_names_a_test_that_exists():
    import re
    from pathlib import Path

    from probekit.wrappers import families, wrapper_class

    root = Path(__file__).resolve().parent.parent
    for name in families():
        wrapper = wrapper_class(name)
        claims = " ".join(wrapper.FIDELITY)
        cited = re.findall(r"(tests/[\w/]+\.py)::(\w+)", claims)
        assert cited, name
        for path, test in cited:
            assert f"def {test}(" in (root / path).read_text(), (name, path, test)
