"""The analysis stage at the paper's size: a synthetic store with the shape of a paper recipe,
analysed by the real pipeline with the recipe's settings (control included), timed against the
dry run's estimate.

    python benchmarks/paper_scale.py [--recipe seamless] [--languages 30] [--sentences 350]
                                     [--workers 1] [--no-control]
                                     [--keep DIR [--write-only | --reuse]] [--set K=V ...]
                                     [--profile FILE]

The store holds, for every language, sentence and modality the spec runs, every layer of the
spec's stacks at the spec's widths (``sizes``), float16, drawn from a seeded generator: each view
is a shared sentence latent (more of it with depth, less across modalities early on) plus a
view's own noise, both with power-law column scales (no gap at k, partial sharing: like trained
layers). The control store is drawn the same way with little sharing. Prints the rows, rows/s,
the peak memory of the analysis process, the dry run's estimate and measured / estimated.
A run longer than a session is measured in parts: ``--keep DIR``, killed, then ``--keep DIR
--reuse`` analyses the same stores, resuming from the rows computed so far (the time printed is
this part's; the log in DIR has each part's start). ``--keep DIR --write-only`` writes the stores
and stops (the run's store and its control's are written side by side, in two processes).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def layer_names(patterns: list[str], blocks: int) -> list[str]:
    """A stack's layer names: its fixed patterns as they are, its ``*`` patterns numbered so that
    the stack has ``blocks`` layers."""
    fixed = [p for p in patterns if "*" not in p]
    starred = [p for p in patterns if "*" in p]
    count = max(blocks - len(fixed), 1)
    names = []
    for p in patterns:
        if "*" in p:
            names += [p.replace("*", str(i)) for i in range(count // len(starred))]
        else:
            names.append(p)
    return names


def write_store(path: Path, run, langs: list[str], sentences: int, shared: float,
                seed: int) -> int:
    """The synthetic store of ``run``'s shape; returns its size in bytes."""
    from probekit.store import StoreWriter

    spec = run.spec
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((sentences, 64))
    stacks = {s: layer_names(list(spec.stacks[s]), spec.sizes[s][0]) for s in spec.sizes}
    widths = {s: spec.sizes[s][1] for s in spec.sizes}
    scale = {w: np.arange(1, w + 1) ** -0.7 for w in set(widths.values())}
    mixing = {name: rng.standard_normal((64, widths[s])) * scale[widths[s]]
              for s, names in stacks.items() for name in names}
    with StoreWriter(path, backend="hdf5", shard_size=sentences, recipe_hash=run.store_hash,
                     provenance={"model": spec.name, "synthetic": "benchmarks/paper_scale.py"},
                     overwrite=True) as writer:
        for lang in langs:
            for modality in run.data.modalities:
                layers = {}
                for stack in spec.modalities.get(modality, []):
                    if stack not in stacks:
                        continue
                    depth = len(stacks[stack])
                    for d, name in enumerate(stacks[stack]):
                        w = widths[stack]
                        share = shared * (0.3 + 0.7 * (d + 1) / depth)  # converging with depth
                        own = rng.standard_normal((sentences, w)) * scale[w]
                        view = share * latent @ mixing[name] / 8 + (1 - share) * own
                        layers[name] = view.astype(np.float16)
                meta = [{"id": f"{lang}/{modality}/{s}", "sentence": str(s), "lang": lang,
                         "modality": modality, "text": f"sentence {s}", "length": 20}
                        for s in range(sentences)]
                writer.add(meta, layers)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def seconds(text: str) -> float:
    """A dry run's duration ("42 s", "7.5 min", "3.2 h") in seconds."""
    value, unit = re.fullmatch(r"([\d.]+) (s|min|h)", text).groups()
    return float(value) * {"s": 1, "min": 60, "h": 3600}[unit]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default="seamless")
    ap.add_argument("--languages", type=int, default=30, help="the recipe's first N languages")
    ap.add_argument("--sentences", type=int, default=350)
    ap.add_argument("--workers", type=int, default=1, help="analysis.workers")
    ap.add_argument("--no-control", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="keep the run folder here")
    ap.add_argument("--write-only", action="store_true",
                    help="with --keep: write the stores and stop (analyse later with --reuse)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: analyse the stores already there (not written again); "
                         "an analysis killed there resumes from its rows file")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="more recipe overrides (e.g. analysis.n_boot=10)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="profile the analysis with cProfile into this file (each worker "
                         "into FILE.wN)")
    args = ap.parse_args()
    if (args.write_only or args.reuse) and args.keep is None:
        ap.error("--write-only and --reuse need --keep DIR (the run folder to keep or reuse)")

    from probekit.pipeline import resolve_run
    from probekit.recipe import load_recipe

    base = load_recipe(args.recipe, [])
    langs = base.data.languages[:args.languages]
    overrides = [f"data.languages=[{','.join(langs)}]", "report.figures=false",
                 f"analysis.workers={args.workers}", *args.set]
    if args.no_control:
        overrides.append("analysis.control=null")
    recipe = load_recipe(args.recipe, overrides)
    out = args.keep or Path(tempfile.mkdtemp(prefix="probekit-paper-"))
    run = resolve_run(recipe, out)
    t0 = time.time()
    if args.reuse and args.keep and run.store.exists():
        print(f"reusing the stores in {out} (partial rows of a killed analysis: "
              f"{len(list(out.glob('analysis.partial*.jsonl')))} files)")
    else:
        jobs = [(run.store, run, 0.8, 0)]  # the control: the same shape, little sharing
        if run.control is not None:
            jobs.append((run.control.store, run.control, 0.1, 1))
        with ProcessPoolExecutor(len(jobs)) as pool:
            size = sum(f.result() for f in [
                pool.submit(write_store, store, r, langs, args.sentences, shared, seed)
                for store, r, shared, seed in jobs])
        print(f"synthetic store{'s' if run.control else ''}: {size / 1e9:.2f} GB in "
              f"{time.time() - t0:.0f} s ({len(langs)} languages x {args.sentences} sentences "
              f"x {', '.join(run.data.modalities)}; {run.spec.name}'s stacks and widths, float16)",
              flush=True)
    if args.write_only:
        return
    cmd = [sys.executable, "-m", "probekit.run", args.recipe, *overrides, "--out", str(out),
           "--quiet"]
    dry = subprocess.run([*cmd, "--dry-run", "--no-probe"], capture_output=True, text=True,
                         cwd=ROOT)
    found = re.search(r"time: analysis of .*?: about ([\d.]+ (?:s|min|h))", dry.stdout)
    estimate = seconds(found.group(1)) if found else float("nan")
    print(dry.stdout[found.start():].splitlines()[0] if found else dry.stdout[-2000:],
          flush=True)
    t0 = time.time()
    profiled = ["-m", "cProfile", "-o", str(args.profile.resolve())] if args.profile else []
    env = dict(os.environ, **({"PROBEKIT_PROFILE_WORKERS": str(args.profile.resolve())}
                              if args.profile else {}))  # each worker: PROFILE.wN
    done = subprocess.run([cmd[0], *profiled, *cmd[1:], "--stage", "analyze"],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    took = time.time() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20  # KiB -> GiB
    if done.returncode:
        sys.exit(f"the analysis failed:\n{done.stderr[-3000:]}")
    import pandas as pd

    rows = len(pd.read_csv(out / "results" / "similarities.csv", low_memory=False))
    print(f"analysis ({args.workers} process{'es' if args.workers > 1 else ''}): {rows} rows "
          f"in {took:.0f} s = {rows / took:.1f} rows/s; peak memory {peak:.2f} GiB; dry-run "
          f"estimate {estimate:.0f} s; measured / estimated = {took / estimate:.2f}")
    for line in done.stderr.splitlines():
        if line.startswith("analyze:"):
            print("  " + line)
    if args.keep is None:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
