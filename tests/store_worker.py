"""A real writer process for crash tests: records a tiny model's blocks into a store.

usage: python store_worker.py STORE BACKEND N [--pause S] [--rank R --ranks K] [--fsize-limit B]

Every example's input is a function of its id alone, so any run (interrupted and resumed, or not)
must store the same numbers.
"""

import argparse
import resource
import signal
import sys
import time

import torch
import torch.nn as nn

from probekit import Recorder, StoreWriter
from probekit.errors import ProbekitError


class Blocks(nn.Module):
    def __init__(self, n=4, d=16):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(d, d), nn.Tanh()) for _ in range(n))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def example(i):
    g = torch.Generator().manual_seed(1000 + i)
    n = 3 + i % 7
    meta = {"id": f"ex{i:04d}", "sentence": str(i // 2), "lang": ["eng", "fra"][i % 2],
            "modality": "text", "text": f"sentence {i}", "length": n}
    return meta, torch.randn(n, 16, generator=g)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("backend")
    ap.add_argument("n", type=int)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--fsize-limit", type=int, default=0)
    args = ap.parse_args()
    store, backend, n, pause, rank = args.store, args.backend, args.n, args.pause, args.rank
    if args.fsize_limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize_limit, args.fsize_limit))
    model = Blocks().eval()
    try:
        with StoreWriter(store, backend=backend, shard_size=8, recipe_hash="test-recipe",
                         rank=rank, provenance={"model": "Blocks"}) as writer:
            todo = [i for i in range(rank, n, args.ranks) if f"ex{i:04d}" not in writer.done_ids]
            for start in range(0, len(todo), 3):
                batch = [example(i) for i in todo[start:start + 3]]
                meta = [m for m, _ in batch]
                x = nn.utils.rnn.pad_sequence([t for _, t in batch], batch_first=True)
                lengths = torch.tensor([t.shape[0] for _, t in batch])
                with torch.no_grad(), Recorder(model, pool="mean") as rec, \
                        Recorder(model, "layers.0", pool="none", dtype="bfloat16") as tok:
                    rec.set_lengths(lengths)
                    tok.set_lengths(lengths)
                    model(x)
                layers = dict(rec.collect())
                layers["layers.0:tokens"] = tok["layers.0"]
                writer.add(meta, layers)
                time.sleep(pause)
    except ProbekitError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
