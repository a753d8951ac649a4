"""The recorder against the model's own hidden states, nnsight, and independent pooling."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from tiny import padded_ids, seamless_v2_text_model

from probekit import Recorder, block_lists, resolve_layers
from probekit.errors import LayerSelectionError, RecordingError


@pytest.fixture(scope="module")
def encoder():
    return seamless_v2_text_model().text_encoder


def run_encoder(encoder, ids, mask, **kw):
    with torch.no_grad():
        return encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True, **kw)


@pytest.mark.parametrize("side", ["right", "left"])
def test_token_level_equals_output_hidden_states(encoder, side):
    lengths = [5, 9, 7]
    ids, mask = padded_ids(lengths, side=side)
    with Recorder(encoder, "layers.*", pool="none") as rec:
        rec.set_mask(mask)
        out = run_encoder(encoder, ids, mask)
    hs = out.hidden_states
    names = [f"layers.{i}" for i in range(len(encoder.layers))]
    assert rec.names == names
    assert len(hs) == len(names) + 1
    for i, name in enumerate(names):
        got = rec[name]
        assert len(got) == 3
        for b, n in enumerate(lengths):
            assert got[b].shape == (n, hs[0].shape[-1])
            ref = hs[i + 1][b][mask[b].bool()]
            if i < len(names) - 1:
                torch.testing.assert_close(got[b], ref, rtol=0, atol=0)
            else:  # hidden_states[-1] is taken after the final layer norm
                assert not torch.allclose(got[b], ref)
                torch.testing.assert_close(encoder.layer_norm(got[b]), ref, rtol=1e-6, atol=1e-6)


def test_nnsight_backend_equals_hooks(encoder):
    ids, mask = padded_ids([4, 8])
    results = {}
    for backend in ("hooks", "nnsight"):
        with torch.no_grad(), Recorder(encoder, "layers.*", pool="none", backend=backend) as rec:
            rec.set_mask(mask)
            rec.run(input_ids=ids, attention_mask=mask)
            results[backend] = {n: rec[n] for n in rec.names}
    assert list(results["hooks"]) == list(results["nnsight"])
    for name, tokens in results["hooks"].items():
        for a, b in zip(tokens, results["nnsight"][name], strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("side", ["right", "left"])
def test_mask_aware_pooling_matches_independent_float64(encoder, side):
    lengths = [3, 10, 6, 1]
    ids, mask = padded_ids(lengths, side=side, seed=1)
    pooled = {}
    for how in ("mean", "first", "last"):
        with Recorder(encoder, "layers.*", pool=how) as rec:
            rec.set_lengths(mask.sum(1), padding_side=side)
            out = run_encoder(encoder, ids, mask)
        pooled[how] = {n: rec[n] for n in rec.names}
    t = ids.shape[1]
    for i in range(len(encoder.layers) - 1):
        h = out.hidden_states[i + 1].double().numpy()
        for b, n in enumerate(lengths):
            valid = np.arange(t) < n if side == "right" else np.arange(t) >= t - n
            rows = h[b][valid]
            np.testing.assert_allclose(pooled["mean"][f"layers.{i}"][b].numpy(),
                                       rows.sum(0) / n, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(pooled["first"][f"layers.{i}"][b].numpy(),
                                          rows[0].astype(np.float32))
            np.testing.assert_array_equal(pooled["last"][f"layers.{i}"][b].numpy(),
                                          rows[-1].astype(np.float32))


def test_collect_keeps_a_pass_while_the_next_one_runs(encoder):
    ids, mask = padded_ids([4, 6, 2])
    other, other_mask = padded_ids([5, 3, 6], seed=7)
    with Recorder(encoder, "layers.*", pool="none") as rec:
        rec.set_mask(mask)
        run_encoder(encoder, ids, mask)
        first = rec.collect()
        expected = dict(rec.items())
        rec.set_mask(other_mask)
        run_encoder(encoder, other, other_mask)
    assert list(first) == rec.names == list(expected)
    for name in rec.names:
        assert [t.shape[0] for t in first[name]] == [4, 6, 2]
        assert [t.shape[0] for t in rec[name]] == [5, 3, 6]
        for a, b in zip(first[name], expected[name], strict=True):
            assert torch.equal(a, b)


def test_storage_dtype_and_device(encoder):
    ids, mask = padded_ids([4, 6])
    with Recorder(encoder, ["layers.0"], pool="mean", dtype="bfloat16") as rec:
        rec.set_mask(mask)
        run_encoder(encoder, ids, mask)
    assert rec["layers.0"].dtype == torch.bfloat16 and rec["layers.0"].device.type == "cpu"
    assert not rec["layers.0"].requires_grad


class Chain(nn.Module):
    def __init__(self, n=3, d=8, reuse=False):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(d, d), nn.GELU()) for _ in range(n))
        self.head = nn.Linear(d, 2)
        self.reuse = reuse

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        if self.reuse:
            x = self.blocks[0](x)
        return self.head(x)


def test_hooks_removed_even_when_forward_raises():
    model = Chain()
    with pytest.raises(RuntimeError), Recorder(model, require_lengths=False) as rec:
        assert all(len(b._forward_hooks) == 1 for b in model.blocks)
        model(torch.randn(2, 5, 3))  # wrong width: the forward pass raises
    assert all(len(b._forward_hooks) == 0 for b in model.blocks)
    assert len(model._forward_pre_hooks) == 0
    assert rec.layers == ["blocks.0", "blocks.1", "blocks.2"]


def test_repeated_module_is_an_error_or_recorded_per_call():
    model = Chain(reuse=True)
    x = torch.randn(1, 4, 8)
    with pytest.raises(RecordingError, match="ran more than once"), Recorder(model):
        model(x)
    with Recorder(model, repeats="all") as rec:
        model(x)
    assert rec.calls == {"blocks.0": 2, "blocks.1": 1, "blocks.2": 1}
    assert len(rec["blocks.0"]) == 2 and not torch.equal(rec["blocks.0"][0], rec["blocks.0"][1])
    # a new forward pass starts afresh
    with Recorder(model, repeats="all") as rec:
        model(x)
        model(x)
    assert rec.calls["blocks.0"] == 2


def test_padded_batch_without_lengths_is_refused():
    model = Chain()
    with pytest.raises(RecordingError, match="no valid lengths"), Recorder(model):
        model(torch.randn(2, 4, 8))


def test_mask_of_wrong_length_is_an_error_not_broadcast():
    model = Chain()
    with pytest.raises(RecordingError, match=r"mask has shape \(2, 3\)"), Recorder(model) as rec:
        rec.set_mask(torch.ones(2, 3))
        model(torch.randn(2, 4, 8))
    with pytest.raises(RecordingError, match="1..4"), Recorder(model) as rec:
        rec.set_lengths([4, 6])
        model(torch.randn(2, 4, 8))


def test_layer_patterns():
    model = Chain()
    assert block_lists(model) == {"blocks": ["blocks.0", "blocks.1", "blocks.2"]}
    assert resolve_layers(model, "blocks.*") == ["blocks.0", "blocks.1", "blocks.2"]
    assert resolve_layers(model, "blocks.**") == [n for n, _ in model.named_modules()
                                                   if n.startswith("blocks.")]
    assert resolve_layers(model, ["re:blocks\\.[02]", "head"]) == ["blocks.0", "blocks.2", "head"]
    assert resolve_layers(model, lambda name, m: isinstance(m, nn.GELU)) == [
        "blocks.0.1", "blocks.1.1", "blocks.2.1"]
    with pytest.raises(LayerSelectionError) as err:
        resolve_layers(model, "block.*")
    assert "closest module paths" in str(err.value) and "blocks" in str(err.value)
    with pytest.raises(LayerSelectionError, match="blocks.1"):
        resolve_layers(model, "blocks.11")
    with pytest.raises(LayerSelectionError, match="not a valid regex"):
        resolve_layers(model, "re:(")


def test_module_inputs_can_be_recorded():
    model = Chain()
    assert resolve_layers(model, ["blocks.1:input", "blocks.*"]) == [
        "blocks.0", "blocks.1:input", "blocks.1", "blocks.2"]
    with Recorder(model, ["blocks.1:input", "blocks.0", "head:input"]) as rec:
        model(torch.randn(1, 3, 8))
    assert rec.names == ["blocks.0", "blocks.1:input", "head:input"]
    assert torch.equal(rec["blocks.1:input"], rec["blocks.0"])
    with pytest.raises(LayerSelectionError):
        resolve_layers(model, "nothing:input")


def test_unrecorded_layer_lookup_suggests_names():
    model = Chain()
    with Recorder(model, "blocks.*") as rec:
        model(torch.randn(1, 2, 8))
    with pytest.raises(LayerSelectionError, match="did you mean"):
        rec["blocks.7"]
