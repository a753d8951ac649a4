"""A store follows its data. Each stored or skipped example keeps a fingerprint of what it was
made from (its columns, its audio file's size and modification time); a rerun redoes exactly the
examples whose data changed (an edited text, a replaced clip, a fixed text that was skipped),
removes those the data no longer has, and ends with the store a fresh run on the new data makes.
``--retry-skipped`` tries every skipped example again."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from probekit import open_store
from probekit.run import main

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
HEADER = "sentence\tlang\ttext\taudio\n"
LAYER = "speech_encoder.inner_layer_norm"


def demo_rows(langs=("eng", "fra"), n=6):
    rows = DEMO.joinpath("manifest.tsv").read_text().splitlines()[1:]
    return [r for r in rows if r.split("\t")[1] in langs and int(r.split("\t")[0]) <= n]


def write_case(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "audio").exists():
        shutil.copytree(DEMO / "audio", folder / "audio")
    (folder / "m.tsv").write_text(HEADER + "\n".join(rows) + "\n")
    (folder / "r.yaml").write_text(
        "name: r\ndata: {source: manifest, path: m.tsv, languages: "
        f"[{', '.join(sorted({r.split(chr(9))[1] for r in rows}))}], "
        "modalities: [text, speech]}\nmodel: {spec: seamless_m4t_v2, variant: tiny}\n"
        "record: {dtype: float32, batch_size: 4, shard_size: 4}\n")
    return folder / "r.yaml"


def extract(recipe, out, *extra):
    assert main([str(recipe), "--out", str(out), "--quiet", "--stage", "extract", *extra]) == 0
    return open_store(out / "store")


def contents(store):
    """Every example's columns (but the fingerprint) and its values of every layer."""
    table = store.examples.set_index("id")
    out = {ex_id: ({k: (None if v != v else v) for k, v in table.loc[ex_id].items()  # NaN
                    if k != "fingerprint"}, {}) for ex_id in sorted(table.index)}
    for layer in store.layers:
        ids = list(store.recorded(layer)["id"])
        for ex_id, value in zip(ids, store.read(layer, ids=ids), strict=True):
            out[ex_id][1][layer] = value
    return out


