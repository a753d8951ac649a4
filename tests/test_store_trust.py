"""Stores and recipes from anyone are data. What a manifest names must be one of the store's own
files: a shard path leaving the store (``..``, absolute) or a shard replaced by a symbolic link is
damage, named by ``verify``, refused by the reader, never followed. A spec naming a class by
import path runs no code unless the user allows it."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from probekit import StoreWriter, open_store
from probekit.errors import StoreError
from probekit.store.__main__ import main as store_cli


def write_store(root, seed=0, n=8):
    rng = np.random.default_rng(seed)
    with StoreWriter(root, backend="hdf5", shard_size=4, recipe_hash="r",
                     provenance={"model": "m"}) as writer:
        for start in range(0, n, 4):
            meta = [{"id": f"ex{i}", "sentence": str(i), "lang": "eng", "modality": "text",
                     "text": f"sentence {i}", "length": 3} for i in range(start, start + 4)]
            writer.add(meta, {"layers.0": rng.standard_normal((4, 8)).astype(np.float32)})
    return root


def edit_first_shard(store, **changes):
    path = store / "manifest-r0.json"
    manifest = json.loads(path.read_text())
    manifest["shards"][0].update(changes)
    path.write_text(json.dumps(manifest))
    return manifest["shards"][0]


def entry_of(path):
    from probekit.store.integrity import file_sha256

    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}


@pytest.mark.parametrize("where", ["sibling", "absolute"])
def test_a_shard_path_outside_the_store_is_damage_never_read(where, tmp_path, capsys):
    mine, theirs = write_store(tmp_path / "mine"), write_store(tmp_path / "theirs", seed=1)
    foreign = theirs / "shards" / "r0-000000.h5"
    # "../theirs/shards/r0-000000.h5", or its absolute path, with its real size and hash
    file = os.path.relpath(foreign, mine) if where == "sibling" else str(foreign.resolve())
    edit_first_shard(mine, file=file, **entry_of(foreign))
    assert store_cli(["verify", str(mine)]) == 1
    out = capsys.readouterr().out
    assert "not a file in the store's shards/ folder" in out and "1 damaged shard(s)" in out
    with pytest.raises(StoreError, match="not a file in the store's shards/ folder"):
        open_store(mine)
    with pytest.raises(StoreError, match="not a file in the store's shards/ folder"):
        open_store(mine, verify=True)
    from probekit.store.reader import Store

    unchecked = Store(mine, check=False)  # opened for listing: its reads are still refused
    with pytest.raises(StoreError, match="not read"):
        unchecked.read("layers.0", ids=["ex0"])


def test_a_shard_replaced_by_a_link_is_damage_never_followed(tmp_path, capsys):
    mine, theirs = write_store(tmp_path / "mine"), write_store(tmp_path / "theirs", seed=1)
    shard = mine / "shards" / "r0-000000.h5"
    foreign = theirs / "shards" / "r0-000000.h5"
    shard.unlink()
    shard.symlink_to(foreign)
    edit_first_shard(mine, **entry_of(foreign))  # even with the target's size and hash
    assert store_cli(["verify", str(mine)]) == 1
    assert "a symbolic link" in capsys.readouterr().out
    with pytest.raises(StoreError, match="symbolic link"):
        open_store(mine)


def test_the_writer_drops_a_foreign_entry_and_recomputes_its_examples(tmp_path):
    mine, theirs = write_store(tmp_path / "mine"), write_store(tmp_path / "theirs", seed=1)
    foreign = theirs / "shards" / "r0-000000.h5"
    edit_first_shard(mine, file=os.path.relpath(foreign, mine), **entry_of(foreign))
    before = foreign.read_bytes()
    with StoreWriter(mine, backend="hdf5", shard_size=4, recipe_hash="r") as writer:
        assert [d.file for d in writer.repaired] == [os.path.relpath(foreign, mine)]
        assert "ex0" not in writer.done_ids and "ex4" in writer.done_ids
    assert foreign.read_bytes() == before  # the other store is untouched


def test_a_recipe_runs_no_code_unless_the_user_allows_it(tmp_path):
    (tmp_path / "evilmod.py").write_text(
        "from pathlib import Path\nPath('pwned').write_text('ran')\nclass X: pass\n")
    (tmp_path / "evil.yaml").write_text("wrapper: evilmod:X\nmodalities: [text]\n"
                                        "stacks: {blocks: ['blocks.*']}\n")
    manifest = tmp_path / "m.tsv"
    manifest.write_text("sentence\tlang\ttext\n" + "".join(
        f"{i}\teng\tsentence {i}\n" for i in range(8)))
    (tmp_path / "recipe.yaml").write_text(
        "name: evil\ndata: {source: manifest, path: m.tsv, languages: [eng], "
        "modalities: [text]}\nmodel: {spec: evil.yaml, variant: tiny}\n")

    def run(*flags):  # `python -m` puts the working folder, with evilmod.py, on sys.path
        return subprocess.run([sys.executable, "-m", "probekit.run", "recipe.yaml", "--dry-run",
                               *flags], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PROBEKIT_ALLOW_CODE": ""})

    refused = run()
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "names a class by import path" in refused.stderr and "--allow-code" in refused.stderr
    assert not (tmp_path / "pwned").exists()
    allowed = run("--allow-code")  # the user's choice: imported (and then refused: not a Wrapper)
    assert (tmp_path / "pwned").read_text() == "ran"
    assert "not a subclass of probekit.wrappers.Wrapper" in allowed.stderr


def bomb(levels, key="name"):
    """A YAML "billion laughs" as the value of ``key``: ``levels`` lists of ten aliases of the
    one before, all defined inside the value itself."""
    lists = ["&l0 [" + ", ".join(["lol"] * 10) + "]"]
    lists += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    value = "[" + ", ".join(lists) + f", *l{levels - 1}]"
    return {"name": f"name: {value}\n",
            "groups": f"name: x\nanalysis:\n  groups:\n    family: {value}\n",
            "points": f"name: x\nanalysis:\n  adaptation_points: {value}\n"}[key]


@pytest.mark.parametrize("levels,key", [(8, "name"), (8, "groups"), (8, "points"),
                                        (4, "name"), (4, "groups"), (4, "points")])
def test_a_recipe_bomb_is_one_short_line(levels, key, tmp_path):
    from probekit.errors import RecipeError
    from probekit.recipe import load_recipe

    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(levels, key))
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    message = str(e.value)
    assert len(message) < 400 and "\n" not in message, message[:500]
    if levels == 8:  # 10^8 values: refused before any check looks at them
        assert "expands to more than 100000 values through YAML aliases" in message
    else:  # 10^4 values: within the limit, and the type error shows an excerpt
        assert "expected" in message and "..." in message


def test_deep_yaml_and_a_broken_override_are_one_line(tmp_path):
    from probekit.errors import RecipeError
    from probekit.recipe import load_recipe

    path = tmp_path / "deep.yaml"
    path.write_text("name: " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(RecipeError, match="nested more than 50 levels deep"):
        load_recipe(path)
    with pytest.raises(RecipeError, match=r"override 'analysis.k=\[1': not valid YAML at line 1"):
        load_recipe("demo", ["analysis.k=[1"])
    path.write_text("name: &a [x, *a]\n")  # a list that holds itself
    with pytest.raises(RecipeError, match="expands to more than 100000 values"):
        load_recipe(path)


def test_a_text_the_store_cannot_keep_is_skipped_alone(tmp_path):
    """A NUL character (HDF5 strings end at one) or a lone surrogate: that example is skipped
    with the reason; its shard and every rerun go on."""
    from probekit.run import main

    rows = [f"{i}\teng\tsentence number {i} here" for i in range(8)]
    rows += ["8\teng\tbad \0 text"]
    (tmp_path / "m.tsv").write_text("sentence\tlang\ttext\n" + "\n".join(rows) + "\n")
    jsonl = [json.dumps({"sentence": str(i), "lang": "eng", "text": f"sentence {i} here"})
             for i in range(8)] + ['{"sentence": "9", "lang": "eng", "text": "lone \\ud800"}']
    (tmp_path / "m.jsonl").write_text("\n".join(jsonl) + "\n")
    for manifest, bad, reason in (("m.tsv", "eng/text/8", "holds a NUL character"),
                                  ("m.jsonl", "eng/text/9", "is not valid Unicode")):
        (tmp_path / "r.yaml").write_text(
            f"name: r\ndata: {{source: manifest, path: {manifest}, languages: [eng], "
            "modalities: [text]}\nmodel: {spec: seamless_m4t_v2, variant: tiny}\n"
            "record: {dtype: float32, batch_size: 4, shard_size: 4}\n")
        out = tmp_path / f"out-{manifest}"
        for _ in range(2):  # and again: nothing blocks the rerun
            assert main([str(tmp_path / "r.yaml"), "--out", str(out), "--quiet", "--stage",
                         "extract"]) == 0
        store = open_store(out / "store")
        assert len(store) == 8 and [s["id"] for s in store.skipped] == [bad]
        assert reason in store.skipped[0]["reason"]


def test_a_manifest_with_a_bom_repeats_or_another_encoding_is_read_or_told(tmp_path, caplog):
    from probekit.data import DataError, parallel_examples, read_manifest

    rows = "sentence\tlang\ttext\n1\teng\tone\n2\teng\ttwo\n1\teng\tone again\n"
    (tmp_path / "bom.tsv").write_bytes(b"\xef\xbb\xbf" + rows.encode())
    read = read_manifest(tmp_path / "bom.tsv")
    assert [r["sentence"] for r in read] == ["1", "2", "1"]
    examples, report = parallel_examples(read, ["eng"], ["text"])
    assert report["repeated_rows"] == 1 and [e["text"] for e in examples] == ["one", "two"]
    (tmp_path / "latin1.tsv").write_bytes(rows.replace("one", "caf\xe9").encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.tsv: not UTF-8 text \(invalid continuation "
                                        r"byte at byte \d+\); save the manifest as UTF-8"):
        read_manifest(tmp_path / "latin1.tsv")


def token_store(root, backend):
    rng = np.random.default_rng(3)
    with StoreWriter(root, backend=backend, shard_size=4, recipe_hash="r") as writer:
        meta = [{"id": f"ex{i}", "sentence": str(i), "lang": "eng", "modality": "text",
                 "text": f"s {i}", "length": 3 + i} for i in range(4)]
        writer.add(meta, {"pooled": rng.standard_normal((4, 8)).astype(np.float32),
                          "tokens": [rng.standard_normal((3 + i, 8)).astype(np.float32)
                                     for i in range(4)]})
    return root


def rehash(store):
    """The manifest made to agree with the changed shard's size and SHA-256 (as someone who
    edits a store could), so that only the content checks can tell."""
    path = store / "manifest-r0.json"
    manifest = json.loads(path.read_text())
    entry = manifest["shards"][0]
    entry.update(entry_of(store / entry["file"]))
    path.write_text(json.dumps(manifest))
    return store / entry["file"]


def test_a_changed_byte_in_a_safetensors_token_shard_fails_its_read(tmp_path):
    store = token_store(tmp_path / "s", "safetensors")
    shard = store / "shards" / "r0-000000.safetensors"
    raw = bytearray(shard.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    begin, _ = json.loads(raw[8:8 + n])["tokens/tokens"]["data_offsets"]
    raw[8 + n + begin + 5] ^= 0x40  # a bit of example ex0's first row
    shard.write_bytes(bytes(raw))
    rehash(store)
    s = open_store(store)
    assert s.tokens("tokens", "ex1").shape == (4, 8)  # its neighbours still read
    with pytest.raises(StoreError, match="fail their CRC-32"):
        s.tokens("tokens", "ex0")


@pytest.mark.parametrize("backend", ["hdf5", "safetensors"])
def test_an_array_of_another_dtype_is_damage_not_cast(backend, tmp_path, capsys):
    store = token_store(tmp_path / "s", backend)
    shard = next((store / "shards").iterdir())
    if backend == "hdf5":
        import h5py

        with h5py.File(shard, "a") as f:
            data = f["layers/pooled/pooled"][:]
            del f["layers/pooled/pooled"]
            f["layers/pooled"].create_dataset("pooled", data=data.astype(np.float16))
    else:
        from safetensors import safe_open
        from safetensors.numpy import load_file, save_file

        with safe_open(str(shard), "np") as f:
            meta = f.metadata()
        tensors = load_file(str(shard))
        tensors["pooled/pooled"] = tensors["pooled/pooled"].astype(np.float16)
        save_file(tensors, str(shard), metadata=meta)
    rehash(store)
    assert store_cli(["verify", str(store)]) == 1
    assert "pooled is stored as" in capsys.readouterr().out
    with pytest.raises(StoreError, match="the manifest records float32"):
        open_store(store).read("pooled")


# -- results published whole -----------------------------------------------------------------
SMALL = ["data.max_sentences=20", "data.languages=[eng,fra]", "analysis.k=2", "analysis.n_perm=2",
         "analysis.n_boot=0", "analysis.control=null", "--quiet"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from probekit.run import main

    out = tmp_path_factory.mktemp("run") / "out"
    assert main(["demo", "--out", str(out), *SMALL, "report.figures=false"]) == 0
    return out


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_killed_analysis_leaves_the_previous_complete_set(small_run, tmp_path, monkeypatch,
                                                            caplog):
    import logging

    import probekit.report as report
    from probekit.run import main

    out = tmp_path / "out"
    shutil.copytree(small_run, out)
    before = snapshot(out / "results")
    real, calls = report.write_table, []

    def dies_after_the_first_table(df, path):
        if calls:
            raise KeyboardInterrupt  # as a kill would stop it, mid-way
        calls.append(path)
        return real(df, path)

    monkeypatch.setattr(report, "write_table", dies_after_the_first_table)
    assert main(["demo", "--out", str(out), *SMALL, "analysis.k=3", "--stage", "analyze"]) == 130
    monkeypatch.setattr(report, "write_table", real)
    assert calls and snapshot(out / "results") == before  # nothing of the k=3 tables
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    caplog.set_level(logging.INFO)
    assert main(["demo", "--out", str(out), *SMALL, "--stage", "analyze"]) == 0
    assert "analyze: results are up to date" in caplog.text  # and they are: the k=2 set


def test_tables_an_analysis_no_longer_makes_are_gone_and_the_users_files_stay(small_run,
                                                                              tmp_path):
    from probekit.run import main

    out = tmp_path / "out"
    shutil.copytree(small_run, out)
    assert (out / "results" / "measure_agreement.csv").exists()  # two measures
    (out / "results" / "my_notes.txt").write_text("mine")
    assert main(["demo", "--out", str(out), *SMALL, "analysis.measures=[svcca]",
                 "--stage", "analyze"]) == 0
    assert not (out / "results" / "measure_agreement.csv").exists()
    assert (out / "results" / "my_notes.txt").read_text() == "mine"
    assert (out / "results" / "similarities.csv").exists()


@pytest.mark.reference_leg  # probekit's own logic, the same on either stack
def test_a_killed_report_leaves_no_empty_figure(small_run, tmp_path, monkeypatch):
    import probekit.report as report
    from probekit.run import main

    out = tmp_path / "out"
    shutil.copytree(small_run, out)
    real, calls = report.save_figure, []

    def dies_while_writing(fig, path):
        if len(calls) == 2:
            path.with_suffix(".pdf").write_bytes(b"")  # what a kill mid-write leaves
            raise KeyboardInterrupt
        calls.append(path)
        return real(fig, path)

    monkeypatch.setattr(report, "save_figure", dies_while_writing)
    assert main(["demo", "--out", str(out), *SMALL, "--stage", "report"]) == 130
    assert not (out / "figures").exists()  # the previous set: none
    monkeypatch.setattr(report, "save_figure", real)
    assert main(["demo", "--out", str(out), *SMALL, "--stage", "report"]) == 0
    pdfs = list((out / "figures").glob("*.pdf"))
    assert pdfs and all(p.stat().st_size > 0 for p in pdfs)


def test_a_set_moved_aside_before_a_kill_is_put_back(tmp_path):
    from probekit.pipeline.publish import published

    folder = tmp_path / "results"
    with published(folder) as new:
        (new / "a.csv").write_text("1")
    folder.rename(tmp_path / ".results.old-4242")  # killed between the two renames
    (tmp_path / ".results.new-4242").mkdir()       # with its new set half written
    with pytest.raises(RuntimeError), published(folder) as new:
        assert (folder / "a.csv").read_text() == "1"  # put back before anything else
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


# -- every rank accounted for -----------------------------------------------------------------
def test_ranks_started_with_different_folders_are_refused_before_writing(tmp_path):
    """Two processes of one run started by hand, each with its own --out: each would write a
    store that looks complete with half the examples. Both refuse, writing nothing."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "probekit.run", "demo", "--out", str(tmp_path / f"r{rank}"),
             "data.max_sentences=8", "--quiet"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    for rank, proc in enumerate(procs):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2 and "Traceback" not in err, err[-2000:]
        assert "the 2 processes of this run disagree: rank 1 has output folder" in err
        assert not (tmp_path / f"r{rank}").exists()  # nothing was written


