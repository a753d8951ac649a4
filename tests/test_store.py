"""Stores: round trips, crash safety with real killed processes, refusals, NaN flagging."""

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from probekit import StoreWriter, open_store
from probekit.errors import RecipeMismatchError, StoreError, StoreLockedError

WORKER = Path(__file__).with_name("store_worker.py")
BACKENDS = ["hdf5", "safetensors"]


def worker(store, backend, n, *options):
    return subprocess.Popen([sys.executable, str(WORKER), str(store), backend, str(n),
                             *map(str, options)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def all_arrays(store):
    s = open_store(store)
    out = {layer: s.read(layer) for layer in s.layers if s.schema[layer]["kind"] == "pooled"}
    for layer in s.layers:
        if s.schema[layer]["kind"] == "tokens":
            out[layer] = np.concatenate(s.read_tokens(layer))
    return s, out


def random_batch(start, b, d=6, rng=None, lang="eng"):
    rng = rng or np.random.default_rng(start)
    meta = [{"id": f"{lang}/{start + k}", "sentence": str(start + k), "lang": lang,
             "modality": "speech", "duration": 1.5 + k} for k in range(b)]
    pooled = rng.standard_normal((b, d)).astype(np.float32)
    tokens = [rng.standard_normal((2 + k, d)).astype(np.float16) for k in range(b)]
    return meta, pooled, tokens


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_pooled_tokens_and_bfloat16(tmp_path, backend):
    store = tmp_path / "s"
    written = {"p": [], "t": [], "bf": [], "ids": []}
    with StoreWriter(store, backend=backend, shard_size=4, recipe_hash="r1",
                     provenance={"model_id": "tiny", "pool": "mean"}) as w:
        for start in range(0, 11, 3):
            lang = "fra" if start % 2 else "eng"
            meta, pooled, tokens = random_batch(start, 3, lang=lang)
            bf = torch.from_numpy(pooled).to(torch.bfloat16)
            w.add(meta, {"enc.0": pooled, "enc.0:tok": tokens, "enc.1": bf})
            written["p"].append(pooled)
            written["t"] += tokens
            written["bf"].append(bf.float().numpy())
            written["ids"] += [m["id"] for m in meta]
    s = open_store(store)
    assert s.complete and len(s) == 12 and s.layers == ["enc.0", "enc.0:tok", "enc.1"]
    assert list(s.examples["id"]) == written["ids"]
    assert s.provenance["model_id"] == "tiny" and s.recipe_hash == "r1"
    assert len(list((store / "shards").iterdir())) == 3
    np.testing.assert_array_equal(s.read("enc.0"), np.concatenate(written["p"]))
    np.testing.assert_array_equal(s.read("enc.1"), np.concatenate(written["bf"]))
    assert s.read("enc.1").dtype == np.float32
    for i, ex_id in enumerate(written["ids"]):
        got = s.tokens("enc.0:tok", ex_id)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, written["t"][i])
    # selection keeps the order of .examples; ids keep the order given
    fra = s.select(lang="fra")
    np.testing.assert_array_equal(s.read("enc.0", lang="fra"),
                                  np.concatenate(written["p"])[fra.index.to_numpy()])
    ids = [written["ids"][7], written["ids"][2]]
    np.testing.assert_array_equal(s.read("enc.0", ids=ids),
                                  np.concatenate(written["p"])[[7, 2]])
    # token layers pool to the mean of their valid rows
    np.testing.assert_allclose(s.read("enc.0:tok")[5],
                               written["t"][5].astype(np.float64).mean(0), rtol=1e-3)
    assert s.to_torch("enc.0", lang="eng").shape == (len(s.select(lang="eng")), 6)
    xa = s.to_xarray(layers=["enc.0", "enc.1"], lang=["eng", "fra"])
    assert xa.dims == ("example", "layer", "dim") and xa.shape == (12, 2, 6)
    assert list(xa.coords["lang"].values) == list(s.examples["lang"])
    np.testing.assert_array_equal(xa.sel(layer="enc.1").values, s.read("enc.1"))
    with pytest.raises(StoreError, match="no example has lang 'deu'"):
        s.read("enc.0", lang="deu")
    with pytest.raises(KeyError, match="closest: .*enc.0"):
        s.read("enc.O")


@pytest.mark.parametrize("backend", BACKENDS)
def test_speech_and_text_batches_record_different_layer_sets(tmp_path, backend):
    store = tmp_path / "s"
    rng = np.random.default_rng(0)
    speech = [{"id": f"s{i}", "modality": "speech", "lang": "eng"} for i in range(3)]
    text = [{"id": f"t{i}", "modality": "text", "lang": "eng"} for i in range(3)]
    enc_s, enc_t, dec_s, dec_t = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(4))
    with StoreWriter(store, backend=backend, recipe_hash="r", shard_size=4) as w:
        w.add(speech, {"speech_enc.0": enc_s, "dec.0": dec_s})
        w.add(text, {"text_enc.0": enc_t, "dec.0": dec_t})
    with StoreWriter(store, backend=backend, recipe_hash="r", shard_size=4) as w:
        with pytest.raises(StoreError, match="must keep its pooling, width and dtype"):
            w.add([{"id": "x"}], {"dec.0": rng.standard_normal((1, 5)).astype(np.float32)})
            w.flush()
        w.close(complete=False)
    s = open_store(store)
    assert s.layers == ["speech_enc.0", "dec.0", "text_enc.0"]
    np.testing.assert_array_equal(s.read("dec.0"), np.concatenate([dec_s, dec_t]))
    np.testing.assert_array_equal(s.read("text_enc.0", modality="text"), enc_t)
    assert list(s.recorded("speech_enc.0")["id"]) == ["s0", "s1", "s2"]
    np.testing.assert_array_equal(s.read("speech_enc.0"), enc_s)  # the examples holding it
    with pytest.raises(StoreError, match="not recorded for 3 of the selected examples"):
        s.read("speech_enc.0", modality=["speech", "text"])


