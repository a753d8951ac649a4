"""Scale: torchrun data-parallel extraction (2 CPU processes, gloo), length-bucketed batching,
model placement from the recipe."""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from probekit.batching import plan
from probekit.distributed import Ranks, assign
from probekit.store import open_store

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["data.languages=[eng,swh]", "data.max_sentences=16", "analysis.control=null",
         "analysis.k=3", "analysis.n_perm=2", "analysis.n_boot=2", "report.figures=false",
         "record.batch_size=4", "record.shard_size=10"]


def run(args, parallel=False, env=None):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "2"] if parallel else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}  # torchrun's default, in both
    done = subprocess.run(launcher + ["-m", "probekit.run", str(ROOT / "recipes/demo.yaml"),
                                      *args, "--quiet"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def store_values(path):
    """Every example's metadata and every layer's row, by example id."""
    store = open_store(path)
    out = {}
    for layer in store.layers:
        ids = list(store.recorded(layer)["id"])
        for i, row in zip(ids, store.read(layer, ids=ids), strict=True):
            out[(i, layer)] = row
    return out, store.examples.set_index("id").sort_index(), store


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "shards").iterdir())}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    run(SMALL + ["--out", str(out)])
    return out


def tables(out):
    return {p.name: p.read_bytes() for p in sorted((out / "results").iterdir())
            if p.suffix in (".csv", ".md", ".tex")}


def test_two_processes_write_the_store_of_one(single, tmp_path):
    out = tmp_path / "two"
    done = run(SMALL + ["--out", str(out)], parallel=True)
    # each process computed a share of the rows; rank 0 made the tables: those of one process
    assert "rank 0 makes the tables and figures" in done.stderr
    assert "were computed already (by an interrupted run or other processes)" in done.stderr
    assert tables(out) == tables(single)
    assert not list(out.glob("analysis.partial*"))
    one, meta_one, _ = store_values(single / "store")
    two, meta_two, store = store_values(out / "store")
    assert store.complete
    assert sorted(one) == sorted(two)
    for key in one:  # the same batches, so the same values bit for bit
        assert np.array_equal(one[key], two[key]), key
    assert meta_one.sort_index(axis=1).equals(meta_two.sort_index(axis=1))
    assert sorted(m.name for m in (out / "store").glob("manifest-r*.json")) == \
        ["manifest-r0.json", "manifest-r1.json"]
    a, b = ({i for s in json.loads((out / "store" / f"manifest-r{r}.json").read_text())["shards"]
             for i in s["examples"]["id"]} for r in (0, 1))
    everything = {key[0] for key in one}
    assert not a & b and a | b == everything  # each example written once, by one rank
    assert abs(len(a) - len(b)) <= 0.25 * len(everything)

    # rank 1 died before committing anything: the same command redoes only its share
    kept = digests(out / "store")
    (out / "store" / "manifest-r1.json").unlink()
    for shard in (out / "store" / "shards").glob("r1-*"):
        shard.unlink()
    run(SMALL + ["--out", str(out), "--stage", "extract"], parallel=True)
    again = digests(out / "store")
    assert {k: v for k, v in again.items() if k.startswith("r0")} == \
        {k: v for k, v in kept.items() if k.startswith("r0")}  # rank 0 rewrote nothing
    assert again == kept  # rank 1's shards rebuilt byte for byte
    three, _, store = store_values(out / "store")
    assert store.complete and all(np.array_equal(one[k], three[k]) for k in one)

    # rank 1 lost a shard and one process resumes: rank 0 checks and closes rank 1 and records
    # what it lacks (without that, the store would list the lost examples and stay incomplete)
    sorted((out / "store" / "shards").glob("r1-*"))[-1].unlink()
    done = run(SMALL + ["--out", str(out), "--stage", "extract"])
    assert "writer rank 1 of an earlier run with more processes checked (1 damaged" in done.stderr
    four, _, store = store_values(out / "store")
    assert store.complete and sorted(four) == sorted(one)
    assert all(np.array_equal(one[k], four[k]) for k in one)


@pytest.mark.reference_leg
def test_a_batch_budget_changes_the_batches_not_the_values(single, tmp_path):
    out = tmp_path / "budget"
    run(SMALL + ["--out", str(out), "--stage", "extract", "record.batch_size=16",
                 "record.max_batch_tokens=200", "record.max_batch_seconds=30"])
    one, meta_one, _ = store_values(single / "store")
    other, meta_other, _ = store_values(out / "store")
    assert sorted(one) == sorted(other)
    worst = max(float(np.max(np.abs(one[k] - other[k])) / (np.max(np.abs(one[k])) + 1e-6))
                for k in one)
    assert worst < 1e-4, worst
    assert meta_one["length"].equals(meta_other["length"])