def test_a_store_missing_a_writer_rank_is_not_complete(tmp_path, capsys):
    store = tmp_path / "s"
    rng = np.random.default_rng(0)
    for rank in (0, 1):  # a run of two processes, each writing its half
        with StoreWriter(store, backend="hdf5", shard_size=4, recipe_hash="r", rank=rank,
                         world=2) as writer:
            meta = [{"id": f"ex{rank}{i}", "sentence": f"{rank}{i}", "lang": "eng",
                     "modality": "text", "text": "t", "length": 1} for i in range(4)]
            writer.add(meta, {"x": rng.standard_normal((4, 8)).astype(np.float32)})
    assert open_store(store).complete and store_cli(["verify", str(store)]) == 0
    (store / "manifest-r1.json").unlink()
    for shard in (store / "shards").glob("r1-*"):
        shard.unlink()
    capsys.readouterr()
    assert store_cli(["verify", str(store)]) == 1
    assert "writer rank(s) 1 of the run's 2 have no manifest" in capsys.readouterr().out
    s = open_store(store)
    assert not s.complete and s.missing_ranks == [1] and len(s) == 4
    with StoreWriter(store, backend="hdf5", shard_size=4, recipe_hash="r") as writer:
        pass  # a rerun with one process (it would redo rank 1's examples as its own)
    assert open_store(store).missing_ranks == []


