"""Shards written from the recorded arrays where they lie: the sparse file HDF5 builds its
headers in, the shard images of both backends read back by h5py and the safetensors library,
and token arrays in every form a caller hands the writer."""

import json
import random

import h5py
import numpy as np
import pytest
import torch
from safetensors import safe_open

from probekit import StoreWriter, open_store
from probekit.errors import StoreError
from probekit.store.image import SparseFile
from probekit.store.rows import token_arrays
from probekit.store.shards import LayerArrays, shard_image


def test_a_sparse_file_holds_what_a_real_file_holds(tmp_path):
    rng = random.Random(0)
    for trial in range(200):
        sparse = SparseFile()
        with open(tmp_path / "real.bin", "w+b") as real:
            for _ in range(rng.randint(1, 30)):
                op, at = rng.random(), rng.randint(0, 250)
                real.seek(at)
                sparse.seek(at)
                if op < 0.7:
                    data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
                    assert sparse.write(data) == real.write(data)
                elif op < 0.85:
                    a, b = bytearray(rng.randint(0, 50)), None
                    b = bytearray(len(a))
                    assert sparse.readinto(a) == real.readinto(b)
                    assert a == b, trial
                else:
                    real.truncate(at)
                    sparse.truncate(at)
                assert sparse.seek(0, 2) == real.seek(0, 2), trial
            real.seek(0)
            assert sparse.image([]).tobytes() == real.read(), trial


def _split_views(lengths, width, dtype, seed):
    """What a Recorder hands over at token level: views of one tensor, one per example."""
    g = torch.Generator().manual_seed(seed)
    flat = torch.randn(sum(lengths), width, generator=g).to(dtype)
    return flat, list(flat.split(lengths))


@pytest.mark.parametrize("backend", ["hdf5", "safetensors"])
def test_token_rows_are_written_from_the_recorded_tensor_itself(tmp_path, backend):
    lengths = [3, 0, 5, 2]
    flat, views = _split_views(lengths, 8, torch.float16, 0)
    pieces, dtype = token_arrays("enc.0", views)
    layers = {"enc.0": LayerArrays("tokens", pieces, dtype, np.array(lengths)),
              "enc.1": LayerArrays("pooled", [np.ones((4, 8), np.float32)], "float32")}
    image = shard_image(backend, {"id": ["a", "b", "c", "d"]}, layers)
    recorded = flat.numpy()
    assert any(isinstance(p, np.ndarray) and np.shares_memory(p, recorded)
               for p in image.parts), "the token rows were copied into the shard image"
    path = tmp_path / f"shard.{backend}"
    image.write(path)
    assert path.stat().st_size == image.size
    if backend == "hdf5":
        with h5py.File(path, "r") as f:
            np.testing.assert_array_equal(f["layers/enc.0/tokens"][:], recorded)
            np.testing.assert_array_equal(f["layers/enc.0/lengths"][:], lengths)
            np.testing.assert_array_equal(f["layers/enc.1/pooled"][:], np.ones((4, 8)))
            assert list(f["examples/id"].asstr()[:]) == ["a", "b", "c", "d"]
    else:
        with safe_open(str(path), framework="pt") as f:
            assert torch.equal(f.get_tensor("enc.0/tokens"), flat)
            assert f.get_tensor("enc.0/lengths").tolist() == lengths
            assert torch.equal(f.get_tensor("enc.1/pooled"), torch.ones(4, 8))
            assert json.loads(f.metadata()["probekit"])["examples"]["id"] == ["a", "b", "c", "d"]


@pytest.mark.parametrize("backend", ["hdf5", "safetensors"])
def test_token_arrays_in_every_form_round_trip_across_shard_boundaries(tmp_path, backend):
    rng = np.random.default_rng(1)
    expected: dict[str, list[np.ndarray]] = {"views": [], "bf16": [], "strided": []}
    with StoreWriter(tmp_path / "s", backend=backend, shard_size=5, recipe_hash="r") as w:
        for batch in range(4):  # 3 examples a batch: shards end inside batches
            lengths = [int(n) for n in rng.integers(0, 6, 3)]
            lengths[batch % 3] = 0  # an empty example, at the start, middle and end
            _, views = _split_views(lengths, 6, torch.float16, batch)
            bf16 = [torch.randn(n, 6, dtype=torch.float64).to(torch.bfloat16) for n in lengths]
            wide = [rng.standard_normal((n, 12)).astype(np.float32) for n in lengths]
            w.add([{"id": f"{batch}/{k}"} for k in range(3)],
                  {"views": views, "bf16": bf16, "strided": [x[:, ::2] for x in wide]})
            expected["views"] += [v.numpy().copy() for v in views]
            expected["bf16"] += [b.float().numpy() for b in bf16]
            expected["strided"] += [x[:, ::2].copy() for x in wide]
    store = open_store(tmp_path / "s", verify=True)  # every shard's SHA-256 checked
    assert len(store) == 12 and len(store.shards) == 3
    for layer, arrays in expected.items():
        for k, want in enumerate(arrays):
            got = store.tokens(layer, f"{k // 3}/{k % 3}")
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)


def test_token_arrays_of_mixed_widths_or_dtypes_are_refused_clearly(tmp_path):
    widths = [np.zeros((2, 4), np.float32), np.zeros((2, 5), np.float32)]
    dtypes = [np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float16)]
    shape = r"layer 'enc.0': example 1's token array has shape \(2, 5\); every example's must be"
    with pytest.raises(StoreError, match=shape), \
            StoreWriter(tmp_path / "s", shard_size=4, recipe_hash="r") as w:
        w.add([{"id": "a"}, {"id": "b"}], {"enc.0": widths})
    with pytest.raises(StoreError, match="mix dtypes float16, float32; record them in one"), \
            StoreWriter(tmp_path / "t", shard_size=4, recipe_hash="r") as w:
        w.add([{"id": "a"}, {"id": "b"}], {"enc.0": dtypes})
