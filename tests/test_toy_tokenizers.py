"""The toy tokenizers of toy_tokenizers.py: real transformers classes with the special-token layout
of the released checkpoints and the same ids under transformers 4.57 and 5.x (an ordinary text
encodes as the raw sentencepiece model does, framed by the class's special tokens)."""

from pathlib import Path

import pytest
import torch
import toy_tokenizers as tt
import transformers
from transformers import AutoTokenizer

TEXT = "Bonjour le monde, ça va?"


def spm_ids(tok, text=TEXT, offset=1):
    """``text`` as the toy sentencepiece model encodes it, shifted by the fairseq ``offset``."""
    model = next(Path(tok.name_or_path).glob("*.model"))
    return [i + offset for i in tt._processor(model).encode(text)]


def test_seamless_m4t(tmp_path):
    tok = tt.seamless_m4t_tokenizer(tmp_path)
    assert type(tok).__name__ == "SeamlessM4TTokenizer"
    assert (tok.pad_token_id, tok.unk_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2, 3)
    langs = tok.convert_tokens_to_ids(["__eng__", "__fra__", "__deu__", "__spa__"])
    assert langs == [257, 258, 259, 260] and len(tok) == 261
    body = spm_ids(tok)
    # 4.57 pads to an even length unless told not to (padding=True, pad_to_multiple_of=2 by default)
    assert tok(TEXT, src_lang="fra", padding=False).input_ids == [258] + body + [3]
    assert tok(text_target=TEXT, tgt_lang="deu", padding=False).input_ids == [3, 259] + body + [3]
    # back in source mode, src_lang kept
    assert tok(TEXT, padding=False).input_ids == [258] + body + [3]
    assert tok.decode([258] + body + [3], skip_special_tokens=True) == TEXT


def test_seamless_m4t_languages(tmp_path):
    tok = tt.seamless_m4t_tokenizer(tmp_path, langs=("fra", "cmn"))
    assert tok.convert_tokens_to_ids(["__fra__", "__cmn__"]) == [257, 258] and len(tok) == 259
    assert tok("x", src_lang="cmn", padding=False).input_ids[0] == 258