@pytest.mark.parametrize("backend", ["hdf5", "safetensors"])
@pytest.mark.parametrize("damage", ["lengths", "rows"])
def test_a_malformed_shard_is_one_line_from_read_and_verify(backend, damage, tmp_path, capsys):
    """Arrays of the right dtype and width whose counts do not fit: example lengths that do not
    add up to the token rows, or fewer pooled rows than the manifest lists (the shard's size and
    hash updated, so only the structure can tell)."""
    store = token_store(tmp_path / "s", backend)
    shard = next((store / "shards").iterdir())
    key = "tokens/lengths" if damage == "lengths" else "pooled/pooled"
    if backend == "hdf5":
        import h5py

        with h5py.File(shard, "a") as f:
            data = f[f"layers/{key}"][:]
            del f[f"layers/{key}"]
            f[f"layers/{key.split('/')[0]}"].create_dataset(
                key.split("/")[1], data=data * [1, -1, 1, 1] if damage == "lengths" else data[:2])
    else:
        from safetensors import safe_open
        from safetensors.numpy import load_file, save_file

        with safe_open(str(shard), "np") as f:
            meta = f.metadata()
        tensors = load_file(str(shard))
        data = tensors[key]
        tensors[key] = data * [1, -1, 1, 1] if damage == "lengths" else data[:2]
        save_file(tensors, str(shard), metadata=meta)
    rehash(store)
    assert store_cli(["verify", str(store)]) == 1
    out = capsys.readouterr().out
    s = open_store(store)
    if damage == "lengths":
        assert "lengths are not counts of rows" in out
        with pytest.raises(StoreError, match="lengths are not counts of rows"):
            s.tokens("tokens", "ex3")
    else:
        assert "layer pooled holds 2 rows; the manifest lists 4 examples" in out
        with pytest.raises(StoreError, match="holds 2 rows; the manifest lists 4 examples"):
            s.read("pooled")


