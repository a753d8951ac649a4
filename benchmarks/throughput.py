"""Recording throughput against a bare forward pass, the disk's own write bandwidth, and peak
memory. It prints a table and asserts nothing.

The model is a SeamlessM4T v2 text encoder + decoder: the transformers class with random
weights and the real block count (24 + 24). The default width (512) runs on 2 CPU cores; the
released width is ``--width 1024`` (on a GPU). The same batches are timed for each mode, the
modes interleaved over ``--rounds`` rounds (default 3) and the median of the rounds shown:

- bare: the forward pass alone;
- output_hidden_states: transformers' own hidden states of every block, mean-pooled over the
  valid positions and copied to the host;
- pooled, no store: probekit hooks on all 48 blocks (mean over valid positions, float16);
- pooled + store: the same, written to an HDF5 store by its writer thread;
- tokens + store: every position of all 48 blocks written to a store;
- nnsight: the same blocks traced by nnsight (Recorder backend "nnsight"), mean-pooled.

The disk rows show the machine's sequential write bandwidth (a file written in 64 MiB blocks,
then fsynced) and how fast the store writes token-level shards alone, from recordings made
beforehand. The fsynced shards are then timed as a fraction of that bandwidth. Peak host memory
is measured in child processes storing 1x and 10x one shard of token-level examples. Peak device
memory is measured per mode on a GPU.

    python benchmarks/throughput.py [--device cuda] [--width 1024] [--batch-size 64]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

LAYERS = ["text_encoder.layers.*", "text_decoder.layers.*"]


def build(width, layers, device, dtype=torch.float32):
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
    return SeamlessM4Tv2ForTextToText(cfg).eval().to(device, dtype)


def make_batch(i, size, device, vocab=4096):
    g = torch.Generator().manual_seed(i)
    lengths = torch.randint(24, 64, (size,), generator=g)
    ids = torch.randint(4, vocab, (size, int(lengths.max())), generator=g)
    mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long()
    return ids.to(device) * mask.to(device), mask.to(device)


def forward(model, ids, mask, **kw):
    return model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids,
                 decoder_attention_mask=mask, **kw)


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed(mode, model, batches, args, folder):
    """Seconds per batch of ``mode``, and the peak device memory (MiB; 0 on the CPU)."""
    from probekit import Recorder, StoreWriter

    cuda = args.device.startswith("cuda")
    with torch.no_grad():
        forward(model, *batches[0])  # warm-up
        sync(args.device)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        if mode == "bare":
            for ids, mask in batches:
                forward(model, ids, mask)
        elif mode == "output_hidden_states":
            for ids, mask in batches:
                out = forward(model, ids, mask, output_hidden_states=True)
                m = mask[..., None].to(out.encoder_hidden_states[0].dtype)
                for h in out.encoder_hidden_states[1:] + out.decoder_hidden_states[1:]:
                    ((h * m).sum(1) / m.sum(1)).to("cpu", torch.float16)
        elif mode in ("pooled", "nnsight"):
            backend = "nnsight" if mode == "nnsight" else "hooks"
            with Recorder(model, LAYERS, pool="mean", dtype="float16", backend=backend) as rec:
                prev = None
                for ids, mask in batches:
                    rec.set_mask(mask.cpu())
                    rec.run(input_ids=ids, attention_mask=mask, decoder_input_ids=ids,
                            decoder_attention_mask=mask)
                    if prev is not None:  # one pass behind, as the writer thread would
                        prev.resolve()
                    prev = rec.collect()
                prev.resolve()
        else:  # "pooled+store", "tokens+store"
            pool = "none" if mode.startswith("tokens") else "mean"
            with StoreWriter(folder / mode, shard_size=args.shard_size,
                             recipe_hash="bench") as writer, \
                    Recorder(model, LAYERS, pool=pool, dtype="float16") as rec:
                for k, (ids, mask) in enumerate(batches):
                    rec.set_mask(mask.cpu())  # wrappers compute valid lengths on the CPU
                    forward(model, ids, mask)
                    meta = [{"id": f"{k}/{j}", "lang": "eng", "modality": "text"}
                            for j in range(len(ids))]
                    writer.add(meta, rec.collect())  # no wait here
        sync(args.device)
        seconds = (time.perf_counter() - t0) / len(batches)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0
    return seconds, peak


def disk_bandwidth(folder, mib):
    """MiB/s of a sequential write of ``mib`` MiB in 64 MiB blocks, fsynced."""
    block = os.urandom(64 * 2**20)
    path = folder / "bandwidth.bin"
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(max(1, round(mib / 64))):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    seconds = time.perf_counter() - t0
    size = path.stat().st_size / 2**20
    path.unlink()
    return size / seconds


def store_bandwidth(model, batches, args, folder):
    """MiB/s at which the store writes (and fsyncs) token-level shards of recordings made
    beforehand (repeated up to ``--disk-mib``), so that only the writer is timed."""
    from probekit import Recorder, StoreWriter

    recordings = []
    with torch.no_grad(), Recorder(model, LAYERS, pool="none", dtype="float16") as rec:
        for ids, mask in batches:
            rec.set_mask(mask.cpu())
            forward(model, ids, mask)
            recordings.append(rec.collect().resolve())
    per_round = sum(t.numel() * t.element_size() for layers in recordings
                    for value in layers.values() for t in value) / 2**20
    rounds = max(1, round(args.disk_mib / per_round))
    t0 = time.perf_counter()
    with StoreWriter(folder / "writer-only", shard_size=args.shard_size,
                     recipe_hash="bench") as writer:
        for k, layers in enumerate(recordings * rounds):
            n = len(next(iter(layers.values())))
            writer.add([{"id": f"{k}/{j}", "lang": "eng", "modality": "text"}
                        for j in range(n)], layers)
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in (folder / "writer-only" / "shards").iterdir()) / 2**20
    return size / seconds, size


def writer_rows(model, batches, args):
    """The disk and writer rows alone, ``--rounds`` times, alternated."""
    disks, writers = [], []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for r in range(args.rounds):
            writer, written = store_bandwidth(model, batches, args, Path(tmp) / f"{r}")
            writers.append(writer)
            disks.append(disk_bandwidth(Path(tmp), int(written)))
            shutil.rmtree(Path(tmp) / f"{r}")
    disk, writer = statistics.median(disks), statistics.median(writers)
    print("disk and writer per round: "
          + ", ".join(f"{d:.0f}/{w:.0f}" for d, w in zip(disks, writers, strict=True)) + " MiB/s")
    print(f"disk: sequential write with fsync       {disk:8.0f} MiB/s ({written:.0f} MiB)")
    print(f"store: token-level shards, writer only  {writer:8.0f} MiB/s = "
          f"{100 * writer / disk:.0f}% of the disk")


def memory_child(args):
    """Record ``--memory-child`` examples token by token through the store in this process;
    print its peak RSS (MiB)."""
    model = build(args.width, args.layers, args.device)
    batches = [make_batch(i, args.batch_size, args.device)
               for i in range(args.memory_child // args.batch_size)]
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        timed("tokens+store", model, batches, args, Path(tmp))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"examples": args.memory_child, "peak_rss_mib": round(peak, 1)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--shard-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3,
                    help="times every mode runs (interleaved); the table shows the medians")
    ap.add_argument("--disk-mib", type=int, default=1024,
                    help="MiB the store writes (and the disk test file) for the disk rows")
    ap.add_argument("--tmp", default=None, help="folder on the disk to measure (default: TMPDIR)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--writer-only", action="store_true",
                    help="only the disk and writer rows (e.g. with --tmp /dev/shm: a fast disk)")
    ap.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args)
        return

    model = build(args.width, args.layers, args.device, getattr(torch, args.dtype))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"model: SeamlessM4Tv2ForTextToText {args.layers}+{args.layers} blocks, width "
          f"{args.width}, {params:.0f} M parameters, {args.dtype}, device {args.device}, batch "
          f"{args.batch_size} x 24..63 tokens, {args.batches} batches, torch {torch.__version__}")
    batches = [make_batch(i, args.batch_size, args.device) for i in range(args.batches)]
    modes = ["bare", "output_hidden_states", "pooled", "pooled+store", "tokens+store"]
    try:
        import nnsight  # noqa: F401
        modes.append("nnsight")
    except ImportError:
        print("(nnsight is not installed: its row is left out)")
    if args.writer_only:
        writer_rows(model, batches, args)
        return
    runs = {mode: [] for mode in modes}
    disks, writers = [], []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for r in range(args.rounds):  # modes interleaved, so that drifts of the machine
            for mode in modes:        # fall on every mode alike; the median of the rounds
                runs[mode].append(timed(mode, model, batches, args, Path(tmp) / f"{r}"))
            token_bytes = sum(p.stat().st_size for p in (Path(tmp) / f"{r}" / "tokens+store"
                                                         / "shards").iterdir())
            writer, written = store_bandwidth(model, batches, args, Path(tmp) / f"{r}")
            writers.append(writer)
            disks.append(disk_bandwidth(Path(tmp), int(written)))  # as many bytes as the store
            shutil.rmtree(Path(tmp) / f"{r}")
    results = {mode: (statistics.median(s for s, _ in v), max(p for _, p in v))
               for mode, v in runs.items()}
    disk, writer = statistics.median(disks), statistics.median(writers)
    bare = results["bare"][0]
    print(f"\n{'mode':24s} {'ms/batch':>9s} {'examples/s':>11s} {'vs bare':>8s} "
          f"{'peak GPU MiB':>13s}")
    for mode in modes:
        s, peak = results[mode]
        print(f"{mode:24s} {s * 1e3:9.1f} {args.batch_size / s:11.1f} {s / bare:8.3f} "
              f"{peak:13.0f}")
    end_to_end = token_bytes / 2**20 / (results["tokens+store"][0] * args.batches)
    print(f"\nmedians of {args.rounds} rounds; disk and writer rows per round: "
          + ", ".join(f"{d:.0f}/{w:.0f}" for d, w in zip(disks, writers, strict=True)) + " MiB/s")
    print(f"disk: sequential write with fsync       {disk:8.0f} MiB/s ({written:.0f} MiB)")
    print(f"store: token-level shards, writer only  {writer:8.0f} MiB/s ({written:.0f} MiB) = "
          f"{100 * writer / disk:.0f}% of the disk")
    print(f"store: token-level, with the forward    {end_to_end:8.0f} MiB/s = "
          f"{100 * end_to_end / disk:.0f}% of the disk")

    if args.no_memory:
        return
    print(f"\npeak host memory, token-level store, shard = {args.shard_size} examples:")
    for n in (args.shard_size, 10 * args.shard_size):
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(n), "--device",
                              args.device, "--width", str(args.width), "--layers",
                              str(args.layers), "--batch-size", str(args.batch_size),
                              "--shard-size", str(args.shard_size)]
                             + (["--tmp", args.tmp] if args.tmp else []),
                             capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {res['examples']:5d} examples ({res['examples'] // args.shard_size:2d} shards): "
              f"peak RSS {res['peak_rss_mib']:8.1f} MiB")


if __name__ == "__main__":
    main()