@pytest.mark.parametrize("compression", ["lzf", "gzip"])
def test_compressed_hdf5_round_trip(tmp_path, compression):
    meta, pooled, tokens = random_batch(0, 5)
    with StoreWriter(tmp_path / "s", recipe_hash="r", compression=compression) as w:
        w.add(meta, {"a": pooled, "t": tokens})
    s = open_store(tmp_path / "s")
    np.testing.assert_array_equal(s.read("a"), pooled)
    np.testing.assert_array_equal(s.tokens("t", "eng/4"), tokens[4])


def test_a_changed_byte_in_token_rows_fails_the_read_of_that_example_only(tmp_path):
    import zlib

    import h5py
    store = tmp_path / "s"
    meta, _, tokens = random_batch(0, 4)
    bf = [torch.from_numpy(t.astype(np.float32)).to(torch.bfloat16) for t in tokens]
    with StoreWriter(store, recipe_hash="r") as w:
        w.add(meta, {"t": tokens, "bf": bf})
    shard = next((store / "shards").iterdir())
    with h5py.File(shard, "r") as f:  # one CRC-32 per example, over its rows as stored
        assert list(f["layers/t/crc32"][:]) == [zlib.crc32(t.tobytes()) for t in tokens]
        assert list(f["layers/bf/crc32"][:]) == [
            zlib.crc32(t.view(torch.int16).numpy().tobytes()) for t in bf]
        start = f["layers/t/tokens"].id.get_offset()
    row = len(tokens[0]) + len(tokens[1])  # example 2's first row
    raw = bytearray(shard.read_bytes())
    raw[start + row * tokens[0].nbytes // len(tokens[0]) + 3] ^= 0x5A
    shard.write_bytes(bytes(raw))
    s = open_store(store)
    with pytest.raises(StoreError, match=r"is damaged \(layer t rows .* fail their CRC-32\)"
                                         r".*the same command"):
        s.tokens("t", "eng/2")
    for k in (0, 1, 3):
        np.testing.assert_array_equal(s.tokens("t", f"eng/{k}"), tokens[k])
        np.testing.assert_array_equal(s.tokens("bf", f"eng/{k}"), bf[k].float().numpy())
    s.close()
    with h5py.File(shard, "a") as f:  # shards written before per-example CRCs still read
        del f["layers/t/crc32"]
    assert open_store(store).tokens("t", "eng/2").shape == tokens[2].shape


def test_opening_reads_metadata_only(tmp_path):
    store = tmp_path / "s"
    with StoreWriter(store, shard_size=2, recipe_hash="r") as w:
        meta, pooled, _ = random_batch(0, 4)
        w.add(meta, {"a": pooled})
    for shard in (store / "shards").iterdir():  # make the shard files unreadable as HDF5
        shard.write_bytes(b"\0" * shard.stat().st_size)
    s = open_store(store)  # still opens: only JSON was read
    assert len(s) == 4 and s.layers == ["a"]
    with pytest.raises(StoreError, match="is damaged.*the same command"):
        s.read("a")


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_mid_write_then_resume_equals_uninterrupted(tmp_path, backend):
    n = 60
    reference = tmp_path / "reference"
    done = worker(reference, backend, n)
    assert done.wait(timeout=120) == 0, done.stderr.read()
    _, expected = all_arrays(reference)

    store = tmp_path / "killed"
    kills = 0
    for attempt in range(4):  # kill while a shard file is being written (or just after)
        proc = worker(store, backend, n, "--pause", 0.02)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            shards = store / "shards"
            if shards.is_dir() and (any(p.name.startswith(".tmp-") for p in shards.iterdir())
                                    or len(list(shards.iterdir())) > attempt + 1):
                break
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2
    final = worker(store, backend, n)
    assert final.wait(timeout=120) == 0, final.stderr.read()
    s, got = all_arrays(store)
    assert s.complete
    assert list(s.examples["id"]) == [f"ex{i:04d}" for i in range(n)]
    assert set(got) == set(expected)
    for layer, arr in expected.items():
        assert got[layer].dtype == arr.dtype
        assert got[layer].tobytes() == arr.tobytes(), layer
    assert not [p for p in (store / "shards").iterdir() if p.name.startswith(".tmp")]


def test_recipe_hash_mismatch_is_refused_unless_overwrite(tmp_path):
    store = tmp_path / "s"
    with StoreWriter(store, recipe_hash="aaa") as w:
        w.add(*random_batch(0, 2)[:1], {"x": random_batch(0, 2)[1]})
    with pytest.raises(RecipeMismatchError, match="recipe aaa.*this run is recipe bbb"):
        StoreWriter(store, recipe_hash="bbb")
    assert len(open_store(store)) == 2  # nothing was lost
    with StoreWriter(store, recipe_hash="bbb", overwrite=True) as w:
        assert not w.done_ids
    assert open_store(store).recipe_hash == "bbb" and len(open_store(store)) == 0


def test_resume_skips_committed_ids_and_refuses_duplicates(tmp_path):
    store = tmp_path / "s"
    with StoreWriter(store, recipe_hash="r", shard_size=2) as w:
        meta, pooled, _ = random_batch(0, 3)
        w.add(meta, {"x": pooled})
        w.skip("eng/99", "empty audio")
    with StoreWriter(store, recipe_hash="r", shard_size=2) as w:
        assert w.done_ids == {"eng/0", "eng/1", "eng/2", "eng/99"}
        with pytest.raises(StoreError, match="already in store"):
            w.add(meta[:1], {"x": pooled[:1]})
    s = open_store(store)
    assert s.skipped == [{"id": "eng/99", "reason": "empty audio"}]


def test_skips_queued_behind_shard_writes_are_all_committed(tmp_path):
    # the writer thread swaps its list of pending skips when it commits a shard; a skip queued
    # just after a batch that completes a shard must land in the next commit, never be lost
    store = tmp_path / "s"
    with StoreWriter(store, recipe_hash="r", shard_size=4) as w:
        for i in range(20):
            meta, pooled, _ = random_batch(4 * i, 4, d=256)
            w.add(meta, {f"x{j}": pooled for j in range(8)})
            w.skip(f"eng/skip{i}", "unreadable")
    assert sorted(s["id"] for s in open_store(store).skipped) == \
        sorted(f"eng/skip{i}" for i in range(20))


def test_a_second_uncoordinated_writer_is_refused(tmp_path):
    store = tmp_path / "s"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, probekit\n"
         "w = probekit.StoreWriter(sys.argv[1], recipe_hash='r')\n"
         "print('ready', flush=True)\n"
         "sys.stdin.readline()\n"
         "w.close()\n", str(store)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match=f"being written by pid {holder.pid}"):
            StoreWriter(store, recipe_hash="r")
        # a cooperating writer with its own rank may write into the same store
        with StoreWriter(store, recipe_hash="r", rank=1) as other:
            meta, pooled, _ = random_batch(10, 2)
            other.add(meta, {"x": pooled})
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    assert len(open_store(store)) == 2


