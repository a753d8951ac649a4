"""Attack suite: a real demo store (token-level, both backends) damaged or edited in every way
issue 27's campaign tried, each case checked for its promised outcome; prints one line per case
and the count that held.

    python benchmarks/store_attacks.py [--sentences 10] [--backend hdf5|safetensors|both]

Outcomes promised: a path leaving the store, a link, a missing rank, a changed dtype, flipped or
cut bytes and malformed manifests or arrays are named by ``store verify`` (exit 1, or 2 with one
line for an unreadable manifest) and never read; damage the writer can repair (a cut or deleted
shard) is recomputed and the resumed store equals the uninterrupted one byte for byte; edited
data (a text, a clip, a removed sentence) is redone and the store equals a fresh run's on the new
data; a YAML bomb and a recipe naming code are refused in one line without importing anything.
The fast versions of these cases are in tests/test_store_trust.py and tests/test_data_changes.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from soak_kills import ROOT, contents

Case = Callable[[Path], tuple[bool, str]]


def run(out: Path, backend: str, sentences: int, data: Path | None = None,
        *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "probekit.run", str(ROOT / "recipes" / "demo.yaml"),
           f"data.max_sentences={sentences}", "record.shard_size=30", "record.pool=none",
           f"record.backend={backend}", "record.stacks=[text_encoder,speech_encoder]",
           "analysis.control=null", "--stage", "extract", "--quiet", "--out", str(out), *extra]
    if data is not None:
        cmd.append(f"data.path={data}")
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def verify(store: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "probekit.store", "verify", str(store)],
                          capture_output=True, text=True, cwd=ROOT)
    return done.returncode, (done.stdout + done.stderr).strip()


def manifest(store: Path) -> tuple[Path, dict]:
    path = store / "manifest-r0.json"
    return path, json.loads(path.read_text())


def rehash(store: Path, k: int = 0) -> None:
    """Make the manifest agree with shard k's new size and SHA-256 (an editor could)."""
    path, m = manifest(store)
    entry = m["shards"][k]
    data = (store / entry["file"]).read_bytes()
    entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    path.write_text(json.dumps(m))


def refused(store: Path, words: str, code: int = 1) -> tuple[bool, str]:
    """``store verify`` fails with ``code`` and a line holding ``words`` (shown, shortened)."""
    rc, text = verify(store)
    line = next((x for x in text.splitlines() if words in x), text.splitlines()[-1])
    return rc == code and words in text and "Traceback" not in text, line.strip()[:160]


def flip(store: Path, k: int = 0, at: float = 0.6) -> Path:
    path, m = manifest(store)
    shard = store / m["shards"][k]["file"]
    raw = bytearray(shard.read_bytes())
    raw[int(len(raw) * at)] ^= 0x10
    shard.write_bytes(bytes(raw))
    return shard


def edit_entry(store: Path, change: Callable[[dict], object]) -> None:
    path, m = manifest(store)
    change(m["shards"][0])
    path.write_text(json.dumps(m))


def repaired(store: Path, damage: Callable[[Path], object], backend: str, sentences: int,
             expected: tuple) -> tuple[bool, str]:
    damage(store)
    done = run(store.parent, backend, sentences)
    same = done.returncode == 0 and contents(store) == expected
    return same, "resumed store identical" if same else done.stderr[-300:]