def examples(n=40, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        for lang in ("eng", "fra"):
            for modality in ("text", "speech"):
                out.append({"id": f"{lang}/{modality}/{i}", "lang": lang, "modality": modality,
                            "n": float(rng.integers(1, 60))})
    return out


@pytest.mark.parametrize("window", [1000, 7])
def test_budget_batches(window):
    exs = examples()
    lengths = [ex["n"] for ex in exs]
    batches = plan(exs, 8, lengths, max_tokens=100, max_seconds=150, sort_window=window)
    seen = [ex["id"] for b in batches for ex in b]
    assert sorted(seen) == sorted(ex["id"] for ex in exs) and len(seen) == len(set(seen))
    for b in batches:
        assert len({(ex["lang"], ex["modality"]) for ex in b}) == 1
        assert len(b) <= 8
        budget = 150 if b[0]["modality"] == "speech" else 100
        assert len(b) == 1 or len(b) * max(ex["n"] for ex in b) <= budget
    padded = sum(len(b) * max(ex["n"] for ex in b) for b in batches)
    by_count = plan(exs, 8)
    assert sum(len(b) * max(ex["n"] for ex in b) for b in by_count) > padded
    assert [[ex["id"] for ex in b] for b in by_count][0] == [f"eng/text/{i}" for i in range(8)]
    assert plan(list(exs), 8, list(lengths), 100, 150, window) == batches  # deterministic


@pytest.mark.parametrize("budget, batch, share", [
    (None, [9, 10], 6.8 / 10),        # batches 1-4, 5-8, 9-10: 16, 32, 20 padded tokens
    (20, [6, 5, 4], 6.3 / 6)])        # 10 9 | 8 7 | 6 5 4 | 3 2 1: 20, 16, 18, 9 padded tokens
def test_the_dry_run_probes_a_planned_batch_and_scales_by_padded_length(budget, batch, share):
    from types import SimpleNamespace

    from probekit.pipeline import resolve_run
    from probekit.pipeline.dry_run import probe_batches
    from probekit.recipe import load_recipe
    recipe = load_recipe(ROOT / "recipes/demo.yaml", ["record.batch_size=4"]
                         + ([f"record.max_batch_tokens={budget}"] if budget else []))
    exs = [{"id": f"eng/{n}", "lang": "eng", "modality": "text", "text": "x" * n}
           for n in range(1, 11)]
    chosen, ratio = probe_batches(resolve_run(recipe), exs,
                                  SimpleNamespace(text_tokens=lambda t, _: len(t)))
    assert list(chosen) == ["text"]  # no speech examples here
    assert [len(ex["text"]) for ex in chosen["text"]] == batch
    assert ratio["text"] == pytest.approx(share)


def test_assign_balances_padded_length():
    rng = np.random.default_rng(1)
    costs = list(rng.integers(1, 1000, 57).astype(float))
    for world in (1, 2, 3, 8):
        owner = assign(costs, world)
        loads = [sum(c for c, o in zip(costs, owner, strict=True) if o == r) for r in range(world)]
        assert sum(loads) == sum(costs) and all(0 <= o < world for o in owner)
        # greedy longest-first: no rank exceeds the average by more than the largest batch
        assert max(loads) <= sum(costs) / world + max(costs)
        assert owner == assign(costs, world)
    assert set(assign([5.0, 1.0], 4)) <= {0, 1}


def test_recipe_device_map_under_torchrun_is_refused():
    from probekit.errors import ProbekitError
    from probekit.pipeline.extract import placement
    from probekit.recipe import load_recipe

    model = load_recipe(ROOT / "recipes/demo.yaml", ["model.device_map=auto"]).model
    with pytest.raises(ProbekitError, match="each process takes one GPU"):
        placement(model, "auto", Ranks(0, 2, 0))
    assert placement(model, "auto", Ranks())["device_map"] == "auto"


def test_placement_is_not_part_of_the_store_hash_but_quantization_is():
    from probekit.pipeline import resolve_run
    from probekit.recipe import load_recipe

    def store_recipe_hash(recipe):
        return resolve_run(recipe).store_hash

    base = store_recipe_hash(load_recipe(ROOT / "recipes/demo.yaml"))
    assert store_recipe_hash(load_recipe(ROOT / "recipes/demo.yaml",
                                         ["model.device=cpu", "model.device_map=auto"])) == base
    assert store_recipe_hash(load_recipe(ROOT / "recipes/demo.yaml",
                                         ["model.quantize=8bit"])) != base
    assert store_recipe_hash(load_recipe(ROOT / "recipes/demo.yaml",
                                         ["record.max_batch_tokens=512"])) != base


def test_device_map_loads_a_dispatched_model_with_the_same_outputs(tmp_path):
    """device_map="auto" through from_pretrained (accelerate): the model is dispatched (on the
    CPU here), place() leaves it, and its outputs equal the plainly loaded model's."""
    import transformers

    from probekit.wrappers import load_spec
    from probekit.wrappers.loading import large_model_kwargs, place

    config = transformers.WhisperConfig(d_model=16, encoder_layers=2, decoder_layers=2,
                                        encoder_attention_heads=2, decoder_attention_heads=2,
                                        encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=64,
                                        num_mel_bins=8, max_source_positions=20,
                                        max_target_positions=16, pad_token_id=0,
                                        bos_token_id=1, eos_token_id=2,
                                        decoder_start_token_id=1)
    torch.manual_seed(0)
    transformers.WhisperModel(config).save_pretrained(tmp_path)
    spec = dataclasses.replace(load_spec("whisper"), checkpoint=str(tmp_path), device="cpu",
                               device_map="auto")
    kwargs = large_model_kwargs(spec)
    assert kwargs == {"device_map": "auto"}
    dispatched = place(transformers.WhisperModel.from_pretrained(tmp_path, **kwargs), spec)
    assert {p.device.type for p in dispatched.parameters()} == {"cpu"}  # one device here
    plain = transformers.WhisperModel.from_pretrained(tmp_path)
    feats, ids = torch.randn(2, 8, 40), torch.tensor([[1, 2, 3], [4, 5, 6]])
    with torch.no_grad():
        a = dispatched(input_features=feats, decoder_input_ids=ids).last_hidden_state
        b = plain(input_features=feats, decoder_input_ids=ids).last_hidden_state
    assert torch.equal(a, b)


def test_quantize_without_its_package_or_gpu_says_how():
    import importlib.util

    from probekit.wrappers import ModelLoadError, load_spec
    from probekit.wrappers.loading import large_model_kwargs

    spec = dataclasses.replace(load_spec("salmonn"), quantize="8bit")
    if importlib.util.find_spec("bitsandbytes") is None:
        match = "pip install bitsandbytes"
    elif not torch.cuda.is_available():
        match = "needs a CUDA GPU"
    else:
        pytest.skip("bitsandbytes and a GPU: quantization is possible here")
    with pytest.raises(ModelLoadError, match=match):
        large_model_kwargs(spec)


def test_token_stride_and_max_positions_keep_every_kth_valid_position():
    from probekit import Recorder

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh(), torch.nn.Linear(6, 6))
    x = torch.randn(3, 11, 6)
    lengths = [11, 7, 2]
    mask = (torch.arange(11)[None] < torch.tensor(lengths)[:, None]).long()
    with torch.no_grad():
        first = torch.nn.functional.linear(x, model[0].weight, model[0].bias)
        last = torch.nn.functional.linear(torch.tanh(first), model[2].weight, model[2].bias)
        for stride, most in ((3, None), (2, 2), (1, 4)):
            with Recorder(model, ["0", "2"], pool="none", token_stride=stride,
                          max_positions=most) as rec:
                rec.set_mask(mask)
                model(x)
            for name, full in (("0", first), ("2", last)):
                for i, n in enumerate(lengths):
                    want = full[i, :n][::stride][:most]
                    assert torch.equal(rec[name][i], want), (name, i, stride, most)


