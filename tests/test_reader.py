"""The notebook reader: layers select the examples that hold them, paired() aligns two
selections by sentence, and to_xarray picks the layers every selected example holds."""

import numpy as np
import pytest

from probekit import StoreWriter, open_store
from probekit.errors import StoreError

SENTENCES = 6


@pytest.fixture
def store(tmp_path):
    """Speech examples hold enc.speech and dec; text examples hold enc.text and dec (a shared
    decoder); French lacks sentence 5 in speech. Values encode (lang, modality, sentence)."""
    def value(lang, modality, sentence):
        return np.full((1, 4), {"eng": 0, "fra": 100}[lang] + {"speech": 10, "text": 20}[modality]
                       + sentence, np.float32)

    with StoreWriter(tmp_path / "s", recipe_hash="r", shard_size=3) as w:
        for lang in ("eng", "fra"):
            for modality, own in (("speech", "enc.speech"), ("text", "enc.text")):
                for k in range(SENTENCES):
                    if (lang, modality, k) == ("fra", "speech", 5):
                        continue
                    meta = [{"id": f"{lang}/{modality}/{k}", "sentence": str(k), "lang": lang,
                             "modality": modality}]
                    v = value(lang, modality, k)
                    w.add(meta, {own: v, "dec": v + 0.5})
    return open_store(tmp_path / "s")


def test_a_layer_selects_the_examples_that_hold_it(store):
    x = store.read("enc.speech", lang=["eng", "fra"])
    assert x.shape == (2 * SENTENCES - 1, 4)
    assert set(x[:, 0] % 100 // 10) == {1}  # speech only
    assert store.to_torch("enc.text", lang="fra").shape == (SENTENCES, 4)
    with pytest.raises(StoreError, match="was not recorded for 6 of the selected examples"):
        store.read("enc.speech", lang="eng", modality=["speech", "text"])  # explicit: checked


def test_paired_aligns_two_selections_by_sentence(store):
    sp, tx, keys = store.paired("enc.speech", "enc.text", lang="fra", modality="speech",
                                modality_b="text")
    assert list(keys["sentence"]) == [str(k) for k in range(5)]  # fra speech lacks sentence 5
    np.testing.assert_array_equal(sp[:, 0], 110 + np.arange(5))
    np.testing.assert_array_equal(tx[:, 0], 120 + np.arange(5))
    fra, eng, keys = store.paired("enc.text", "enc.text", lang="fra", lang_b="eng")
    np.testing.assert_array_equal(fra[:, 0] - eng[:, 0], 100)
    assert list(keys["id_a"])[:2] == ["fra/text/0", "fra/text/1"]


def test_to_xarray_takes_the_layers_every_selected_example_holds(store):
    pytest.importorskip("xarray")
    both = store.to_xarray(lang=["eng", "fra"])
    assert list(both.layer.values) == ["dec"] and both.shape == (4 * SENTENCES - 1, 1, 4)
    text = store.to_xarray(lang="eng", modality="text")
    assert set(text.layer.values) == {"enc.text", "dec"}
    assert set(text.modality.values) == {"text"}


def test_stacks_give_the_xarray_stack_and_depth_coordinates(tmp_path):
    pytest.importorskip("xarray")
    layers = ["enc.layers.0", "enc.layers.1", "enc.layers.2", "proj", "dec.block.0",
              "dec.block.1", "extra.4", "extra.5"]
    stacks = {"encoder": ["enc.layers.*"], "decoder": [r"re:dec\.block\.\d+"]}
    with StoreWriter(tmp_path / "s", recipe_hash="r", provenance={"stacks": stacks}) as w:
        for k in range(3):
            w.add([{"id": f"eng/text/{k}", "sentence": str(k), "lang": "eng", "modality": "text"}],
                  {n: np.full((1, 2), 10 * i + k, np.float32) for i, n in enumerate(layers)})
    store = open_store(tmp_path / "s")
    assert store.stacks == {"encoder": layers[:3], "decoder": layers[4:6], "proj": ["proj"],
                            "extra": ["extra.4", "extra.5"]}  # unnamed: by name less the index
    assert store.depth("dec.block.1") == ("decoder", 1)
    whole = store.to_xarray()
    assert list(whole["stack"].values) == (["encoder"] * 3 + ["proj"] + ["decoder"] * 2
                                           + ["extra"] * 2)
    assert list(whole.depth.values) == [0, 1, 2, 0, 0, 1, 0, 1]
    dec = store.to_xarray(stack="decoder")
    assert list(dec.layer.values) == layers[4:6] and list(dec.depth.values) == [0, 1]
    np.testing.assert_array_equal(dec.sel(layer="dec.block.1").values[:, 0], [50, 51, 52])
    np.testing.assert_array_equal(
        whole.where(whole["stack"] == "encoder", drop=True).mean("dim").values,
        np.arange(3)[:, None] + [0, 10, 20])
    with pytest.raises(StoreError, match="no stack 'decoders'.*closest: decoder"):
        store.to_xarray(stack="decoders")


def test_a_lazy_xarray_reads_nothing_until_computed_then_equals_the_eager_one(store,
                                                                               monkeypatch):
    """to_xarray(lazy=True): a dask-backed DataArray of chunk-sized blocks; building it reads
    only one row (for the dtype), computing a selection reads only its blocks, and the values
    equal the in-memory DataArray's."""
    pytest.importorskip("xarray")
    pytest.importorskip("dask")
    eager = store.to_xarray(lang=["eng", "fra"], modality="text")
    reads = []
    read = type(store).read

    def counted(self, layer, *args, ids=None, **kwargs):
        reads.append((layer, len(ids) if ids is not None else None))
        return read(self, layer, *args, ids=ids, **kwargs)

    monkeypatch.setattr(type(store), "read", counted)
    lazy = store.to_xarray(lang=["eng", "fra"], modality="text", lazy=True, chunk=4)
    assert reads == [(str(eager.layer.values[0]), 1)] and lazy.chunks is not None
    assert lazy.data.chunks[0] == (4, 4, 4) and lazy.data.chunks[1] == (1, 1)
    assert list(lazy.layer.values) == list(eager.layer.values)
    reads.clear()
    first = lazy.isel(example=slice(0, 4)).sel(layer="dec").values  # one block
    assert reads == [("dec", 4)]
    np.testing.assert_array_equal(first, eager.isel(example=slice(0, 4)).sel(layer="dec").values)
    np.testing.assert_array_equal(lazy.values, eager.values)
    assert lazy.dtype == eager.dtype == np.float32
    np.testing.assert_array_equal(lazy.groupby("lang").mean("example").values,
                                  eager.groupby("lang").mean("example").values)
    with pytest.raises(StoreError, match="chunk must be at least 1"):
        store.to_xarray(lazy=True, chunk=0, modality="text")
