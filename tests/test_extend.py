"""Extending probekit: wrapper classes from outside the package (a class path in a spec, or an
installed package's entry point), typed options, convolutional speech encoders from YAML alone,
recipe-relative spec paths, weightless layer listings and the pure comparison plan."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from probekit.batch import capture
from probekit.errors import RecordingError
from probekit.run import main
from probekit.wrappers import SpecError, load_model, load_spec, wrapper_class

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"

TOY_SPEC = """\
wrapper: {wrapper}
checkpoint: none
model_class: ToyEncoder
modalities: [text]
stacks:
  blocks: ["blocks.*"]
options: {options}
tiny: {{seed: 0, width: 16, depth: 3}}
"""


@pytest.fixture
def plugin_path(monkeypatch):
    """The toy plugin importable, and its dist-info (entry points) visible, as pip installs it;
    class paths in specs allowed (``--allow-code``)."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PROBEKIT_ALLOW_CODE", "1")
    yield PLUGINS
    for name in [m for m in sys.modules if m.startswith("toy_plugin")]:
        del sys.modules[name]


def write_spec(folder: Path, wrapper: str, options: str = "{}") -> Path:
    path = folder / "toy.yaml"
    path.write_text(TOY_SPEC.format(wrapper=wrapper, options=options))
    return path


@pytest.mark.parametrize("wrapper", ["toy_plugin:ToyWrapper", "toy"])
def test_a_wrapper_from_outside_probekit_records_like_a_builtin(plugin_path, tmp_path, wrapper):
    """``toy_plugin:ToyWrapper`` by class path; ``toy`` through the entry point that the
    plugin's dist-info declares (importlib.metadata finds it on sys.path, as for a pip install)."""
    from toy_plugin import ToyWrapper

    assert wrapper_class(wrapper) is ToyWrapper
    wrapper = load_model(write_spec(tmp_path, wrapper, "{scale: 2.0}"), variant="tiny")
    assert wrapper.spec.options.scale == 2.0 and wrapper.layers() == [
        "blocks.0", "blocks.1", "blocks.2"]
    batch = [{"id": str(i), "modality": "text", "lang": "eng", "text": t}
             for i, t in enumerate(["a longer sentence", "short"])]
    rec, inputs = capture(wrapper, batch, pool="mean")
    assert inputs.lengths["blocks"].tolist() == [17, 5]
    # an independent float64 reference: the blocks' outputs averaged over the real bytes
    model = wrapper.model.double()
    for i, ex in enumerate(batch):
        x = model.embed(torch.tensor(list(ex["text"].encode()))) * 2.0
        for k, block in enumerate(model.blocks):
            y = block(x)  # a block's own output (the residual sum is the parent's)
            torch.testing.assert_close(rec[f"blocks.{k}"][i].double(), y.mean(0),
                                       rtol=1e-5, atol=1e-5)
            x = x + y


def test_plugin_options_are_typed_and_typos_get_a_suggestion(plugin_path, tmp_path):
    with pytest.raises(SpecError, match=r"options.scal: unknown key; did you mean options.scale"):
        load_spec(write_spec(tmp_path, "toy", "{scal: 2.0}"))
    with pytest.raises(SpecError, match=r"options.scale: expected float, got 'big'"):
        load_spec(write_spec(tmp_path, "toy", "{scale: big}"))


def test_a_wrapper_that_cannot_be_used_is_one_clear_error(plugin_path, tmp_path):
    with pytest.raises(SpecError, match="does not implement inputs"):
        load_spec(write_spec(tmp_path, "toy_plugin:Incomplete"))
    with pytest.raises(SpecError, match="cannot import no_such_package"):
        load_spec(write_spec(tmp_path, "no_such_package.mod:Cls"))
    with pytest.raises(SpecError, match="unknown wrapper 'toi'; did you mean 'toy'"):
        load_spec(write_spec(tmp_path, "toi"))
    with pytest.raises(SpecError, match="not a subclass of probekit.wrappers.Wrapper"):
        load_spec(write_spec(tmp_path, "toy_plugin:ToyEncoder"))