def test_cooperating_ranks_make_one_logical_store(tmp_path):
    store = tmp_path / "s"
    procs = [worker(store, "hdf5", 20, "--rank", rank, "--ranks", 2) for rank in (0, 1)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    s = open_store(store)
    assert s.complete and sorted(s.examples["id"]) == [f"ex{i:04d}" for i in range(20)]
    reference = tmp_path / "one"
    assert worker(reference, "hdf5", 20).wait(timeout=120) == 0
    r = open_store(reference)
    ids = list(r.examples["id"])
    np.testing.assert_array_equal(s.read("layers.3", ids=ids), r.read("layers.3"))


def test_nonfinite_activations_are_flagged_and_reported(tmp_path, caplog):
    store = tmp_path / "s"
    meta, pooled, tokens = random_batch(0, 4)
    pooled[2, 3] = np.nan
    tokens[1][0, 0] = np.inf
    bf = torch.from_numpy(pooled).to(torch.bfloat16)
    bf[3, 0] = -float("inf")
    huge = np.full((4, 6), 6e307)  # row sums overflow, values are finite: not flagged
    with (caplog.at_level(logging.WARNING, logger="probekit.store"),
          StoreWriter(store, recipe_hash="r") as w):
        w.add(meta, {"a": pooled, "b": tokens, "c": bf, "d": huge})
        w.flush()  # batches are checked in the writer thread
        assert sorted(w.nonfinite) == [("eng/1", "b"), ("eng/2", "a"), ("eng/2", "c"),
                                       ("eng/3", "c")]
    assert "eng/2 has NaN/inf" in caplog.text
    s = open_store(store)
    assert list(s.examples["nonfinite"]) == ["", "b", "a,c", "c"]
    assert len(s.read("a", drop_nonfinite=True)) == 1


def test_full_disk_gives_a_clear_error_and_keeps_committed_shards(tmp_path):
    store = tmp_path / "s"
    # a real write failure: the process may not write files larger than 20 kB, which the
    # manifest (it lists every example) passes after about 25 shards
    proc = worker(store, "hdf5", 400, "--fsize-limit", 20_000)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "cannot write" in err and "Traceback" not in err, err
    s = open_store(store)
    assert len(s) > 0 and len(s) % 8 == 0  # whole committed shards only
    assert s.read("layers.2").shape == (len(s), 16)
    assert len(s) < 400
    done = worker(store, "hdf5", 400)  # resuming without the limit completes the store
    assert done.wait(timeout=120) == 0
    assert len(open_store(store)) == 400


@pytest.mark.parametrize("background", [True, False])
def test_a_bad_batch_fails_the_writer_with_one_clear_error(tmp_path, background):
    store = tmp_path / "s"
    meta, pooled, _ = random_batch(0, 4)
    w = StoreWriter(store, recipe_hash="r", shard_size=2, background=background)
    w.add(meta[:2], {"a": pooled[:2]})
    with pytest.raises(StoreError, match=r"layer 'a': expected a \(2, D\) array"):
        w.add(meta[2:], {"a": pooled[:3]})  # wrong row count
        w.flush()
    with pytest.raises(StoreError):  # the writer stays failed rather than storing out of order
        w.add([{"id": "late"}], {"a": pooled[:1]})
        w.close()
    w.close(complete=False)
    s = open_store(store)
    assert list(s.examples["id"]) == ["eng/0", "eng/1"] and not s.complete


def test_unusable_folders_are_refused_clearly(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    with pytest.raises(StoreError, match="cannot create the store folder"):
        StoreWriter(a_file / "store")
    with pytest.raises(StoreError, match="is a file"):
        StoreWriter(a_file)
    busy = tmp_path / "notes"
    busy.mkdir()
    (busy / "thesis.tex").write_text("precious")
    with pytest.raises(StoreError, match="holds files that are not a probekit store"):
        StoreWriter(busy)
    assert (busy / "thesis.tex").read_text() == "precious" and a_file.read_text() == "keep me"
    with pytest.raises(StoreError, match="not a probekit store"):
        open_store(busy)
