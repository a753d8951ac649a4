"""The 'random' variant (a checkpoint's architecture with random seeded weights) for wrappers whose
weights are reset in place: ``randomize_weights`` on tiny SONAR / SALMONN / Whisper models, and
``load_model(..., variant="random")`` for sonar and salmonn (offline: the usual download error)."""

import logging
import os

import pytest
import torch
import torch.nn as nn

from probekit.errors import ProbekitError
from probekit.selfcheck import check_wrapper
from probekit.wrappers import load_model, load_spec
from probekit.wrappers.random_init import randomize_weights

# parameters of the tiny SALMONN that no reset_parameters() writes: the Q-Former query, BEATs'
# gate scales and LLaMA's RMSNorm weights (those to 1, the others from N(0, 0.02))
SALMONN_FALLBACK = {
    "speech_query_tokens", "beats.encoder.layers.0.self_attn.grep_a",
    "beats.encoder.layers.1.self_attn.grep_a", "llm.base_model.model.model.norm.weight",
    *(f"llm.base_model.model.model.layers.{i}.{n}_layernorm.weight"
      for i in (0, 1) for n in ("input", "post_attention"))}
NO_FAIRSEQ2 = "SONAR (fairseq2) is in the reference environment only"


def tiny(name, dtype=None):
    if name == "sonar":
        pytest.importorskip("fairseq2", reason=NO_FAIRSEQ2)
        pytest.importorskip("sonar", reason=NO_FAIRSEQ2)
    return load_model(name, variant="tiny", dtype=dtype)


def params(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def fill(module, value):
    """Stand-in checkpoint weights: every parameter set to ``value``."""
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)


@pytest.mark.parametrize("name", ["sonar", "salmonn"])
@pytest.mark.parametrize("dtype", [None, "float16"])
def test_randomize_weights_resets_everything_reproducibly(name, dtype):
    wrapper = tiny(name, dtype)
    model = wrapper.model
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    fill(model, 0.5)
    rng = torch.random.get_rng_state()
    with torch.no_grad():
        fallback = randomize_weights(model, 1)
    assert torch.equal(torch.random.get_rng_state(), rng)  # global RNG left alone
    first = params(model)
    assert [n for n, p in first.items() if torch.all(p == 0.5)] == []  # nothing survives
    assert {n: p.dtype for n, p in first.items()} == dtypes
    assert set(fallback) == (SALMONN_FALLBACK if name == "salmonn" else set())

    fill(model, 0.25)  # other weights before: the same seed gives bitwise the same weights
    assert randomize_weights(model, 1) == fallback
    assert all(torch.equal(p, first[n]) for n, p in model.named_parameters())

    randomize_weights(model, 2)
    again = params(model)
    varying = [n for n, p in first.items() if p.unique().numel() > 1]  # not reset to a constant
    assert varying and all(not torch.equal(again[n], first[n]) for n in varying)
    check_wrapper(wrapper)  # still runs: every block fires on a probe example


def test_salmonn_fallback_norms_are_one_and_weight_norm_is_resplit():
    wrapper = tiny("salmonn")
    m = wrapper.model
    fill(m, 0.5)
    randomize_weights(m, 0)
    assert torch.all(m.llm.base_model.model.model.norm.weight == 1)
    assert torch.all(m.beats.encoder.layers[0].self_attn.grep_a != 0.5)
    conv = m.beats.encoder.pos_conv[0]  # weight_g / weight_v: re-split from the reset weight
    torch.testing.assert_close(conv.weight_g, torch.norm_except_dim(conv.weight_v, 2, 2))


def test_a_hf_model_is_reset_by_its_modules_not_the_fallback():
    wrapper = tiny("whisper")
    norms = [m for m in wrapper.model.modules() if isinstance(m, nn.LayerNorm)]
    assert norms
    fill(wrapper.model, 0.5)
    assert randomize_weights(wrapper.model, 0) == []
    for norm in norms:  # LayerNorm.reset_parameters, not N(0, 0.02)
        assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    check_wrapper(wrapper)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_parametrized_weight_norm_is_reset(dtype):
    conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 4, 3), dim=2).to(dtype)
    fill(conv, 0.5)
    assert randomize_weights(conv, 0) == []
    assert all(not torch.all(p == 0.5) and p.dtype == dtype for p in conv.parameters())
    ref = nn.Conv1d(4, 4, 3).to(dtype)
    torch.manual_seed(0)
    ref.reset_parameters()  # the same draw as a plain convolution's reset
    torch.testing.assert_close(conv.weight, ref.weight)
    torch.testing.assert_close(conv.bias, ref.bias)