@pytest.mark.parametrize("edit,problem", [
    (lambda e: e.update(n=5), "says n = 5 examples, but its column 'id' holds 4"),
    (lambda e: e["examples"]["id"].pop(), "says n = 4 examples, but its column 'id' holds 3"),
    (lambda e: e.update(layers="pooled"), "lists its layers as 'pooled', not a list of names"),
    (lambda e: e.pop("bytes"), "has no size (bytes)")])
def test_a_malformed_manifest_is_one_line_from_read_write_and_verify(edit, problem, tmp_path,
                                                                     capsys):
    store = token_store(tmp_path / "s", "hdf5")
    path = store / "manifest-r0.json"
    manifest = json.loads(path.read_text())
    edit(manifest["shards"][0])
    path.write_text(json.dumps(manifest))
    assert store_cli(["verify", str(store)]) == 2
    assert problem in capsys.readouterr().err
    with pytest.raises(StoreError, match="manifest-r0.json is damaged"):
        open_store(store)
    with pytest.raises(StoreError, match=f"{re.escape(problem)}.*--overwrite"):
        StoreWriter(store, shard_size=4, recipe_hash="r")


RANK_SCRIPT = """
import logging, os, sys, time
import numpy as np
from probekit.distributed import Group, ranks_from_env
from probekit.store import StoreWriter
from probekit.store.manifest import ranks_progress
logging.basicConfig(level=logging.INFO, format="%(message)s")
ranks = ranks_from_env()
group = Group(ranks)
store = sys.argv[1]
writer = StoreWriter(store, shard_size=4, recipe_hash="r", rank=ranks.rank, world=2)
meta = [{"id": f"ex{ranks.rank}{i}", "sentence": str(i), "lang": "eng", "modality": "text",
         "text": "t", "length": 1} for i in range(4)]
writer.add(meta, {"x": np.ones((4, 8), np.float32)})
writer.flush()
if ranks.rank == 1:
    time.sleep(float(sys.argv[2]))
writer.close()
from probekit.errors import ProbekitError
try:
    group.barrier(lambda: ranks_progress(writer.root, 2))
except ProbekitError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
print("through", flush=True)
"""