def test_a_recipe_finds_its_spec_next_to_it_whatever_the_working_directory(
        plugin_path, tmp_path, monkeypatch):
    """model.spec as a path is relative to the recipe, as data.path is (it was the working
    directory's); the whole pipeline runs on the plugin family."""
    project = tmp_path / "project"
    (project / "specs").mkdir(parents=True)
    write_spec(project / "specs", "toy")
    manifest = project / "sentences.tsv"
    rows = ["sentence\tlang\ttext"] + [
        f"{i}\t{lang}\t{word} number {i} in {lang}"
        for i in range(12) for lang, word in (("eng", "sentence"), ("fra", "phrase"))]
    manifest.write_text("\n".join(rows) + "\n")
    (project / "recipe.yaml").write_text(
        "name: toy\ndata: {source: manifest, path: sentences.tsv, languages: [eng, fra], "
        "modalities: [text]}\nmodel: {spec: specs/toy.yaml, variant: tiny}\n"
        "analysis: {k: 2, n_perm: 2, cross_lingual: [blocks]}\nreport: {figures: false}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main([str(project / "recipe.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    import pandas as pd
    sims = pd.read_csv(tmp_path / "out" / "results" / "similarities.csv")
    assert sorted(sims["layer_a"].unique()) == ["blocks.0", "blocks.1", "blocks.2"]
    assert not (tmp_path / "out" / "figures").exists()  # report.figures: false is honoured


def test_figures_are_written_when_asked(plugin_path, tmp_path):
    """The other side of report.figures: the same recipe with figures on draws them."""
    project = tmp_path / "p"
    project.mkdir()
    write_spec(project, "toy")
    rows = ["sentence\tlang\ttext"] + [f"{i}\t{lang}\tsome text {i} {lang}"
                                           for i in range(12) for lang in ("eng", "fra")]
    (project / "s.tsv").write_text("\n".join(rows) + "\n")
    (project / "r.yaml").write_text(
        "name: toy\ndata: {source: manifest, path: s.tsv, languages: [eng, fra], "
        "modalities: [text]}\nmodel: {spec: toy.yaml, variant: tiny}\n"
        "analysis: {k: 2, n_perm: 2, cross_lingual: [blocks]}\n")
    assert main([str(project / "r.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert list((tmp_path / "out" / "figures").glob("*.png"))


# -- convolutional speech encoders from YAML -------------------------------------------------
def conv_lengths(samples: int, config) -> int:
    """Independent: each convolution of the front end maps L to floor((L - k) / s) + 1."""
    for k, s in zip(config.conv_kernel, config.conv_stride, strict=True):
        samples = (samples - k) // s + 1
    return samples


def speech(durations, seed=0):
    rng = np.random.default_rng(seed)
    return [{"id": str(i), "modality": "speech", "lang": "eng",
             "audio": 0.1 * rng.standard_normal(int(d * 16000)).astype(np.float32)}
            for i, d in enumerate(durations)]


def test_hubert_from_yaml_gets_exact_lengths_from_the_models_own_rule():
    hubert = load_model("hubert_large", variant="tiny")
    batch = speech([1.0, 0.55, 0.83])
    rec, inputs = capture(hubert, batch, pool="none")
    expected = [conv_lengths(len(ex["audio"]), hubert.model.config) for ex in batch]
    assert inputs.lengths["encoder"].tolist() == expected
    assert [t.shape[0] for t in rec["encoder.layers.1"]] == expected


def test_a_stride_rule_is_off_by_one_for_a_convolutional_front_end():
    """The defect ``rule: model`` fixes: samples / total stride, rounded up, is one frame too
    many for every clip, which the recorder refuses instead of pooling a padded frame."""
    spec = load_spec("hubert_large")
    rules = {"encoder": dataclasses.replace(spec.options.lengths["encoder"], rule="input",
                                            stride=20)}  # the tiny front end's total stride
    hubert = load_model(spec, variant="tiny", check=False,
                        options=dataclasses.replace(spec.options, lengths=rules))
    with pytest.raises(RecordingError, match="the longest valid length is 800 but the output "
                                             "has 799 positions"):
        capture(hubert, speech([1.0, 0.5]), pool="mean")


def test_hf_options_are_typed_with_suggestions(tmp_path):
    text = (ROOT / "models" / "whisper.yaml").read_text().replace("  lengths:", "  lenghts:")
    (tmp_path / "w.yaml").write_text(text)
    with pytest.raises(SpecError, match=r"options.lenghts: unknown key; did you mean "
                                        r"options.lengths\?"):
        load_spec(tmp_path / "w.yaml")
    text = (ROOT / "models" / "whisper.yaml").read_text().replace(
        "{rule: decoder}", "{rule: decoder, stride: two}")
    (tmp_path / "w.yaml").write_text(text)
    with pytest.raises(SpecError, match=r"options.lengths.decoder.stride: expected int"):
        load_spec(tmp_path / "w.yaml")


def test_every_option_of_every_family_is_documented():
    from probekit.config import describe_fields
    from probekit.wrappers import families

    readme = (ROOT / "models" / "README.md").read_text()
    for family in families():
        for name, _type, _default, doc in describe_fields(wrapper_class(family).Options):
            assert doc, (family, name)
            assert f"`{name}`" in readme, (family, name)


# -- layers from a config alone --------------------------------------------------------------
def released_config(name: str, folder: Path) -> Path:
    """A local config.json with the released checkpoint's architecture (transformers' own
    config classes; SeamlessM4Tv2Config's defaults are the large model's)."""
    import transformers

    configs = {
        "seamless_m4t_v2": transformers.SeamlessM4Tv2Config(),
        "whisper": transformers.WhisperConfig(
            d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
            decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120,
            num_mel_bins=80, vocab_size=51865),
        "hubert_large": transformers.HubertConfig(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
            intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True,
            conv_bias=True),
    }
    configs[name].save_pretrained(folder / name)
    return folder / name


@pytest.mark.parametrize("name", ["seamless_m4t_v2", "whisper", "hubert_large"])
def test_layers_of_a_released_architecture_from_its_config_alone(name, tmp_path, capsys):
    from probekit.layers import main as layers

    folder = released_config(name, tmp_path)
    assert layers([name, "--checkpoint", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "no weights loaded" in out
    spec = load_spec(name)
    rows = [line.split() for line in out.splitlines()[1:-1]]
    for stack, (blocks, width) in spec.sizes.items():
        mine = [r for r in rows if r[0] == stack]
        assert len(mine) == blocks, (stack, len(mine))
        if stack != "adaptor":  # the adaptor's pseudo-layer and its layer norm
            assert {r[4] for r in mine} == {str(width)}, (stack, mine[:2])


def test_layers_offline_is_one_clear_message(monkeypatch, capsys, tmp_path):
    from probekit.layers import main as layers

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    assert layers(["seamless_m4t_v2"]) == 2
    err = capsys.readouterr().err
    assert "not in the local Hugging Face cache" in err and "Traceback" not in err


# -- the comparison plan ---------------------------------------------------------------------
def test_the_plan_is_a_pure_function_of_recipe_spec_and_store_index():
    from probekit.pipeline.analyses import plan
    from probekit.recipe import AnalysisSection

    stacks = {"speech": ["enc.s.*"], "text": ["enc.t.*"], "dec": ["dec.*"]}
    layers = [f"enc.s.{i}" for i in range(4)] + [f"enc.t.{i}" for i in range(2)] + ["dec.0"]
    a = AnalysisSection(cross_modal=[["speech", "text"]], cross_lingual=["speech", "dec"],
                        depth_alignment="relative", adaptation_points={"mid": "enc.s.1"})
    recorded = {name: {"speech"} if name.startswith("enc.s") else
                {"text"} if name.startswith("enc.t") else {"speech", "text"} for name in layers}
    got = plan(a, stacks, ["text", "speech"], layers, recorded.__getitem__)
    assert [(c.analysis, c.stack, c.modality) for c in got] == [
        ("cross_modal", "speech~text", ""), ("cross_lingual", "speech", "speech"),
        ("cross_lingual", "dec", "text"), ("cross_lingual", "dec", "speech"),
        ("adaptation", "adaptation", "")]
    assert got[0].pairs == (("enc.s.0", "enc.t.0"), ("enc.s.3", "enc.t.1"))  # relative depth
    assert got[1].layers == tuple(f"enc.s.{i}" for i in range(4))
    assert got[-1].pairs == (("enc.s.1", "enc.t.1"),)  # the text stack's last layer


def test_sonar_layers_from_its_fairseq2_asset_cards():
    pytest.importorskip("sonar", reason="SONAR (fairseq2) is in the reference environment only")
    from probekit.layers import describe_skeleton

    for lang, pooler in (("eng", 3), ("fra", 6)):  # the released pooler depths
        spec = load_spec("sonar", options={"probe_language": lang})
        rows = describe_skeleton(spec)
        count = {stack: sum(r[0] == stack for r in rows) for stack in spec.stacks}
        assert count == {"text_encoder": 24, "text_embedding": 1, "speech_encoder": 24,
                         "speech_pooler": pooler, "speech_embedding": 1}
        assert {r[3] for r in rows if r[0] in ("text_encoder", "speech_encoder")} == {
            "width 1024"}


def test_the_probekit_command_lists_its_tools_and_suggests_on_a_typo(capsys):
    from probekit.cli import main as probekit

    assert probekit(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in ("probekit run", "dry-run", "layers", "store verify"))
    assert probekit(["layer", "whisper"]) == 2
    assert "did you mean 'layers'?" in capsys.readouterr().err
    assert probekit(["specs"]) == 0
    out = capsys.readouterr().out
    assert "hubert_large" in out and "demo" in out
    assert probekit(["options", "sonar"]) == 0
    assert "probe_language (str, default 'eng')" in capsys.readouterr().out
    assert probekit(["dry-run", "demo"]) == 0  # a shipped recipe by name
    assert "ready: everything this recipe needs is available here" in capsys.readouterr().out


def test_the_top_level_names_are_what_they_say_after_any_import():
    """``probekit.capture`` stays the function once the modules behind it are imported (a
    submodule of the same name would replace it), and ``import probekit`` loads no torch."""
    import subprocess

    code = ("import sys, probekit; assert 'torch' not in sys.modules; "
            "from probekit.wrappers import load_model; load_model('whisper', variant='tiny'); "
            "import probekit.run; assert callable(probekit.capture), probekit.capture; "
            "assert probekit.capture.__module__ == 'probekit.batch'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