def attacks(backend: str, sentences: int, expected: tuple) -> dict[str, Case]:
    def outside(s: Path) -> tuple[bool, str]:
        foreign = s.parent / "foreign.bin"
        shutil.copyfile(s / manifest(s)[1]["shards"][1]["file"], foreign)
        edit_entry(s, lambda e: e.update(file="../foreign.bin"))
        rehash(s)
        return refused(s, "not a file in the store's shards/ folder")

    def absolute(s: Path) -> tuple[bool, str]:
        data = Path("/etc/passwd").read_bytes()
        edit_entry(s, lambda e: e.update(file="/etc/passwd", bytes=len(data),
                                         sha256=hashlib.sha256(data).hexdigest()))
        return refused(s, "not a file in the store's shards/ folder")

    def link(s: Path) -> tuple[bool, str]:
        shard = s / manifest(s)[1]["shards"][0]["file"]
        target = s.parent / "elsewhere"
        shutil.move(shard, target)
        os.symlink(target, shard)
        return refused(s, "a symbolic link")

    def missing_rank(s: Path) -> tuple[bool, str]:
        path, m = manifest(s)
        m["world"] = 2
        path.write_text(json.dumps(m))
        return refused(s, "writer rank(s) 1 of the run's 2 have no manifest")

    def dtype(s: Path) -> tuple[bool, str]:
        if backend == "hdf5":
            import h5py
            with h5py.File(s / manifest(s)[1]["shards"][0]["file"], "a") as f:
                layer = next(iter(f["layers"]))
                data = f[f"layers/{layer}/tokens"][:]
                del f[f"layers/{layer}/tokens"]
                f[f"layers/{layer}"].create_dataset("tokens", data=data.astype("float64"))
        else:
            from safetensors import safe_open
            from safetensors.numpy import load_file, save_file
            shard = str(s / manifest(s)[1]["shards"][0]["file"])
            with safe_open(shard, "np") as f:
                meta = f.metadata()
            tensors = load_file(shard)
            key = next(k for k in tensors if k.endswith("/tokens"))
            tensors[key] = tensors[key].astype("float64")
            save_file(tensors, shard, metadata=meta)
        rehash(s)
        return refused(s, "is stored as")

    def flipped(s: Path) -> tuple[bool, str]:
        flip(s)
        return refused(s, "checksum mismatch")

    def flipped_rehashed(s: Path) -> tuple[bool, str]:
        flip(s)
        rehash(s)
        import probekit
        store = probekit.open_store(s)
        try:
            for layer in store.layers:
                for ex_id in store.recorded(layer)["id"]:
                    store.tokens(layer, ex_id)
        except Exception as e:  # the one read that meets the flipped bit
            return "CRC-32" in str(e) or "damaged" in str(e), str(e)[:200]
        return False, "every read passed"

    def malformed(change: Callable[[dict], object], words: str) -> Case:
        def case(s: Path) -> tuple[bool, str]:
            edit_entry(s, change)
            return refused(s, words, code=2)
        return case

    return {
        "shard path ../ (hash matching)": outside,
        "shard path /etc/passwd (hash matching)": absolute,
        "shard replaced by a symbolic link": link,
        "a writer rank's manifest missing": missing_rank,
        "an array's dtype changed (hash matching)": dtype,
        "a flipped bit": flipped,
        "a flipped bit, hash matching": flipped_rehashed,
        "manifest count n off by one": malformed(lambda e: e.update(n=e["n"] + 1), "says n ="),
        "manifest ids short": malformed(lambda e: e["examples"]["id"].pop(), "holds"),
        "manifest layers not a list": malformed(lambda e: e.update(layers="x"), "not a list"),
        "a shard cut in half, rerun": lambda s: repaired(
            s, lambda s: _cut(s), backend, sentences, expected),
        "a shard deleted, rerun": lambda s: repaired(
            s, lambda s: (s / manifest(s)[1]["shards"][1]["file"]).unlink(), backend,
            sentences, expected),
    }