def test_llama(tmp_path):
    tok = tt.llama_tokenizer(tmp_path)
    assert type(tok).__name__ == "LlamaTokenizer"
    assert ((tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
            == (0, 1, 2, None))
    assert len(tok) == 512 and tok.convert_ids_to_tokens([3, 258]) == ["<0x00>", "<0xFF>"]
    assert tok(TEXT).input_ids == [1] + spm_ids(tok, offset=0)
    assert tok(TEXT, add_special_tokens=False).input_ids == spm_ids(tok, offset=0)
    bytes_ = [3 + b for b in "東".encode()]  # not in the corpus: byte fallback
    assert tok("東", add_special_tokens=False).input_ids[-3:] == bytes_
    assert tok.decode(tok(TEXT).input_ids, skip_special_tokens=True) == TEXT


def test_llama_differences_between_transformers_4_and_5(tmp_path):
    """Text after a special token and text opening with a space: 4.57's sentencepiece LlamaTokenizer
    honours ``legacy`` and keeps a leading space as its own "▁"; 5.x is always non-legacy and folds
    the space into the next piece."""
    v5 = int(transformers.__version__.split(".")[0]) >= 5
    legacy = tt.llama_tokenizer(tmp_path / "a", legacy=None)
    strict = tt.llama_tokenizer(tmp_path / "b")
    hello = legacy("Hello", add_special_tokens=False).input_ids  # ▁He llo
    # non-legacy: no "▁" after <s>
    no_space = strict("<s>Hello", add_special_tokens=False).input_ids[1:]
    assert no_space != hello and strict("Hello", add_special_tokens=False).input_ids == hello
    assert legacy("<s>Hello", add_special_tokens=False).input_ids[1:] == (no_space if v5 else hello)
    space = strict.convert_tokens_to_ids("▁")
    assert (strict(" Hi").input_ids[1] == space) is not v5


def test_nllb(tmp_path):
    tok = tt.nllb_tokenizer(tmp_path)
    assert type(tok).__name__ == "NllbTokenizer"
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    ids = tok.convert_tokens_to_ids(["eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn", "<mask>"])
    assert ids == [257, 258, 259, 260, 261] and len(tok) == 262
    body = spm_ids(tok)
    assert tok(TEXT).input_ids == [257] + body + [2]  # src_lang defaults to the first language
    tok.src_lang, tok.tgt_lang = "fra_Latn", "deu_Latn"
    assert tok(TEXT).input_ids == [258] + body + [2]
    assert tok(text_target=TEXT).input_ids == [259] + body + [2]
    assert tok(TEXT, text_target=TEXT)["labels"] == [259] + body + [2]
    other = tt.nllb_tokenizer(tmp_path, langs=("fra_Latn", "zho_Hans"))
    assert other.convert_tokens_to_ids(["fra_Latn", "zho_Hans", "<mask>"]) == [257, 258, 259]


def test_m2m100(tmp_path):
    tok = tt.m2m100_tokenizer(tmp_path)
    assert type(tok).__name__ == "M2M100Tokenizer"
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert [tok.get_lang_id(c) for c in ("en", "fr", "de", "es")] == [257, 258, 259, 260]
    body = spm_ids(tok)
    tok.src_lang, tok.tgt_lang = "fr", "de"
    assert tok(TEXT).input_ids == [258] + body + [2]
    assert tok(text_target=TEXT).input_ids == [259] + body + [2]
    assert tt.m2m100_tokenizer(tmp_path, langs=("fr", "zh")).get_lang_id("zh") == 258


@pytest.mark.parametrize("build", [tt.seamless_m4t_tokenizer, tt.llama_tokenizer, tt.nllb_tokenizer,
                                   tt.m2m100_tokenizer, tt.whisper_tokenizer])
def test_auto_tokenizer_loads_the_folder(tmp_path, build):
    """The folder loads with AutoTokenizer (in 4.57 the fast class where there is one) to the same
    ids."""
    tok = build(tmp_path)
    for text in tt.corpus()[::5]:
        auto = AutoTokenizer.from_pretrained(tok.name_or_path)
        assert auto(text).input_ids == tok(text).input_ids


def test_whisper(tmp_path):
    tok = tt.whisper_tokenizer(tmp_path)
    assert type(tok).__name__ == "WhisperTokenizer"
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    assert eot == tok.vocab_size - 1 == 320
    assert tok.bos_token_id == tok.eos_token_id == tok.pad_token_id == tok.unk_token_id == eot
    names = ["<|startoftranscript|>", "<|en|>", "<|zh|>", "<|de|>", "<|es|>", "<|fr|>",
             "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
             "<|nocaptions|>", "<|notimestamps|>"]
    assert tok.convert_tokens_to_ids(names) == [321, 322, 323, 324, 325, 328, *range(422, 428)]
    assert len(tok) == 428
    tok.set_prefix_tokens(language="french", task="transcribe", predict_timestamps=False)
    ids = tok("bonjour").input_ids
    assert ids[:4] == [321, 328, 423, 427] and ids[-1] == eot
    prefix = "<|startoftranscript|><|fr|><|transcribe|><|notimestamps|>"
    assert tok.decode(ids) == prefix + "bonjour<|endoftext|>"
    assert tok.decode(ids, skip_special_tokens=True) == "bonjour"
    # the body is GPT-2's byte-level BPE: bytes mapped to printable characters, then the merges
    pieces = tok.convert_ids_to_tokens(tok(" ça", add_special_tokens=False).input_ids)
    assert "".join(pieces) == "ĠÃ§a"
    tok.set_prefix_tokens(language="de", task="translate", predict_timestamps=True)
    assert tok("x").input_ids[:3] == [321, 324, 422] and tok("x").input_ids[3] != 427
    assert len(tt.whisper_tokenizer(tmp_path / "t", timestamps=True)) == 428 + 1501


def test_whisper_generate_prefix(tmp_path):
    """generate(language=, task=) feeds sot, language, task, notimestamps on the decoder's first
    step."""
    tok = tt.whisper_tokenizer(tmp_path)
    model = tt.whisper_model(tok)
    steps = []

    def grab(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        steps.append(ids.tolist())

    hook = model.model.decoder.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            out = model.generate(torch.randn(1, 80, 16), language="fr", task="transcribe",
                                 max_new_tokens=3)
    finally:
        hook.remove()
    # <|startoftranscript|><|fr|><|transcribe|><|notimestamps|>
    assert steps[0] == [[321, 328, 423, 427]]
    # then one new token a step (cache)
    assert len(steps) == 3 and all(len(s[0]) == 1 for s in steps[1:])
    assert out.shape == (1, 3)  # the returned sequences leave the prefix out
