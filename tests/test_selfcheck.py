"""Any model, trusted: the load-time self-check measures batch independence for the spec at hand
(shipped or not) and stops a batch-dependent one before extraction with the fix; the dry run
prints what it measured, not a family's claims; knowable failures (k against n, missing audio)
are refused before extraction; spec problems are told in spec keys."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from probekit.errors import RecordingError
from probekit.run import main
from probekit.selfcheck import BatchDependenceError, batch_independence
from probekit.wrappers import SpecError, load_model, load_spec

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "data" / "demo" / "manifest.tsv"

# wav2vec2 as a new user writes it: the default config's group-norm feature encoder (as
# facebook/wav2vec2-base), padded batches, no attention mask (group norm cannot take one)
WAV2VEC2 = {
    "wrapper": "hf", "checkpoint": "facebook/wav2vec2-base", "model_class": "Wav2Vec2Model",
    "modalities": ["speech"], "stacks": {"encoder": ["encoder.layers.*"]},
    "options": {"input": "speech", "feature_extractor": "Wav2Vec2FeatureExtractor",
                "extractor_options": {"padding": True},
                "lengths": {"encoder": {"rule": "model"}}},
    "tiny": {"seed": 0, "extractor": {"feature_size": 1, "sampling_rate": 16000,
                                      "padding_value": 0.0, "do_normalize": True},
             "config": {"vocab_size": 32, "hidden_size": 32, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "intermediate_size": 64,
                        "conv_dim": [32, 32, 32], "conv_kernel": [10, 3, 2],
                        "conv_stride": [5, 2, 2], "num_conv_pos_embeddings": 16,
                        "num_conv_pos_embedding_groups": 2}}}
# the fix for a layer-norm front end (as facebook/wav2vec2-large-lv60): pass the mask
LAYER_NORM = {"feat_extract_norm": "layer", "do_stable_layer_norm": True}


def write_spec(folder, spec, name="wav2vec2"):
    path = Path(folder) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def fixed(spec):
    out = yaml.safe_load(yaml.safe_dump(spec))
    out["tiny"]["config"].update(LAYER_NORM)
    out["options"]["pass_attention_mask"] = True
    return out


def write_recipe(folder, spec_path, **analysis):
    recipe = {"name": "mine",
              "data": {"source": "manifest", "path": str(MANIFEST), "languages": ["eng", "fra"],
                       "modalities": ["speech"], "max_sentences": 8},
              "model": {"spec": str(spec_path), "variant": "tiny"},
              "record": {"pool": "mean", "dtype": "float32", "batch_size": 4},
              "analysis": {"k": 2, "n_perm": 2, "n_boot": 0, "cross_lingual": ["encoder"],
                           "claims": {"enabled": False}, **analysis},
              "report": {"figures": False}}
    path = Path(folder) / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_a_batch_dependent_spec_is_refused_at_load_with_the_fix(tmp_path):
    with pytest.raises(BatchDependenceError) as e:
        load_model(write_spec(tmp_path, WAV2VEC2), variant="tiny")
    message = str(e.value)
    assert "layer encoder.layers." in message and "of its largest value" in message
    assert "GroupNorm" in message and "record.batch_size: 1" in message
    wrapper = load_model(write_spec(tmp_path, fixed(WAV2VEC2), "fixed"), variant="tiny")
    assert wrapper.measured.passed and set(wrapper.measured.worst) == {"speech"}
    assert wrapper.measured.worst["speech"][0] < 1e-5


def test_the_check_measures_what_it_says(tmp_path):
    """The measured difference is the largest one, recomputed here from the layers themselves."""
    from probekit.batch import capture
    from probekit.selfcheck import probe_pair

    spec = yaml.safe_load(yaml.safe_dump(WAV2VEC2))
    spec["check"] = False
    wrapper = load_model(write_spec(tmp_path, spec), variant="tiny")
    assert wrapper.measured is None  # check: false skips it
    pair = probe_pair("speech")
    together, _ = capture(wrapper, pair, pool="none")
    worst = 0.0
    for i, ex in enumerate(pair):
        alone, _ = capture(wrapper, [ex], pool="none")
        for layer in wrapper.layers():
            ref = alone[layer][0].double()
            worst = max(worst, float((together[layer][i].double() - ref).abs().max()
                                     / ref.abs().max()))
    measured = batch_independence(wrapper)
    assert measured.worst["speech"][0] == pytest.approx(worst, rel=1e-9) and worst > 0.01


def test_a_run_stops_before_extraction_and_goes_on_when_examples_run_alone(tmp_path, capsys):
    recipe = write_recipe(tmp_path, write_spec(tmp_path, WAV2VEC2))
    out = tmp_path / "out"
    assert main([str(recipe), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "record.batch_size: 1" in err
    assert not list((out / "store" / "shards").glob("*"))  # nothing extracted
    assert "record.batch_size: 1" in (out / "run.log").read_text()  # fatal errors in run.log
    assert main([str(recipe), "--out", str(out), "--quiet", "--stage", "extract",
                 "record.batch_size=1"]) == 0
    assert "every example runs alone and the run goes on" in (out / "run.log").read_text()
    from probekit.store import open_store
    assert len(open_store(out / "store")) == 16


def test_the_run_checks_on_its_own_data_and_records_it(tmp_path, caplog):
    caplog.set_level(logging.INFO)  # as the command line logs (pytest's handler is first)
    recipe = write_recipe(tmp_path, write_spec(tmp_path, fixed(WAV2VEC2)))
    out = tmp_path / "out"
    assert main([str(recipe), "--out", str(out), "--quiet", "--stage", "extract"]) == 0
    log = (out / "run.log").read_text()
    assert "batch independence measured now on 2 speech examples" in log
    assert "from the data" in log
    from probekit.store import open_store
    provenance = open_store(out / "store").provenance
    assert "checked before extraction" in provenance["self_check"]["batch_independence"]
    assert main([str(recipe), "--out", str(tmp_path / "off"), "--quiet", "--stage", "extract",
                 "model.check=false"]) == 0
    provenance = open_store(tmp_path / "off" / "store").provenance
    assert provenance["self_check"] == {"batch_independence": "not checked (check: false)"}


def test_a_dry_run_prints_what_it_measured_for_a_users_spec(tmp_path, capsys):
    recipe = write_recipe(tmp_path, write_spec(tmp_path, fixed(WAV2VEC2)))
    assert main([str(recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    measured = [line for line in out.splitlines() if "measured):" in line]
    assert measured and "batch independence measured now on 2 speech examples" in measured[0]
    assert "tests/test_fidelity.py" not in out and "CTranslate2" not in out
    assert "startoftranscript" not in out and "ready: everything" in out
    recipe = write_recipe(tmp_path, write_spec(tmp_path, WAV2VEC2))
    assert main([str(recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "not ready" in out and "record.batch_size: 1" in out and "ready: every" not in out


def test_a_shipped_spec_prints_its_tested_claims_and_a_changed_one_does_not(capsys):
    from probekit.wrappers import fidelity

    assert any("test_fidelity.py" in c for c in fidelity(load_spec("hubert_large")))
    assert not any("CTranslate2" in c for c in fidelity(load_spec("hubert_large")))
    assert any("CTranslate2" in c for c in fidelity(load_spec("whisper_base")))
    assert fidelity(load_spec("whisper_base", checkpoint="/elsewhere")) == ()


def test_a_speech_batch_the_extractor_cannot_pad_is_one_message(tmp_path, capsys):
    spec = fixed(WAV2VEC2)
    del spec["options"]["extractor_options"]  # padded by default now
    assert load_model(write_spec(tmp_path, spec), variant="tiny").measured.passed
    spec["options"]["extractor_options"] = {"padding": False}  # a spec that says otherwise
    with pytest.raises(RecordingError, match=r"a padded batch of 2 speech examples fails in the "
                       r"model \(ValueError: .*options.extractor_options: \{padding: true\}"):
        load_model(write_spec(tmp_path, spec), variant="tiny")
    recipe = write_recipe(tmp_path, write_spec(tmp_path, spec))
    assert main([str(recipe), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "not ready" in captured.out and "extractor_options: {padding: true}" in captured.out


def test_a_stack_without_a_length_rule_is_told_in_spec_keys(tmp_path, capsys):
    from probekit.layers import main as layers

    spec = fixed(WAV2VEC2)
    del spec["options"]["lengths"]
    path = write_spec(tmp_path, spec)
    with pytest.raises(RecordingError) as e:
        load_model(path, variant="tiny")
    assert "options.lengths: {encoder: {rule: input}}" in str(e.value)
    assert "set_lengths" not in str(e.value) and "Recorder(" not in str(e.value)
    assert layers([str(path), "--variant", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "NONE: no length rule" in out and "warning: stack(s) encoder have no length rule" in out


def test_spec_fields_are_required_only_where_the_wrapper_uses_them(tmp_path):
    spec = fixed(WAV2VEC2)
    del spec["checkpoint"]  # a tiny-only spec
    path = write_spec(tmp_path, spec)
    assert load_model(path, variant="tiny").measured.passed
    with pytest.raises(SpecError, match="no checkpoint: name a hub id or local folder"):
        load_model(path)
    del spec["model_class"]
    with pytest.raises(SpecError, match="builds the model from model_class"):
        load_spec(write_spec(tmp_path, spec))


def test_a_plugin_spec_needs_no_model_class_and_no_checkpoint(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    monkeypatch.setenv("PROBEKIT_ALLOW_CODE", "1")  # a class path: code the user allows
    path = tmp_path / "toy.yaml"
    path.write_text("wrapper: toy_plugin:ToyWrapper\nmodalities: [text]\n"
                    "stacks: {blocks: ['blocks.*']}\ntiny: {seed: 0, width: 8, depth: 2}\n")
    wrapper = load_model(path, variant="tiny")
    assert wrapper.measured.passed and wrapper.spec.model_class == ""


def test_knowable_failures_are_refused_by_the_dry_run(tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(MANIFEST.parent, data)
    (data / "audio" / "fra" / "3.ogg").unlink()
    (data / "audio" / "eng" / "5.ogg").unlink()
    recipe = write_recipe(tmp_path, write_spec(tmp_path, fixed(WAV2VEC2)), k=3)
    text = yaml.safe_load(recipe.read_text())
    text["data"]["path"] = str(data / "manifest.tsv")
    recipe.write_text(yaml.safe_dump(text))
    assert main([str(recipe), "--dry-run", "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "not ready" in out
    assert "analysis.k=3 needs at least 12 sentences" in out and "at most 2" in out
    assert "2 audio file(s) named by the data are missing" in out and "3.ogg" in out
    assert main([str(recipe), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "analysis.k=3 needs at least 12 sentences" in capsys.readouterr().err
    assert "analysis.k=3 needs" in (tmp_path / "out" / "run.log").read_text()


def test_probes_come_from_the_recipes_data(tmp_path):
    from probekit.pipeline import resolve_run
    from probekit.pipeline.fidelity import data_probes
    from probekit.pipeline.inputs import examples_for
    from probekit.recipe import load_recipe

    recipe = write_recipe(tmp_path, write_spec(tmp_path, fixed(WAV2VEC2)))
    run = resolve_run(load_recipe(recipe), tmp_path / "out")
    examples, _ = examples_for(run.data)
    wrapper = load_model(run.spec, variant="tiny", check=False)
    probes = data_probes(examples, wrapper)
    a, b = probes["speech"]
    assert a["lang"] == b["lang"] == "eng" and len(a["audio"]) < len(b["audio"])
    assert isinstance(a["audio"], np.ndarray) and a["id"] != b["id"]


def readme_specs():
    """The specs of models/README.md's "Bring your own model" section, by file name."""
    import re

    text = (ROOT / "models" / "README.md").read_text()
    section = text.split("## Bring your own model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    names = re.findall(r"\(`(my_\w+)\.yaml`\)", section)
    assert len(blocks) == len(names) == 2, names
    return dict(zip(names, blocks, strict=True))


@pytest.mark.parametrize("name", ["my_wav2vec2", "my_bert"])
def test_the_bring_your_own_model_specs_pass_the_check(name, tmp_path):
    from transformers import BertTokenizer

    from probekit.wrappers.hf import HFModel

    path = tmp_path / f"{name}.yaml"
    path.write_text(readme_specs()[name])
    wrapper = load_model(path, variant="tiny")
    assert wrapper.measured.passed and wrapper.spec.shipped is False
    if name == "my_bert":  # BERT's own tokenizer class on a toy vocabulary
        words = "the cat sat on a mat probekit checks every layer of model longer sentence , ."
        vocab = tmp_path / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                    *words.split()]) + "\n")
        bert = HFModel(wrapper.model, wrapper.spec, BertTokenizer(str(vocab)), None)
        measured = batch_independence(bert)
        assert measured.passed and measured.layers == {"text": 2}
    else:  # the same spec on wav2vec2-base's group-norm front end is refused, with the fix
        spec = yaml.safe_load(path.read_text())
        spec["tiny"]["config"]["feat_extract_norm"] = "group"
        spec["tiny"]["config"]["do_stable_layer_norm"] = False
        with pytest.raises(BatchDependenceError, match="record.batch_size: 1"):
            load_model(write_spec(tmp_path, spec, "base"), variant="tiny")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_has_its_own_tolerance_and_still_catches_the_defect(dtype, tmp_path):
    from probekit.selfcheck import TOLERANCE

    good = load_model(write_spec(tmp_path, fixed(WAV2VEC2), "fixed"), variant="tiny",
                      dtype=dtype)
    assert good.measured.tolerance == TOLERANCE[good.model.dtype] > 1e-4
    assert good.measured.passed
    # float16 rounds a padded batch differently from one example; bfloat16 may not: torch 2.13's
    # bfloat16 kernels on an AVX2-only CPU (AMD EPYC) give both the same bits, a difference of 0
    worst = good.measured.worst["speech"][0]
    assert worst > 0 if dtype == "float16" else 0 <= worst <= good.measured.tolerance
    with pytest.raises(BatchDependenceError):
        load_model(write_spec(tmp_path, WAV2VEC2), variant="tiny", dtype=dtype)
