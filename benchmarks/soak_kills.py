"""Soak test: kill -9 the demo's extraction at random instants, many times in a row, resume it with
the same command, and count the resumes whose store equals an uninterrupted run's byte for byte.

    python benchmarks/soak_kills.py [--kills 50] [--seed 0] [--sentences 10]

Each trial starts from an empty folder, kills the run 1 to 3 times at instants drawn uniformly
over an uninterrupted run's duration (start-up, model loading, forward passes, shard writes,
closing), then runs the same command to the end and compares every layer of every example (and
the skipped list) with the reference. Shards of 30 examples cut through the demo's batches of 20,
so resumes also rerun half-stored batches. Prints one line per trial and the total.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(out: Path, sentences: int) -> list[str]:
    return [sys.executable, "-m", "probekit.run", str(ROOT / "recipes" / "demo.yaml"),
            f"data.max_sentences={sentences}", "record.shard_size=30", "analysis.control=null",
            "--stage", "extract", "--quiet", "--out", str(out)]


def contents(store: Path) -> tuple[dict, list]:
    """Every layer's bytes per example id, and the skipped examples."""
    import probekit

    s = probekit.open_store(store, verify=True)
    assert s.complete, f"{store} is not complete"
    out = {}
    for layer in s.layers:
        ids = list(s.recorded(layer)["id"])
        rows = s.read(layer, ids=ids)
        out.update({(layer, i): rows[k].tobytes() for k, i in enumerate(ids)})
    return out, sorted((d["id"], d["reason"]) for d in s.skipped)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=50, help="stop after this many kills")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sentences", type=int, default=10, help="demo sentences (x 10 languages x 2)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="probekit-soak-"))
    try:
        durations = []
        for folder in ("warm-up", "reference"):  # the first run also fills the disk cache
            t0 = time.time()
            reference = subprocess.run(command(work / folder, args.sentences),
                                       capture_output=True, text=True, cwd=ROOT)
            if reference.returncode:
                sys.exit(f"the reference run failed:\n{reference.stderr}")
            durations.append(time.time() - t0)
        duration = min(durations)
        expected = contents(work / "reference" / "store")
        print(f"reference: {len(expected[0])} (layer, example) arrays in {duration:.1f} s")
        kills = trials = matched = 0
        while kills < args.kills:
            trials += 1
            out = work / f"trial{trials}"
            hits = []
            for _ in range(rng.randint(1, 3)):
                at = rng.uniform(0, duration)
                proc = subprocess.Popen(command(out, args.sentences), cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    proc.wait(timeout=at)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    hits.append(f"{at:.1f}s")
                else:
                    break  # it finished: nothing left to interrupt
            done = subprocess.run(command(out, args.sentences), capture_output=True, text=True,
                                  cwd=ROOT)
            same = done.returncode == 0 and contents(out / "store") == expected
            matched += same
            print(f"trial {trials}: killed at {', '.join(hits) or '- (finished first)'}; resume "
                  f"{'identical' if same else 'DIFFERENT: ' + done.stderr[-300:]}", flush=True)
            shutil.rmtree(out)
        print(f"{kills} kills in {trials} trials: {matched}/{trials} resumes identical to the "
              f"uninterrupted run (every layer of every example, byte for byte, and the skips)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
