"""The exact token sequences each wrapper feeds, with the real tokenizer classes (toy vocabularies
trained offline in tests/toy_tokenizers.py), against what each model's own ``generate`` uses."""

import copy

import numpy as np
import pytest
import torch
import toy_tokenizers as toys

from probekit.batch import capture
from probekit.wrappers import SpecError, load_spec
from probekit.wrappers.hf import HFModel

SENTENCES = {"eng": ["The cat sits on the mat.", "I would like a cup of tea, please.",
                     "We are going to the station by train."],
             "fra": ["Le chat est assis sur le tapis.", "Il fait beau et le soleil brille."]}


def first_decoder_input(model, decoder, run):
    """The ``input_ids`` the decoder gets on its first call inside ``run()``."""
    seen = []

    def hook(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if not seen and ids is not None:
            seen.append(ids.clone())
    handle = decoder.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        out = run()
    finally:
        handle.remove()
    return seen[0], out


# -- SeamlessM4T ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seamless(tmp_path_factory):
    from transformers import SeamlessM4TFeatureExtractor, SeamlessM4Tv2Model

    from probekit.wrappers.seamless import SeamlessM4T

    tok = toys.seamless_m4t_tokenizer(tmp_path_factory.mktemp("seamless"))
    spec = load_spec("seamless_m4t_v2")
    config = dict(spec.tiny["config"], vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  decoder_start_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = SeamlessM4Tv2Model(SeamlessM4Tv2Model.config_class(**config))
    model.generation_config.text_decoder_lang_to_code_id = {
        lang: tok.convert_tokens_to_ids(f"__{lang}__") for lang in ("eng", "fra", "deu", "spa")}
    return SeamlessM4T(model, spec, tok, SeamlessM4TFeatureExtractor())


def test_seamless_source_has_no_padding_inside_a_sentence(seamless):
    tok = seamless.tokenizer
    texts = SENTENCES["eng"]
    lengths = {len(tok(t, src_lang="eng", padding=False)["input_ids"]) for t in texts}
    assert any(n % 2 for n in lengths)  # an odd length: the case HF's default padding breaks
    batch = seamless._text(texts, ["eng"] * len(texts))
    for row, mask, text in zip(batch["input_ids"], batch["attention_mask"], texts, strict=True):
        ids = row[mask.bool()].tolist()
        pieces = tok.convert_tokens_to_ids(tok.tokenize(text))
        assert ids == [tok.convert_tokens_to_ids("__eng__")] + pieces + [tok.eos_token_id]
        assert tok.pad_token_id not in ids


def test_seamless_decoder_input_is_the_prefix_generate_uses(seamless):
    from transformers import SeamlessM4Tv2ForTextToText

    tok = seamless.tokenizer
    text = SENTENCES["fra"][0]
    target = seamless._target([text], ["fra"])["input_ids"][0].tolist()
    pieces = tok.convert_tokens_to_ids(tok.tokenize(text))
    fra = tok.convert_tokens_to_ids("__fra__")
    assert target == [tok.eos_token_id, fra] + pieces  # [</s>, __fra__] tokens; no final </s>
    t2t = SeamlessM4Tv2ForTextToText(seamless.model.config).eval()
    t2t.generation_config.text_decoder_lang_to_code_id = (
        seamless.model.generation_config.text_decoder_lang_to_code_id)
    source = seamless._text([SENTENCES["eng"][0]], ["eng"])
    first, out = first_decoder_input(t2t, t2t.text_decoder, lambda: t2t.generate(
        **source, tgt_lang="fra", max_new_tokens=2, do_sample=False))
    prefix = first[0].tolist()
    assert target[:len(prefix)] == prefix == [tok.eos_token_id, fra]


# -- Whisper -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    from transformers import WhisperFeatureExtractor

    tok = toys.whisper_tokenizer(tmp_path_factory.mktemp("whisper"))
    full = toys.whisper_model(tok)
    return HFModel(full.model, load_spec("whisper"), tok, WhisperFeatureExtractor()), full


@pytest.mark.parametrize("lang,code", [("eng", "en"), ("fra", "fr")])
def test_whisper_decoder_input_is_generates_prefix_then_the_text(whisper, lang, code):
    wrapper, full = whisper
    tok = wrapper.tokenizer
    text = SENTENCES[lang][0]
    ids = wrapper.decoder_ids(text, lang)
    mel = torch.zeros(1, 80, 2 * full.config.max_source_positions)
    first, _ = first_decoder_input(full, full.model.decoder, lambda: full.generate(
        mel, language=code, task="transcribe", max_new_tokens=2))
    prefix = first[0].tolist()
    assert prefix == tok.convert_tokens_to_ids(
        ["<|startoftranscript|>", f"<|{code}|>", "<|transcribe|>", "<|notimestamps|>"])
    body = tok(" " + text, add_special_tokens=False)["input_ids"]  # Whisper's leading space
    assert ids == prefix + body
    assert tok.eos_token_id not in ids  # <|endoftext|> is never an input position


def test_whisper_text_runs_the_decoder_alone_on_the_same_tokens(whisper):
    wrapper, _ = whisper
    batch = [{"id": str(i), "modality": "text", "lang": "eng", "text": t}
             for i, t in enumerate(SENTENCES["eng"])]
    first, lengths = first_decoder_input(
        wrapper.model, wrapper.model.decoder,
        lambda: capture(wrapper, batch, ["decoder"], pool="mean")[1].lengths)
    for row, text, n in zip(first, SENTENCES["eng"], lengths["decoder"].tolist(), strict=True):
        assert row[:n].tolist() == wrapper.decoder_ids(text, "eng")


def test_a_language_the_tokenizer_lacks_is_one_clear_error(whisper):
    from probekit.errors import RecordingError

    wrapper, _ = whisper
    with pytest.raises(RecordingError, match="no language token for 'ory'"):
        wrapper.decoder_ids("x", "ory")  # Odia: no Whisper language token


# -- NLLB and M2M100 (translation format) --------------------------------------------------------
def translation_wrapper(tmp_path, tok, codes):
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    spec_path = tmp_path / "translate.yaml"
    spec_path.write_text(f"""
wrapper: hf
checkpoint: toy
model_class: M2M100Model
modalities: [text]
stacks:
  encoder: ["encoder.layers.*"]
  decoder: ["decoder.layers.*"]
options:
  routes: {{text: encoder+decoder}}
  text_format: translation
  language_codes: {codes}
  lengths: {{encoder: {{rule: input}}, decoder: {{rule: decoder}}}}
""")
    config = M2M100Config(vocab_size=len(tok) + 8, d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2,
                          encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
                          pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    full = M2M100ForConditionalGeneration(config).eval()
    return HFModel(full.model, load_spec(spec_path), tok, None), full


@pytest.mark.parametrize("family", ["nllb", "m2m100"])
def test_translation_models_get_language_codes_and_a_shifted_target(tmp_path, family):
    # French to English: neither is the tokenizer's default pair (English to French)
    if family == "nllb":
        tok, codes = toys.nllb_tokenizer(tmp_path), "nllb"
        src_token, tgt_token = "fra_Latn", "eng_Latn"
    else:
        tok, codes = toys.m2m100_tokenizer(tmp_path), "iso639_1"
        src_token, tgt_token = "__fr__", "__en__"
    wrapper, full = translation_wrapper(tmp_path, tok, codes)
    text, target = SENTENCES["fra"][1], SENTENCES["eng"][1]
    source = wrapper._source([text], ["fra"])["input_ids"][0].tolist()
    pieces = tok.convert_tokens_to_ids(tok.tokenize(text))
    assert source == [tok.convert_tokens_to_ids(src_token)] + pieces + [tok.eos_token_id]
    decoder = wrapper.decoder_ids(target, "eng")
    tgt_id = tok.convert_tokens_to_ids(tgt_token)
    assert decoder == ([tok.eos_token_id, tgt_id]
                       + tok.convert_tokens_to_ids(tok.tokenize(target)))
    out = full.generate(torch.tensor([source]), forced_bos_token_id=tgt_id, max_new_tokens=3,
                        do_sample=False, num_beams=1)
    assert decoder[:2] == out[0, :2].tolist()  # generate: decoder start, then the forced language
    batch = [{"id": "a", "modality": "text", "lang": "fra", "text": text,
              "target_lang": "eng", "target_text": target}]
    lengths = capture(wrapper, batch, pool="mean")[1].lengths
    assert lengths["encoder"].tolist() == [len(source)]
    assert lengths["decoder"].tolist() == [len(decoder)]


# -- SALMONN's LLaMA prompt ----------------------------------------------------------------------
def test_salmonn_prompt_ids_are_built_as_the_release_builds_them(tmp_path):
    from probekit.wrappers.salmonn import PROMPT, SALMONN, WINDOWS, build_model

    tok = toys.llama_tokenizer(tmp_path)
    spec = load_spec("salmonn")
    spec = load_spec("salmonn", tiny={**spec.tiny, "llm": {**spec.tiny["llm"],
                                                           "vocab_size": len(tok)}})
    model, _, extractor = build_model(spec, "tiny")
    wrapper = SALMONN(model, spec, tok, extractor, "tiny")
    before, after = PROMPT.format(instruction=wrapper.instruction).split("<SpeechHere>")
    head = [tok.bos_token_id] + tok(before, add_special_tokens=False)["input_ids"]
    tail = tok(after, add_special_tokens=False)["input_ids"]
    seen = []
    hook = model.llm.register_forward_pre_hook(
        lambda m, a, k: seen.append(k["inputs_embeds"].clone()), with_kwargs=True)
    audio = 0.1 * np.random.default_rng(0).standard_normal(20000).astype(np.float32)
    try:
        capture(wrapper, [{"id": "a", "modality": "speech", "lang": "eng", "text": "x",
                           "audio": audio}], ["llm"], pool="mean")
    finally:
        hook.remove()
    table = model.llm.get_input_embeddings().weight
    embeds = seen[0][0]
    assert embeds.shape[0] == len(head) + WINDOWS + len(tail)
    torch.testing.assert_close(embeds[:len(head)], table[head], rtol=0, atol=0)
    torch.testing.assert_close(embeds[-len(tail):], table[tail], rtol=0, atol=0)


def english_only_generation_config(tok):
    """The generation config an English-only Whisper ships: not multilingual, no languages."""
    config = toys.whisper_generation_config(tok)
    config.is_multilingual = False
    del config.lang_to_id
    return config


def test_english_only_whisper_is_prompted_as_released(whisper):
    from transformers import WhisperFeatureExtractor

    from probekit.errors import RecordingError
    from probekit.wrappers.hf import english_only_model

    multilingual, full = whisper
    tok = multilingual.tokenizer
    spec = load_spec("whisper", options={"english_only": True})
    wrapper = HFModel(full.model, spec, tok, WhisperFeatureExtractor())
    multilingual.decoder_ids(SENTENCES["fra"][0], "fra")  # a language set on the tokenizer before
    text = SENTENCES["eng"][0]
    ids = wrapper.decoder_ids(text, "eng")
    released = copy.deepcopy(full)
    released.generation_config = english_only_generation_config(tok)
    mel = torch.zeros(1, 80, 2 * full.config.max_source_positions)
    first, _ = first_decoder_input(released, released.model.decoder,
                                   lambda: released.generate(mel, max_new_tokens=2))
    prefix = first[0].tolist()
    assert prefix == tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|notimestamps|>"])
    assert ids == prefix + tok(" " + text, add_special_tokens=False)["input_ids"]
    assert multilingual.decoder_ids(text, "eng")[:4] == tok.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"])
    with pytest.raises(ValueError, match="English-only"):  # transformers refuses a language
        released.generate(mel, language="en", max_new_tokens=2)
    with pytest.raises(RecordingError, match="English-only Whisper; it takes English"):
        wrapper.decoder_ids(SENTENCES["fra"][0], "fra")
    assert "<|startoftranscript|><|notimestamps|> text" in HFModel.describe_inputs(spec)["speech"]
    # a checkpoint that is English-only by its generation config but not by its name: refused,
    # so that the store's record of the prefix is what ran
    with pytest.raises(SpecError, match="set options.english_only: true"):
        english_only_model(load_spec("whisper"), released)
    assert english_only_model(load_spec("whisper", checkpoint="openai/whisper-base.en"), full)
