"""Recording cost: bare forward vs. forward with every block recorded and written to a store,
and peak memory for 1x vs 10x one shard of examples.

A SeamlessM4T v2 text encoder + decoder (transformers classes, random weights) of the real block
count (24 + 24) at a reduced width, so that it runs on 2 CPU cores. Prints numbers; asserts nothing.

    python benchmarks/recording_overhead.py [--device cuda] [--width 512] [--batches 6]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def build(width, layers, device):
    from transformers import SeamlessM4Tv2Config, SeamlessM4Tv2ForTextToText

    cfg = SeamlessM4Tv2Config(
        vocab_size=4096, hidden_size=width, encoder_layers=layers, decoder_layers=layers,
        encoder_ffn_dim=4 * width, decoder_ffn_dim=4 * width, encoder_attention_heads=8,
        decoder_attention_heads=8, speech_encoder_layers=1, speech_encoder_attention_heads=2,
        speech_encoder_intermediate_size=64, t2u_vocab_size=64, char_vocab_size=64,
        t2u_encoder_layers=1, t2u_decoder_layers=1, unit_hifi_gan_vocab_size=64,
        upsample_initial_channel=32, max_position_embeddings=512, encoder_layerdrop=0.0,
        decoder_layerdrop=0.0, speech_encoder_layerdrop=0.0, pad_token_id=0)
    torch.manual_seed(0)
    return SeamlessM4Tv2ForTextToText(cfg).eval().to(device)


def batch(i, size, device, vocab=4096):
    g = torch.Generator().manual_seed(i)
    lengths = torch.randint(24, 64, (size,), generator=g)
    ids = torch.randint(4, vocab, (size, int(lengths.max())), generator=g)
    mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long()
    return ids.to(device) * mask.to(device), mask.to(device)


def forward(model, ids, mask):
    return model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids,
                 decoder_attention_mask=mask)


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_runs(model, args, store_dir=None, pool="mean"):
    from probekit import Recorder, StoreWriter

    batches = [batch(i, args.batch_size, args.device) for i in range(args.batches)]
    with torch.no_grad():
        forward(model, *batches[0])  # warm-up
        sync(args.device)
        if store_dir is None:
            t0 = time.perf_counter()
            for ids, mask in batches:
                forward(model, ids, mask)
            sync(args.device)
            return (time.perf_counter() - t0) / args.batches
        t0 = time.perf_counter()
        if store_dir == "discard":  # hooks, pooling and GPU->CPU copies, no store
            with Recorder(model, ["text_encoder.layers.*", "text_decoder.layers.*"], pool=pool,
                          dtype="float16") as rec:
                prev = None
                for ids, mask in batches:
                    rec.set_mask(mask.cpu())
                    forward(model, ids, mask)
                    if prev is not None:  # one pass behind, as the writer thread would
                        prev.resolve()
                    prev = rec.collect()
                prev.resolve()
            sync(args.device)
            return (time.perf_counter() - t0) / args.batches
        with StoreWriter(store_dir, shard_size=args.shard_size, recipe_hash="bench") as writer, \
                Recorder(model, ["text_encoder.layers.*", "text_decoder.layers.*"], pool=pool,
                         dtype="float16") as rec:
            for k, (ids, mask) in enumerate(batches):
                rec.set_mask(mask.cpu())  # wrappers compute valid lengths on the CPU
                forward(model, ids, mask)
                meta = [{"id": f"{k}/{j}", "lang": "eng", "modality": "text"}
                        for j in range(len(ids))]
                writer.add(meta, rec.collect())  # no wait here
        sync(args.device)
    return (time.perf_counter() - t0) / args.batches


def memory_child(args):
    """Record n_examples through the store in this process; print its peak RSS (MiB)."""
    model = build(args.width, args.layers, args.device)
    n_batches = args.examples // args.batch_size
    args.batches = n_batches
    with tempfile.TemporaryDirectory() as tmp:
        timed_runs(model, args, Path(tmp) / "store", pool="none")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"examples": args.examples, "peak_rss_mib": round(peak, 1)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--shard-size", type=int, default=64)
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        args.examples = args.memory_child
        memory_child(args)
        return

    model = build(args.width, args.layers, args.device)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"model: SeamlessM4Tv2ForTextToText {args.layers}+{args.layers} blocks, width "
          f"{args.width}, {params:.0f} M parameters, device {args.device}, "
          f"batch {args.batch_size} x 24..63 tokens, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        bare = timed_runs(model, args)
        hooks = timed_runs(model, args, "discard")
        pooled = timed_runs(model, args, Path(tmp) / "pooled")
        tokens = timed_runs(model, args, Path(tmp) / "tokens", pool="none")
        bare2 = timed_runs(model, args)
    bare = min(bare, bare2)
    print(f"bare forward                         {bare * 1e3:8.1f} ms/batch")
    print(f"+ record 48 blocks (mean), no store  {hooks * 1e3:8.1f} ms/batch "
          f"({100 * (hooks / bare - 1):+.1f}%)")
    print(f"+ record 48 blocks (mean) + store    {pooled * 1e3:8.1f} ms/batch "
          f"({100 * (pooled / bare - 1):+.1f}%)")
    print(f"+ record 48 blocks (tokens) + store  {tokens * 1e3:8.1f} ms/batch "
          f"({100 * (tokens / bare - 1):+.1f}%)")

    if args.no_memory:
        return
    print(f"peak memory, token-level store, shard = {args.shard_size} examples:")
    for n in (args.shard_size, 10 * args.shard_size):
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(n), "--device",
                              args.device, "--width", str(args.width), "--layers",
                              str(args.layers), "--batch-size", str(args.batch_size),
                              "--shard-size", str(args.shard_size)],
                             capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {res['examples']:5d} examples ({res['examples'] // args.shard_size:2d} shards): "
              f"peak RSS {res['peak_rss_mib']:8.1f} MiB")


if __name__ == "__main__":
    main()
