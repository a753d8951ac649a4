"""Fault injection on real writer processes: kill -9 at random instants, a full disk, changed bytes,
truncated and deleted shards, damaged JSON. Every fault ends in one clear message, the committed
work intact, and the same command resuming to exactly the data of an uninterrupted run."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from probekit import StoreWriter, open_store
from probekit.errors import StoreError
from probekit.store.__main__ import main as store_cli

WORKER = Path(__file__).with_name("store_worker.py")
N = 60  # examples: 8 shards of 8, the last one short


def worker(store, backend, n=N, *options):
    return subprocess.Popen([sys.executable, str(WORKER), str(store), backend, str(n),
                             *map(str, options)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def complete(store, backend, n=N):
    proc = worker(store, backend, n)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return err


def by_id(store):
    """Every layer's bytes per example id (order-free: a repaired store appends at the end)."""
    s = open_store(store, verify=True)
    out = {}
    for layer in s.layers:
        ids = list(s.recorded(layer)["id"])
        if s.schema[layer]["kind"] == "pooled":
            rows = s.read(layer, ids=ids)
            out.update({(layer, i): rows[k].tobytes() for k, i in enumerate(ids)})
        else:
            out.update({(layer, i): s.tokens(layer, i).tobytes() for i in ids})
    return s, out


@pytest.fixture(scope="module", params=["hdf5", "safetensors"])
def reference(request, tmp_path_factory):
    store = tmp_path_factory.mktemp(f"ref-{request.param}") / "store"
    t0 = time.time()
    proc = worker(store, request.param, N, "--pause", 0.02)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return request.param, store, by_id(store)[1], time.time() - t0


def data_offset(shard: Path, backend: str) -> int:
    """A byte offset inside the float data of a pooled layer of ``shard``."""
    if backend == "hdf5":
        import h5py
        with h5py.File(shard, "r") as f:
            ds = f["layers"]["layers.2"]["pooled"]
            return ds.id.get_chunk_info(0).byte_offset + 5
    header = int.from_bytes(shard.read_bytes()[:8], "little")
    info = json.loads(shard.read_bytes()[8:8 + header])
    return 8 + header + info["layers.2/pooled"]["data_offsets"][0] + 5


def test_a_changed_byte_is_caught_and_only_its_shard_is_recomputed(reference, tmp_path, capsys):
    backend, ref, expected, _ = reference
    store = tmp_path / "store"
    shutil.copytree(ref, store)
    shard = sorted((store / "shards").iterdir())[2]
    raw = bytearray(shard.read_bytes())
    raw[data_offset(shard, backend)] ^= 0x5A
    shard.write_bytes(bytes(raw))
    lost = list(open_store(store).examples["id"][16:24])  # the third shard's examples
    with pytest.raises(StoreError, match=rf"1 damaged shard.*{shard.name} \(checksum mismatch; "
                                         rf"8 examples: {lost[0]}"):
        open_store(store, verify=True)
    if backend == "hdf5":  # without verify, HDF5's per-chunk checksum still catches the read
        with pytest.raises(StoreError, match="is damaged.*the same command"):
            open_store(store).read("layers.2")
    assert store_cli(["verify", str(store)]) == 1
    assert f"{shard.name} (checksum mismatch" in capsys.readouterr().out
    err = complete(store, backend)
    assert "checksum mismatch" in err and "will be recomputed" in err
    s, got = by_id(store)
    assert got == expected and s.complete
    assert sorted(s.examples["id"]) == sorted(open_store(ref).examples["id"])
    assert list(s.examples["id"])[-8:] == lost  # recomputed, nothing else
    assert store_cli(["verify", str(store)]) == 0


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_truncated_or_deleted_shard_is_recomputed_by_the_same_command(reference, tmp_path,
                                                                         damage):
    backend, ref, expected, _ = reference
    store = tmp_path / "store"
    shutil.copytree(ref, store)
    shard = sorted((store / "shards").iterdir())[0]
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:100])
    else:
        shard.unlink()
    with pytest.raises(StoreError, match="damaged shard.*To repair it, run the extraction"):
        open_store(store)
    complete(store, backend)
    assert by_id(store)[1] == expected


def test_damaged_json_gives_one_clear_message_and_overwrite_starts_afresh(tmp_path):
    store = tmp_path / "store"
    complete(store, "hdf5", 20)
    manifest = store / "manifest-r0.json"
    manifest.write_text(manifest.read_text()[:-40])
    for attempt in (lambda: open_store(store),
                    lambda: StoreWriter(store, recipe_hash="test-recipe")):
        with pytest.raises(StoreError, match=r"manifest-r0.json is damaged .*--overwrite"):
            attempt()
    proc = worker(store, "hdf5", 20)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "is damaged" in err and "Traceback" not in err
    (store / "store.json").write_bytes(b"\x00\xff{")
    with pytest.raises(StoreError, match=r"store.json is damaged"):
        open_store(store)
    with StoreWriter(store, recipe_hash="test-recipe", overwrite=True) as w:
        assert not w.done_ids
    assert len(open_store(store)) == 0


def test_overwrite_starts_afresh_even_for_the_same_recipe(tmp_path):
    store = tmp_path / "store"
    complete(store, "hdf5", 20)
    with StoreWriter(store, recipe_hash="test-recipe", overwrite=True) as w:
        assert not w.done_ids
    s = open_store(store)
    assert len(s) == 0 and s.complete and not list((store / "shards").iterdir())


