"""GPU path: pinned, non-blocking copies give exactly what the blocks output
(skipped without CUDA)."""

import pytest
import torch
from tiny import padded_ids, seamless_v2_text_model

from probekit import Recorder

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
            for a, b in zip(on_cpu, on_gpu, strict=True):
                assert a.device.type == "cpu" and b.device.type == "cuda"
                assert torch.equal(a, b.cpu())
        else:
            assert on_cpu.device.type == "cpu" and on_cpu.is_pinned()
            assert torch.equal(on_cpu, on_gpu.cpu())


def spec_names():
    from probekit.wrappers import available_specs, load_spec

    return [n for n in available_specs()  # SONAR loads each language's encoder on its own device
            if load_spec(n).wrapper != "sonar"]


@pytest.mark.parametrize("name", spec_names())
def test_every_spec_records_on_the_gpu_what_it_records_on_the_cpu(name):
    """Wrappers put their inputs on the model's device (lengths stay on the CPU): a padded batch
    through each tiny spec on CUDA matches the same batch on the CPU."""
    import numpy as np

    from probekit.batch import capture
    from probekit.wrappers import load_model

    got = {}
    for device in ("cpu", "cuda"):
        wrapper = load_model(name, variant="tiny")  # built on the CPU, then moved
        wrapper.model.to(device)
        assert wrapper.device.type == device
        for modality in wrapper.modalities:
            rng = np.random.default_rng(0)
            batch = [{"id": str(i), "modality": modality, "lang": "fra", "text": text,
                      "audio": 0.1 * rng.standard_normal(n).astype(np.float32)}
                     for i, (text, n) in enumerate([("une phrase assez longue", 23000),
                                                    ("court", 9000)])]
            rec, _ = capture(wrapper, batch, pool="mean")
            layers = rec.collect().resolve().items()
            got[device, modality] = {k: v.cpu().double() for k, v in layers}
    for (device, modality), layers in got.items():
        if device == "cuda":
            for layer, value in layers.items():
                ref = got["cpu", modality][layer]
                err = float((value - ref).abs().max() / ref.abs().max().clamp_min(1e-6))
                assert err < 1e-3, (name, modality, layer, err)


@pytest.mark.parametrize("zscore", [False, True])
def test_comparer_rows_on_the_gpu_equal_the_cpu_rows(zscore):
    """Scores, chance and interval draws (from the subsets' Gram matrices, z-scored on each
    subset where asked) on CUDA equal the CPU's in float64."""
    import numpy as np

    from probekit.analysis import Comparer

    rng = np.random.default_rng(3)
    latent = rng.standard_normal((120, 8))
    views = {i: (latent @ rng.standard_normal((8, 64)) + rng.standard_normal((120, 64)))
             * np.linspace(0.1, 30, 64) + 5 for i in range(2)}
    rows = {device: Comparer(views.__getitem__, ["svcca", "linear_cka"], k=6, n_perm=4,
                             n_boot=20, zscore=zscore, device=device).compare(0, 1)
            for device in ("cpu", "cuda")}
    for cpu, gpu in zip(rows["cpu"], rows["cuda"], strict=True):
        for key in ("score", "chance", "ci_low", "ci_high"):
            assert abs(cpu[key] - gpu[key]) < 1e-9, (cpu["measure"], key)
