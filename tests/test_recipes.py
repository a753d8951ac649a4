"""The shipped paper recipes (offline dry runs, the language registry) and a fuzzed set of
invalid recipes: each gives one ProbekitError naming the recipe, never another exception."""

import copy
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from probekit.errors import ProbekitError
from probekit.languages import LANGUAGES, PAPER_LANGUAGES, RESOURCE, describe
from probekit.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent
PAPER = {"seamless": ["facebook/seamless-m4t-v2-large"],
         "sonar": ["text_sonar_basic_encoder", "sonar_speech_encoder_swh"],
         "salmonn": ["lmsys/vicuna-13b-v1.1", "openai/whisper-large-v2", "salmonn_v1.pth",
                     "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"]}


@pytest.mark.parametrize("name", PAPER)
def test_paper_recipe_dry_run_offline_names_the_downloads(name, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PROBEKIT_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "probekit.run", f"recipes/{name}.yaml",
                           "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    out = done.stdout
    assert "30 languages" in out and "to download before this recipe can run here" in out
    assert "dataset google/fleurs (split test): 60 files not cached" in out
    for weights in PAPER[name]:
        assert weights in out
    assert "estimated store size: up to" in out
    assert "control: random_init" in out and "k=40" in out


def test_paper_recipes_use_the_registry_languages():
    assert len(PAPER_LANGUAGES) == 30 and set(PAPER_LANGUAGES) <= set(LANGUAGES)
    assert sorted(RESOURCE.values()).count("high") == 15 == sorted(RESOURCE.values()).count("low")
    for name in PAPER:
        recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
        assert recipe.data.languages == PAPER_LANGUAGES and recipe.data.source == "fleurs"
        assert recipe.analysis.cross_modal and recipe.analysis.cross_lingual
        # adjusted scores need chance levels; a fixed k keeps kx + ky well under n/2 at FLEURS'
        # ~350 sentences; the random-weights control beside every row; a second measure
        a = recipe.analysis
        assert a.n_perm >= 20 and a.k and 4 * a.k <= 350 // 2 and a.control == "random_init"
        assert len(a.measures) >= 2 and a.n_boot >= 100
    rows = describe()
    assert [r["code"] for r in rows] == PAPER_LANGUAGES
    assert all(r["name"] and r["nllb"] and r["fleurs"] and r["family"] for r in rows)
    assert {r["code"]: r["fleurs"] for r in rows}["cmn"] == "cmn_hans_cn"


BAD_VALUES = [None, 0, -3, -5, 2.5, True, "", "zzz", "abc", [], [1, "a"], {}, {"x": 1},
              "../missing.tsv", "../../.."]


def mutations(base, rng, n):
    """Random single corruptions of a valid recipe: a wrong value, a deleted key or an unknown
    key at a random place."""
    paths = []

    def walk(node, path):
        for key, value in node.items():
            paths.append(path + [key])
            if isinstance(value, dict):
                walk(value, path + [key])
    walk(base, [])
    for _ in range(n):
        data = copy.deepcopy(base)
        path = rng.choice(paths)
        node = data
        for key in path[:-1]:
            node = node[key]
        kind = rng.choice(["value", "value", "delete", "unknown"])
        if kind == "value":
            node[path[-1]] = rng.choice(BAD_VALUES)
        elif kind == "delete":
            del node[path[-1]]
        else:
            node[path[-1] + "_x"] = 1
        yield path, kind, data


def test_fuzzed_recipes_fail_with_one_clear_error(tmp_path):
    base = yaml.safe_load((ROOT / "recipes" / "demo.yaml").read_text())
    base["data"]["path"] = str(ROOT / "data" / "demo" / "manifest.tsv")
    base["model"]["overrides"] = {"options": {"max_seconds": 30, "min_seconds": 0.1,
                                              "max_text_tokens": 512}}
    rng = random.Random(0)
    errors = 0
    for i, (path, kind, data) in enumerate(mutations(base, rng, 250)):
        file = tmp_path / f"r{i}.yaml"
        file.write_text(yaml.safe_dump(data))
        try:
            load_recipe(file)
        except ProbekitError as e:
            errors += 1
            message = str(e)
            assert str(file) in message and "\n" not in message, (path, kind, message)
        except Exception as e:  # anything else is a bug: a traceback for a user mistake
            pytest.fail(f"{'.'.join(path)} ({kind}): {type(e).__name__}: {e}")
    assert errors > 150  # most corruptions are errors; the rest are valid recipes


def test_yaml_syntax_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ProbekitError, match="bad.yaml: not valid YAML at line 2, column 1") as e:
        load_recipe(bad)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("overrides,message", [
    (["analysis.cross_modal=[[encoder, decoder]]", "analysis.cross_lingual=[]"],
     None),                                            # encoder on speech, decoder on text: fine
    (["analysis.cross_modal=[[decoder, encoder]]"],
     "needs 'encoder' run on text, but whisper's text inputs run through decoder only"),
    (["data.modalities=[speech]", "analysis.cross_modal=[[decoder, decoder]]"],
     "needs 'decoder' run on text, but data.modalities has no text"),
    (["data.modalities=[text]", "analysis.cross_modal=[]", "analysis.cross_lingual=[encoder]"],
     "'encoder' runs on speech inputs only"),
])
def test_analyses_of_a_modality_the_spec_cannot_produce_are_refused(overrides, message, tmp_path):
    recipe = tmp_path / "whisper.yaml"
    recipe.write_text(yaml.safe_dump({
        "data": {"source": "manifest", "path": str(ROOT / "data/demo/manifest.tsv"),
                 "languages": ["eng", "fra"], "modalities": ["speech", "text"]},
        "model": {"spec": "whisper", "variant": "tiny"},
        "analysis": {"cross_modal": [["decoder", "decoder"]], "cross_lingual": ["encoder"]}}))
    if message is None:
        load_recipe(str(recipe), overrides)
        return
    with pytest.raises(ProbekitError, match=message.replace("(", r"\(")):
        load_recipe(str(recipe), overrides)
    done = subprocess.run([sys.executable, "-m", "probekit.run", str(recipe), "--stage",
                           "analyze", "--out", str(tmp_path / "out"), *overrides],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "error:" in done.stderr


def test_a_local_checkpoint_folder_is_not_called_the_hub(tmp_path):
    from probekit.wrappers import load_spec, wrapper_class

    def first_need(checkpoint):
        spec = load_spec("seamless_m4t_v2", checkpoint=checkpoint)
        return wrapper_class(spec.wrapper, spec.path).required_weights(spec, ["eng"])[0]

    (tmp_path / "m4t").mkdir()
    assert first_need(str(tmp_path / "m4t")) == (str(tmp_path / "m4t"), "local folder", True)
    assert first_need(str(tmp_path / "gone")) == (
        str(tmp_path / "gone"), "local folder, which does not exist", False)
    assert first_need("facebook/seamless-m4t-v2-large")[1] == "Hugging Face hub"