def test_a_rank_never_removes_another_ranks_shards(tmp_path):
    # rank 1's leftovers are r1-*; rank 11's committed shards r11-* must survive its resume
    store = tmp_path / "store"
    for rank in (11, 1):
        p = worker(store, "hdf5", 40, "--rank", rank, "--ranks", 20)
        assert p.wait(timeout=120) == 0, p.stderr.read()
    s = open_store(store, verify=True)
    assert sorted(s.examples["id"]) == ["ex0001", "ex0011", "ex0021", "ex0031"]


def test_kill_9_at_random_instants_then_resume_is_byte_identical(reference, tmp_path):
    backend, _, expected, duration = reference
    store = tmp_path / "store"
    rng = random.Random(f"kill-{backend}")
    kills = attempts = 0
    while kills < 5 and attempts < 15:
        attempts += 1
        proc = worker(store, backend, N, "--pause", 0.02)
        if attempts % 2:  # as soon as a shard is being written
            deadline = time.time() + 60
            while time.time() < deadline and proc.poll() is None and not any(
                    p.name.startswith(".tmp-") for p in (store / "shards").glob("*")):
                time.sleep(0.0005)
        else:  # anywhere in a run: import, opening, recording, writing, closing
            time.sleep(rng.uniform(0, duration))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        elif proc.wait() == 0:  # it finished first: check it, and start afresh to kill again
            assert by_id(store)[1] == expected
            shutil.rmtree(store)
        proc.wait()
    assert kills >= 5
    complete(store, backend)
    s, got = by_id(store)
    assert got == expected and s.complete
    assert not [p for p in (store / "shards").iterdir() if p.name.startswith(".tmp")]


def tmpfs_folders(tmp_path):
    """A mount point for a small tmpfs and a folder for what the test brings out of it; skips
    the test, with the reason, where no tmpfs can be mounted in a private mount namespace
    (``unshare -rm``: no root needed where user namespaces are allowed)."""
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs tmpfs {tmp_path}"],
                           capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (unshare -rm: {probe.stderr.strip()})")
    (tmp_path / "mnt").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path / "mnt", tmp_path / "out"


TMPFS_SCRIPT = r"""
set -e
mount -t tmpfs -o size=2m tmpfs "$1"
python=$2; worker=$3; out=$4
head -c 1400000 /dev/zero > "$1/spacer"     # taken by something else
set +e
"$python" "$worker" "$1/store" hdf5 300 > /dev/null 2> "$out/full.err"
echo $? > "$out/full.rc"
set -e
ls -a "$1/store/shards" > "$out/full.ls"
cp -r "$1/store" "$out/after-full"
rm "$1/spacer"                             # space is freed
"$python" "$worker" "$1/store" hdf5 300 > /dev/null 2> "$out/resumed.err"
cp -r "$1/store" "$out/resumed"
"""


def test_a_full_disk_gives_one_message_and_the_same_command_resumes(tmp_path):
    # a real full disk: a 2 MB tmpfs in a private mount namespace
    mnt, out = tmpfs_folders(tmp_path)
    done = subprocess.run(["unshare", "-rm", "sh", "-c", TMPFS_SCRIPT, "sh", str(mnt),
                           sys.executable, str(WORKER), str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    err = (out / "full.err").read_text()
    assert (out / "full.rc").read_text().strip() == "2", err
    assert "the disk is full" in err and "Traceback" not in err, err
    assert ".tmp-" not in (out / "full.ls").read_text()  # no temporary shard left
    partial = open_store(out / "after-full", verify=True)
    assert 0 < len(partial) < 300 and len(partial) % 8 == 0  # whole committed shards only
    reference = tmp_path / "reference"
    complete(reference, "hdf5", 300)
    s, got = by_id(out / "resumed")
    assert s.complete and got == by_id(reference)[1]
    np.testing.assert_array_equal(partial.read("layers.3"),
                                  s.read("layers.3", ids=list(partial.examples["id"])))


RUN_SCRIPT = r"""
mount -t tmpfs -o size=120k tmpfs "$1" || exit 97
shift
"$@" > /dev/null 2> "$OUT/full.err"
echo $? > "$OUT/full.rc"
ls -a "$MNT/out/store/shards" > "$OUT/full.ls"
mount -o remount,size=8m "$MNT"                 # space is freed
"$@" > /dev/null 2> "$OUT/resumed.err"
echo $? > "$OUT/resumed.rc"
cp -r "$MNT/out/store" "$OUT/store"
"""


@pytest.mark.reference_leg  # the store's own full-disk test runs on both legs
def test_a_run_on_a_full_disk_stops_with_one_message_and_resumes_identically(tmp_path):
    mnt, out = tmpfs_folders(tmp_path)
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "probekit.run", str(root / "recipes" / "demo.yaml"),
               "data.max_sentences=5", "data.languages=[eng,fra]", "record.shard_size=2",
               "--stage", "extract", "--quiet", "analysis.control=null"]
    done = subprocess.run(["unshare", "-rm", "sh", "-c", RUN_SCRIPT, "sh", str(mnt), *command,
                           "--out", str(mnt / "out")], capture_output=True, text=True,
                          timeout=300, cwd=root, env={**os.environ, "OUT": str(out),
                                                      "MNT": str(mnt)})
    assert done.returncode == 0, done.stderr
    err = (out / "full.err").read_text()
    assert (out / "full.rc").read_text().strip() == "2", err
    assert "the disk is full" in err and "same command again to resume" in err, err
    assert "Traceback" not in err and "Logging error" not in err, err
    assert ".tmp-" not in (out / "full.ls").read_text()
    assert (out / "resumed.rc").read_text().strip() == "0", (out / "resumed.err").read_text()
    reference = subprocess.run([*command, "--out", str(tmp_path / "reference")], cwd=root,
                               capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    s, got = by_id(out / "store")
    assert s.complete and got == by_id(tmp_path / "reference" / "store")[1]