def assert_same_store(a, b, close=()):
    """Equal columns and values; the examples in ``close`` only to float32 rounding (they ran
    in a batch one example shorter, an example having been skipped, and padding may change the
    last bits)."""
    ca, cb = contents(a), contents(b)
    assert sorted(ca) == sorted(cb)
    for ex_id in ca:
        assert ca[ex_id][0] == cb[ex_id][0], ex_id
        for layer, value in ca[ex_id][1].items():
            if ex_id in close:
                np.testing.assert_allclose(value, cb[ex_id][1][layer], rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(value, cb[ex_id][1][layer],
                                              err_msg=f"{ex_id} {layer}")
    assert sorted(map(json.dumps, a.skipped)) == sorted(map(json.dumps, b.skipped))


def test_a_rerun_redoes_exactly_what_changed_in_the_data(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO)
    rows = demo_rows()
    rows[2] = rows[2].split("\t")[0] + "\teng\tbroken \0 text\t" + rows[2].split("\t")[3]
    recipe = write_case(tmp_path / "case", rows)
    out = tmp_path / "out"
    store = extract(recipe, out)
    assert sorted(s["id"] for s in store.skipped) == ["eng/speech/3", "eng/text/3"]
    assert len(store) == 22
    before = contents(store)

    # edit a stored text, fix the skipped one, replace a clip, drop a sentence's French text
    rows = demo_rows()
    rows[0] = rows[0].replace("The bread is still warm", "The bread is cold")
    rows = [r for r in rows if not r.startswith("6\tfra")]
    write_case(tmp_path / "case", rows)
    clip = tmp_path / "case" / "audio" / "fra" / "2.ogg"
    shutil.copyfile(tmp_path / "case" / "audio" / "fra" / "4.ogg", clip)
    caplog.clear()
    store = extract(recipe, out)
    log = caplog.text
    assert "the data of 5 examples changed since they were stored or skipped" in log
    for ex_id in ("eng/text/1", "eng/speech/1", "eng/text/3", "eng/speech/3", "fra/speech/2"):
        assert ex_id in log
    assert "4 examples in the store are no longer in the data" in log  # sentence 6 everywhere
    assert all(f"{lang}/{m}/6" in log for lang in ("eng", "fra") for m in ("text", "speech"))
    assert store.skipped == [] and len(store) == 20

    # the store is the one a fresh run on the new data makes, byte for byte
    shutil.copytree(tmp_path / "case", tmp_path / "fresh")
    fresh = extract(tmp_path / "fresh" / "r.yaml", tmp_path / "fresh-out")
    assert_same_store(store, fresh)
    after = contents(store)
    assert after["eng/text/1"][0]["text"] == "The bread is cold from the oven."
    assert not np.array_equal(after["fra/speech/2"][1][LAYER],
                              before["fra/speech/2"][1][LAYER])
    np.testing.assert_array_equal(after["fra/speech/4"][1][LAYER],
                                  after["fra/speech/2"][1][LAYER])

    caplog.clear()  # and a third run has nothing to do
    extract(recipe, out)
    assert "all 20 examples already in the store" in caplog.text


def test_a_copy_that_keeps_times_is_the_same_data_and_one_that_does_not_is_redone(tmp_path):
    from probekit.pipeline.inputs import fingerprint

    clip = tmp_path / "a.ogg"
    shutil.copyfile(DEMO / "audio" / "eng" / "1.ogg", clip)
    ex = {"id": "eng/speech/1", "sentence": "1", "lang": "eng", "modality": "speech",
          "text": "x", "audio_path": str(clip)}
    first = fingerprint(ex, tmp_path)
    assert fingerprint(dict(ex), tmp_path) == first
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy2(clip, moved / "a.ogg")  # the whole data folder moved, times kept
    assert fingerprint(ex | {"audio_path": str(moved / "a.ogg")}, moved) == first
    os.utime(clip, ns=(0, 0))
    assert fingerprint(ex, tmp_path) != first
    assert fingerprint(ex | {"text": "y"}, tmp_path) != fingerprint(ex, tmp_path)
    clip.unlink()  # a missing clip has a fingerprint too (it is skipped, and redone once back)
    assert fingerprint(ex, tmp_path) != first


@pytest.mark.reference_leg  # probekit's own logic, the same on either stack
def test_retry_skipped_tries_every_skip_again(tmp_path, caplog):
    """A clip that could not be read is skipped; once it is back (a new fingerprint) it is
    redone. A skip whose data is the same now (a read that failed for a passing reason) stays
    skipped on a plain rerun, and ``--retry-skipped`` tries it again."""
    import logging

    from probekit.pipeline.inputs import examples_for, fingerprint

    rows = demo_rows(("eng",), 4)
    recipe = write_case(tmp_path / "case", rows)
    clip = tmp_path / "case" / "audio" / "eng" / "2.ogg"
    kept = clip.read_bytes()
    clip.unlink()
    out = tmp_path / "out"
    store = extract(recipe, out)
    assert [s["id"] for s in store.skipped] == ["eng/speech/2"]
    clip.write_bytes(kept)  # back: its fingerprint differs from the missing file's
    store = extract(recipe, out)
    assert store.skipped == [] and len(store) == 8

    clip.unlink()  # skipped again, then back, but its skip says the data is as it is now
    extract(recipe, out, "--overwrite")
    clip.write_bytes(kept)
    from probekit.pipeline import resolve_run
    from probekit.recipe import load_recipe

    run = resolve_run(load_recipe(str(recipe), []), out)
    now = {ex["id"]: fingerprint(ex, run.data_root) for ex in examples_for(run.data)[0]}
    path = out / "store" / "manifest-r0.json"
    manifest = json.loads(path.read_text())
    manifest["skipped"][0]["fingerprint"] = now["eng/speech/2"]
    path.write_text(json.dumps(manifest))
    caplog.set_level(logging.INFO)
    assert [s["id"] for s in extract(recipe, out).skipped] == ["eng/speech/2"]
    caplog.clear()
    store = extract(recipe, out, "--retry-skipped")
    assert "1 skipped examples are tried again (--retry-skipped)" in caplog.text
    assert store.skipped == [] and len(store) == 8
    # eng/speech/2 ran in the full batch, as in a fresh run; its neighbours were stored when
    # it was missing from their batch
    assert_same_store(store, extract(write_case(tmp_path / "fresh", rows), tmp_path / "fresh-out"),
                      close={"eng/speech/1", "eng/speech/3", "eng/speech/4"})


def test_an_older_store_without_fingerprints_is_kept_and_said(tmp_path, caplog):
    import logging

    rows = demo_rows(("eng",), 4)
    recipe = write_case(tmp_path / "case", rows)
    out = tmp_path / "out"
    extract(recipe, out)
    path = out / "store" / "manifest-r0.json"
    manifest = json.loads(path.read_text())
    for shard in manifest["shards"]:
        shard["examples"].pop("fingerprint")
    path.write_text(json.dumps(manifest))
    caplog.set_level(logging.INFO)
    store = extract(recipe, out)
    assert len(store) == 8
    assert "8 stored examples predate data fingerprints" in caplog.text