def two_ranks(tmp_path, sleep, **env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen(
        [sys.executable, "-c", RANK_SCRIPT, str(tmp_path / "s"), str(sleep)],
        env={**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
             "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
             "OMP_NUM_THREADS": "1", **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for rank in (0, 1)]
    return [(p.wait(timeout=120), *p.communicate()) for p in procs]


def test_rank_0_says_which_ranks_are_done_while_it_waits(tmp_path):
    (rc0, out0, err0), (rc1, out1, _) = two_ranks(tmp_path, 4, PROBEKIT_PROGRESS_SECONDS="1")
    assert rc0 == rc1 == 0 and "through" in out0 and "through" in out1, err0[-2000:]
    assert ("[rank 0/2] waiting for the other processes: done: rank 0; still recording: rank 1 "
            "(4 examples committed)") in err0


def test_a_frozen_rank_is_reported_in_one_line_after_the_documented_wait(tmp_path):
    (rc0, _, err0), _ = two_ranks(tmp_path, 10, PROBEKIT_BARRIER_HOURS=str(3 / 3600))
    assert rc0 == 2 and "Traceback" not in err0, err0[-2000:]
    assert "waited for the other processes of this run and gave up (no answer in" in err0
    assert "one of them froze or died" in err0 and "PROBEKIT_BARRIER_HOURS" in err0