def _cut(store: Path) -> None:
    shard = store / manifest(store)[1]["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])


def data_edits(work: Path, backend: str, sentences: int) -> tuple[bool, str]:
    """Edit a text, replace a clip and drop a sentence; the rerun must equal a fresh run."""
    data = work / "data"
    shutil.copytree(ROOT / "data" / "demo", data)
    out = work / "edited"
    first = run(out, backend, sentences, data / "manifest.tsv")
    if first.returncode:
        return False, first.stderr[-300:]
    rows = (data / "manifest.tsv").read_text().splitlines()
    rows = [r.replace("bread is still warm", "bread is cold") for r in rows
            if not r.startswith("2\t")]
    (data / "manifest.tsv").write_text("\n".join(rows) + "\n")
    shutil.copyfile(data / "audio" / "fra" / "4.ogg", data / "audio" / "fra" / "3.ogg")
    again = run(out, backend, sentences, data / "manifest.tsv")
    fresh = run(work / "fresh", backend, sentences, data / "manifest.tsv")
    same = (again.returncode == fresh.returncode == 0
            and contents(out / "store") == contents(work / "fresh" / "store"))
    said = "changed since they were stored" in again.stderr and "no longer in" in again.stderr
    return same and said, "store equal to a fresh run's" if same else again.stderr[-300:]


def recipes(work: Path) -> dict[str, tuple[bool, str]]:
    bomb = work / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, "
              f"*a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 9)]
    bomb.write_text("\n".join(lines) + "\nname: *a8\nmodel: {spec: seamless_m4t_v2}\n")
    (work / "evilmod.py").write_text(f"open({str(work / 'ran')!r}, 'w').write('ran')\n")
    spec = work / "evil.yaml"
    spec.write_text("name: evil\nwrapper: evilmod:X\ncheckpoint: x\nstacks: {a: ['l.{i}']}\n")
    evil = work / "evil-recipe.yaml"
    evil.write_text(f"name: e\nmodel: {{spec: {spec}}}\ndata: {{source: manifest, path: "
                    f"{ROOT / 'data/demo/manifest.tsv'}, languages: [eng]}}\n")
    out = {}
    for name, recipe in (("YAML bomb (10^9 values)", bomb), ("recipe naming code", evil)):
        t0 = time.time()
        done = subprocess.run([sys.executable, "-m", "probekit.run", str(recipe), "--dry-run"],
                              capture_output=True, text=True, cwd=work)
        took = time.time() - t0
        one_line = done.returncode == 2 and "Traceback" not in done.stderr \
            and len(done.stderr.strip().splitlines()[-1]) < 600
        out[name] = (one_line and not (work / "ran").exists(),
                     f"{took:.1f} s: {done.stderr.strip().splitlines()[-1][:160]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=10, help="demo sentences (x 10 languages x 2)")
    ap.add_argument("--backend", choices=["hdf5", "safetensors", "both"], default="both")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="probekit-attacks-"))
    results: list[tuple[str, bool, str]] = []
    try:
        for backend in ("hdf5", "safetensors") if args.backend == "both" else (args.backend,):
            ref = work / backend / "reference"
            done = run(ref, backend, args.sentences)
            if done.returncode:
                sys.exit(f"the reference run failed:\n{done.stderr[-2000:]}")
            expected = contents(ref / "store")
            for name, case in attacks(backend, args.sentences, expected).items():
                copy = work / backend / "case"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(ref, copy, symlinks=True)
                try:
                    ok, detail = case(copy / "store")
                except Exception as e:  # the suite reports, it does not stop
                    ok, detail = False, f"{type(e).__name__}: {e}"[:300]
                results.append((f"{backend}: {name}", ok, detail))
                print(f"{'held' if ok else 'FAILED'}  {backend}: {name}: {detail}", flush=True)
            ok, detail = data_edits(work / backend, backend, args.sentences)
            results.append((f"{backend}: data edited", ok, detail))
            print(f"{'held' if ok else 'FAILED'}  {backend}: data edited: {detail}", flush=True)
        for name, (ok, detail) in recipes(work).items():
            results.append((name, ok, detail))
            print(f"{'held' if ok else 'FAILED'}  {name}: {detail}", flush=True)
        held = sum(ok for _, ok, _ in results)
        print(f"{held} of {len(results)} attacks held")
        sys.exit(0 if held == len(results) else 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