def test_rank_variables_without_torchrun_give_one_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    done = subprocess.run([sys.executable, "-m", "probekit.run", str(ROOT / "recipes/demo.yaml"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          cwd=ROOT, env={**env, "WORLD_SIZE": "2", "RANK": "1"}, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot join the 2 processes of this run as rank 1")
    assert "torchrun" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing written


def test_the_gpu_check_script_runs_here_on_narrow_models():
    """benchmarks/gpu_check.py --small: its float64 reference agrees with the recordings (the
    script is for GPUs; here it runs on the CPU, so that it cannot rot)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--small",
                           "--skip-table", "--device", "cpu"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "values: all within tolerance" in done.stdout
    assert done.stdout.count(" ok\n") == 4
    assert "analysis n=120 width=256 cpu float32: " in done.stdout  # the analysis, timed


def test_a_model_spread_over_devices_is_left_where_it_is():
    from probekit.wrappers import load_spec
    from probekit.wrappers.loading import place

    spec = dataclasses.replace(load_spec("whisper"), device="cpu")
    spread = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2, device="meta"))
    assert place(spread, spec) is spread and spread[1].weight.device.type == "meta"
    whole = torch.nn.Linear(2, 2, dtype=torch.float64)
    assert place(whole, spec) is whole  # one device: moved (to where it is)
