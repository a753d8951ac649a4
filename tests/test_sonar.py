"""SONAR wrapper on tiny fairseq2 models built by sonar's own factories (reference leg only)."""

import os

import numpy as np
import pytest
import torch

pytest.importorskip("sonar", reason="SONAR (fairseq2) is in the reference environment only")

from probekit.batch import capture  # noqa: E402
from probekit.languages import LanguageError  # noqa: E402
from probekit.wrappers import ModelLoadError, SpecError, load_model  # noqa: E402


@pytest.fixture(scope="module")
def sonar():
    return load_model("sonar", variant="tiny")


def batch(modality, lang="fra", durations=(1.0, 2.3, 0.6)):
    rng = np.random.default_rng(0)
    return [{"id": f"{modality}{i}", "modality": modality, "lang": lang,
             "text": "une phrase courte " * (i + 1),
             "audio": 0.1 * rng.standard_normal(int(16000 * d)).astype(np.float32)}
            for i, d in enumerate(durations)]


def test_stacks_match_the_configs(sonar):
    tiny = sonar.spec.tiny
    assert len(sonar.stacks["text_encoder"]) == tiny["text"]["num_encoder_layers"]
    assert len(sonar.stacks["speech_encoder"]) == tiny["speech"]["encoder"]["num_encoder_layers"]
    assert len(sonar.stacks["speech_pooler"]) == tiny["speech"]["num_decoder_layers"]


def test_speech_lengths_follow_frame_stacking_and_embeddings_match(sonar):
    b = batch("speech")
    sonar.mount(b)
    raw = {}
    hooks = [sonar.model.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: raw.__setitem__(n, o.double()))
        for n in sonar.stacks["speech_encoder"]]
    try:
        rec, inputs = capture(sonar, b, pool="mean")
        lengths = inputs.lengths
    finally:
        for h in hooks:
            h.remove()
    speech = sonar.layers(["speech_encoder", "speech_pooler", "speech_embedding"])
    assert {n for n, c in rec.calls.items() if c} == set(speech)
    assert all(rec.calls[n] == 1 for n in speech)
    frames = [int(np.floor((d * 16000 - 400) / 160)) + 1 for d in (1.0, 2.3, 0.6)]  # 25 ms / 10 ms
    assert lengths["speech_encoder"].tolist() == [f // 2 for f in frames]
    assert lengths["speech_encoder"].tolist() == list(
        sonar.last_output.encoded_seqs_layout.seq_lens)
    torch.testing.assert_close(rec["speech_encoder.sentence_embedding"],
                               sonar.last_output.sentence_embeddings, rtol=0, atol=0)
    for name, out in raw.items():
        for i, n in enumerate(lengths["speech_encoder"].tolist()):
            torch.testing.assert_close(rec[name][i].double(), out[i, :n].mean(0),
                                       rtol=1e-5, atol=1e-6)


def test_text_embedding_is_the_models_own(sonar):
    rec, inputs = capture(sonar, batch("text"), ["text_encoder", "text_embedding"], pool="none")
    lengths = inputs.lengths
    assert ([t.shape[0] for t in rec["text_encoder.encoder.layers.1"]]
            == lengths["text_encoder"].tolist())
    got = torch.cat(rec["text_encoder.sentence_embedding"])
    torch.testing.assert_close(got, sonar.last_output.sentence_embeddings, rtol=0, atol=0)


def test_a_language_without_speech_encoder_fails_before_loading(sonar):
    with pytest.raises(LanguageError, match="no speech encoder for 'yor'"):
        sonar.mount(batch("speech", lang="yor"))


def test_unsupported_languages_are_refused_before_any_model_loads(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a load would fail differently: ModelLoadError
    with pytest.raises(SpecError, match="options: SONAR has no speech encoder for 'yor'"):
        load_model("sonar", options={"languages": ["eng", "yor"]})


def test_real_assets_fail_offline_with_an_actionable_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FAIRSEQ2_CACHE_DIR", os.path.join(os.getcwd(), ".no-cache-here"))
    with pytest.raises(ModelLoadError, match="text_sonar_basic_encoder"):
        load_model("sonar")


def test_dry_run_tells_which_fairseq2_assets_are_cached_as_fairseq2_finds_them(tmp_path):
    """In a fresh process whose fairseq2 cache is an empty folder: every asset is missing;
    after one checkpoint is put where fairseq2 caches downloads, probekit says it is here and
    fairseq2's own download manager, offline (local_only), finds it there."""
    import subprocess
    import sys

    script = r'''
import hashlib, sys
from pathlib import Path
from fairseq2.assets import AssetDownloadError, get_asset_download_manager, get_asset_store
from fairseq2.utils.uri import Uri
from probekit.wrappers import load_spec
from probekit.wrappers.sonar import Sonar

spec = load_spec("sonar")
before = Sonar.required_weights(spec, ["fra"], speech=True)
assert [n for n, _, here in before] == ["text_sonar_basic_encoder checkpoint",
    "text_sonar_basic_encoder tokenizer", "sonar_speech_encoder_fra checkpoint"], before
assert not any(here for _, _, here in before), before
uri = str(get_asset_store().retrieve_card("text_sonar_basic_encoder").field("checkpoint").as_uri())
folder = Path(sys.argv[1]) / hashlib.sha1(uri.encode()).hexdigest()[:24]
folder.mkdir(parents=True)
(folder / "sonar_text_encoder.pt").write_bytes(b"weights")
after = {n: here for n, _, here in Sonar.required_weights(spec, ["fra"], speech=True)}
assert after == {"text_sonar_basic_encoder checkpoint": True,
                 "text_sonar_basic_encoder tokenizer": False,
                 "sonar_speech_encoder_fra checkpoint": False}, after
manager = get_asset_download_manager()
found = manager.download_model(Uri.parse(uri), local_only=True)
assert Path(found).parent == folder, found
tokenizer = get_asset_store().retrieve_card("text_sonar_basic_encoder").field("tokenizer")
try:
    manager.download_tokenizer(tokenizer.as_uri(), local_only=True)
    raise SystemExit("fairseq2 found a tokenizer probekit calls missing")
except AssetDownloadError:
    pass
print("agree")
'''
    cache = tmp_path / "fairseq2"
    done = subprocess.run([sys.executable, "-c", script, str(cache)], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "FAIRSEQ2_CACHE_DIR": str(cache)})
    assert done.returncode == 0 and "agree" in done.stdout, done.stderr[-3000:]
