"""GPU check, under 5 minutes: probekit's recordings on a GPU against a float64 CPU
recomputation, the analysis stage's comparisons on the GPU against the CPU (float64 and float32,
timed), then the throughput table of benchmarks/throughput.py at the released width.

It needs only torch and transformers, besides probekit's own dependencies (no fairseq2, no
nnsight). Run it from a checkout, where it finds probekit in src/. Two mid-sized models, with
random weights of the transformers classes:

- SeamlessM4T v2 text-to-text: 24 + 24 blocks, width 1024 (about 700 M parameters);
- a LLaMA decoder (as SALMONN's LLM): 16 blocks, width 2048 (about 800 M parameters).

Each is run in float32 (TF32 off) and bfloat16 on the GPU, on a right-padded batch of
different lengths, recorded by probekit's Recorder (mean over valid positions). The reference
is the same model in float64 on the CPU. There it runs on each example alone (no padding), with
forward hooks written here and the mean taken here. The script prints the largest relative
error per block and passes when every block is within the dtype's tolerance.

    python benchmarks/gpu_check.py [--skip-table] [--small]
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 6e-2}


SMALL = False  # --small: the same classes, narrower and shallower (a quick run of this script)


def seamless(device):
    from throughput import build

    width, depth = (128, 4) if SMALL else (1024, 24)
    model = build(width, depth, "cpu")
    blocks = ["text_encoder.layers.*", "text_decoder.layers.*"]

    def run(m, ids, mask):
        return m(input_ids=ids, attention_mask=mask, decoder_input_ids=ids,
                 decoder_attention_mask=mask)
    return f"SeamlessM4T v2 text {depth}+{depth} x {width}", model, blocks, run


def llama(device):
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    width, depth = (128, 4) if SMALL else (2048, 16)
    cfg = LlamaConfig(vocab_size=4096, hidden_size=width, intermediate_size=width * 11 // 4,
                      num_hidden_layers=depth, num_attention_heads=16, num_key_value_heads=16,
                      max_position_embeddings=512, pad_token_id=0)
    model = LlamaModel(cfg).eval()

    def run(m, ids, mask):
        return m(input_ids=ids, attention_mask=mask)
    return f"LLaMA decoder {depth} x {width}", model, ["layers.*"], run


def reference(model, names, run, ids, lengths):
    """Per block, each example's mean over its valid positions: float64, CPU, one example at a
    time, hooks written here."""
    ref = model.to("cpu", torch.float64)
    modules = dict(ref.named_modules())
    out = {n: [] for n in names}
    handles = []
    current = {}
    for n in names:
        def hook(_m, _i, output, n=n):
            h = output[0] if isinstance(output, tuple) else output
            current[n] = h[0].mean(dim=0)
        handles.append(modules[n].register_forward_hook(hook))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # transformers builds its masks in the default dtype
    try:
        with torch.no_grad():
            for row, n_valid in zip(ids, lengths, strict=True):
                x = row[:n_valid][None]
                run(ref, x, torch.ones_like(x))
                for n in names:
                    out[n].append(current[n].clone())
    finally:
        torch.set_default_dtype(default)
        for h in handles:
            h.remove()
    return {n: torch.stack(v) for n, v in out.items()}


def check(make, device, n=4):
    from probekit import Recorder, resolve_layers

    label, model, patterns, run = make(device)
    names = resolve_layers(model, patterns)
    g = torch.Generator().manual_seed(1)
    lengths = [57, 23, 40, 9][:n]
    ids = torch.randint(4, 4096, (n, max(lengths)), generator=g)
    mask = (torch.arange(ids.shape[1])[None] < torch.tensor(lengths)[:, None]).long()
    ids = ids * mask
    expected = reference(model, names, run, ids, lengths)
    ok = True
    for dtype in (torch.float32, torch.bfloat16):
        m = model.to(device, dtype)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        with torch.no_grad(), Recorder(m, names, pool="mean", dtype="float32") as rec:
            rec.set_mask(mask)
            run(m, ids.to(device), mask.to(device))
            got = rec.collect().resolve()
        worst = 0.0
        for name in names:
            e = expected[name]
            err = (got[name].double() - e).norm(dim=1) / e.norm(dim=1)
            worst = max(worst, float(err.max()))
        passed = worst <= TOLERANCE[dtype]
        ok &= passed
        print(f"{label:36s} {str(dtype).removeprefix('torch.'):9s} {len(names):3d} blocks: "
              f"largest relative error {worst:.2e} (tolerance {TOLERANCE[dtype]:.0e}) "
              f"{'ok' if passed else 'FAIL'}")
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return ok


def analysis_check(device):
    """The analysis stage's comparisons on ``device`` (float64 and float32) against the CPU in
    float64: the recipes' settings (SVCCA and linear CKA, k = 40, 20 permutations, 200 interval
    draws) on views of n = 350 sentences with power-law spectra, at SeamlessM4T's and SALMONN's
    widths. Prints seconds per row and the largest difference from the CPU; returns whether
    every difference is within the stated bounds (1e-8 in float64, 1e-5 in float32)."""
    import numpy as np

    from probekit.analysis import Comparer

    n, widths = (120, (256,)) if SMALL else (350, (1024, 5120))
    rng = np.random.default_rng(0)
    ok = True
    for width in widths:
        scale = np.arange(1, width + 1) ** -0.7  # no gap at k, partial sharing
        latent = rng.standard_normal((n, 64))
        views = {i: (latent @ rng.standard_normal((64, width)) + rng.standard_normal((n, width)))
                 * scale for i in range(6)}
        found = {}
        for where, dtype in (("cpu", "float64"), (device, "float64"), (device, "float32")):
            c = Comparer(views.__getitem__, ["svcca", "linear_cka"], k=min(40, n // 8),
                         n_perm=20, n_boot=200, device=where, dtype=dtype)
            c.compare(4, 5)  # warm-up: one-off costs left out
            t = time.perf_counter()
            rows = c.compare(0, 1) + c.compare(2, 3)
            found[(where, dtype)] = rows, (time.perf_counter() - t) / 2
        base, cpu_seconds = found[("cpu", "float64")]
        for (where, dtype), (rows, seconds) in found.items():
            diff = max(abs(float(r[c]) - float(b[c])) for r, b in zip(rows, base, strict=True)
                       for c in ("score", "chance", "ci_low", "ci_high"))
            bound = 1e-8 if dtype == "float64" else 1e-5
            ok &= diff <= bound
            print(f"analysis n={n} width={width} {where} {dtype}: {seconds:.3f} s per row "
                  f"(both measures, 20 permutations, 200 draws; {cpu_seconds / seconds:.1f}x the "
                  f"CPU's), largest difference from the CPU in float64 {diff:.1e} "
                  f"({'ok' if diff <= bound else 'ABOVE'} {bound:.0e})")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-table", action="store_true")
    ap.add_argument("--small", action="store_true", help="narrow models: checks the script")
    args = ap.parse_args()
    global SMALL
    SMALL = args.small
    t0 = time.time()
    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    ok = all([check(seamless, args.device), check(llama, args.device),
              analysis_check(args.device)])
    print(f"values: {'all within tolerance' if ok else 'FAILED'} ({time.time() - t0:.0f} s)")
    if not args.skip_table:
        import throughput

        sys.argv = [sys.argv[0], "--device", args.device, "--width", "1024", "--batch-size",
                    "64", "--batches", "8", "--shard-size", "256", "--dtype", "bfloat16"]
        if args.small:
            sys.argv = [sys.argv[0], "--device", args.device, "--width", "128", "--layers", "4",
                        "--batches", "2", "--disk-mib", "64", "--no-memory"]
        throughput.main()
    print(f"total {time.time() - t0:.0f} s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