# -- load_model(..., variant="random") -------------------------------------------------------------

def test_random_salmonn_loads_the_checkpoint_then_resets_it(monkeypatch, caplog):
    import probekit.wrappers.salmonn as salmonn

    build, seen = salmonn.build_model, []

    def checkpoint(spec, variant, dtype):  # a stand-in for the released weights
        seen.append(variant)
        model, tokenizer, extractor = build(spec, "tiny", dtype)
        fill(model, 0.5)
        return model, tokenizer, extractor

    monkeypatch.setattr(salmonn, "build_model", checkpoint)
    with caplog.at_level(logging.INFO, logger="probekit"):
        wrapper = load_model("salmonn", variant="random")
    assert seen == ["random"] and wrapper.variant == "random"
    assert not any(torch.all(p == 0.5) for p in wrapper.model.parameters())
    assert "8 parameter(s) without a reset_parameters() got the fallback init" in caplog.text
    twice = load_model("salmonn", variant="random", options={"llm_span": "all"})
    assert all(torch.equal(p, q) for p, q in zip(wrapper.model.parameters(),
                                                 twice.model.parameters(), strict=True))


def test_random_sonar_resets_every_language_even_those_loaded_later(monkeypatch):
    pytest.importorskip("fairseq2", reason=NO_FAIRSEQ2)
    pytest.importorskip("sonar", reason=NO_FAIRSEQ2)
    import probekit.wrappers.sonar as sonar

    spec = load_spec("sonar")
    loaded = []

    def asset(name, device, dtype):  # stand-ins for the released assets
        loaded.append(name)
        model = (sonar._tiny_text(spec.tiny)[0] if name == spec.checkpoint
                 else sonar._tiny_speech(spec.tiny, name.rsplit("_", 1)[1]))
        fill(model, 0.5)
        return model.to(dtype)

    monkeypatch.setattr(sonar, "_load_asset", asset)
    monkeypatch.setattr(sonar, "_load_tokenizer", lambda name: sonar._tiny_text(spec.tiny)[1])
    wrapper = load_model("sonar", variant="random")
    assert wrapper.variant == "random"
    assert loaded == [spec.checkpoint, "sonar_speech_encoder_eng"]
    example = {"id": "x", "modality": "speech", "lang": "fra", "audio": torch.zeros(16000).numpy()}
    wrapper.mount([example])
    assert loaded[-1] == "sonar_speech_encoder_fra"
    assert not any(torch.all(p == 0.5) for p in wrapper.model.parameters())
    fra = params(wrapper.model.speech_encoder)
    other = load_model("sonar", variant="random")  # the same weights, whatever the loading order
    other.mount([example])
    assert all(torch.equal(p, fra[n]) for n, p in other.model.speech_encoder.named_parameters())
    eng = dict(wrapper._speech["eng"].named_parameters())
    assert any(not torch.equal(p, eng[n]) for n, p in fra.items() if n in eng)  # own seed


def offline_error(monkeypatch, name):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FAIRSEQ2_CACHE_DIR", os.path.join(os.getcwd(), ".no-cache-here"))
    with pytest.raises(Exception) as err:
        load_model(name, variant="random")
    assert isinstance(err.value, ProbekitError), repr(err.value)
    assert "transformers specs" not in str(err.value)
    return str(err.value)


def test_random_sonar_offline_fails_with_the_download_message(monkeypatch):
    pytest.importorskip("fairseq2", reason=NO_FAIRSEQ2)
    pytest.importorskip("sonar", reason=NO_FAIRSEQ2)
    assert "text_sonar_basic_encoder" in offline_error(monkeypatch, "sonar")


def test_random_salmonn_offline_fails_with_the_download_message(monkeypatch):
    msg = offline_error(monkeypatch, "salmonn")
    assert "openai/whisper-large-v2" in msg and "offline" in msg
