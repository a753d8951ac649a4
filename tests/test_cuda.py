"""GPU path: pinned, non-blocking copies give exactly what the blocks output
(skipped without CUDA)."""

import pytest
import torch

from probekit import Recorder
from tiny import padded_ids, seamless_v2_text_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("pool", ["mean", "none"])
def test_cuda_recording_lands_on_cpu_unchanged(pool):
    model = seamless_v2_text_model().cuda()
    ids, mask = padded_ids([5, 12, 9])
    ids, mask = ids.cuda(), mask.cuda()
    results = {}
    for device in ("cpu", None):
        with torch.no_grad(), Recorder(model, ["text_encoder.layers.*", "text_decoder.layers.*"],
                                       pool=pool, device=device) as rec:
            rec.set_mask(mask)
            model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids,
                  decoder_attention_mask=mask)
        results[device] = dict(rec.collect().resolve())
    for name, on_gpu in results[None].items():
        on_cpu = results["cpu"][name]
        if pool == "none":
            for a, b in zip(on_cpu, on_gpu):
                assert a.device.type == "cpu" and b.device.type == "cuda"
                assert torch.equal(a, b.cpu())
        else:
            assert on_cpu.device.type == "cpu" and on_cpu.is_pinned()
            assert torch.equal(on_cpu, on_gpu.cpu())
