"""Real transformers tokenizers (SeamlessM4T, LLaMA, NLLB, M2M100, Whisper) built offline from toy
vocabularies, for tests: the code paths of a released checkpoint's tokenizer, with a few hundred
tokens. Each builder writes the files a hub folder has into ``folder/<name>`` and loads them with
the class's ``from_pretrained`` (``AutoTokenizer.from_pretrained(tok.name_or_path)`` works too).

Works under transformers 4.57 (slow, sentencepiece-backed classes) and 5.x (the same class names are
``tokenizers``-backed and convert the sentencepiece model on load, reading it with protobuf; without
protobuf the builder does that conversion itself and saves a tokenizer.json, as NLLB/Seamless ship).
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from itertools import pairwise
from pathlib import Path

CORPUS = {
    "en": ["The cat sits on the mat.", "Hello world, how are you today?",
           "I would like a cup of tea, please.", "The weather is nice and the sun is shining.",
           "We are going to the station by train.", "My name is Anna and I live in a small house.",
           "Where is the library? It is near the park.", "They have three children and two dogs.",
           "This morning I read a book about the sea.",
           "The train leaves at 10:45 from platform 3; tickets cost 27.90 euros (2024)."],
    "fr": ["Le chat est assis sur le tapis.", "Bonjour le monde, comment allez-vous aujourd'hui ?",
           "Je voudrais une tasse de thé, s'il vous plaît.", "Il fait beau et le soleil brille.",
           "Nous allons à la gare en train.",
           "Je m'appelle Anna et j'habite dans une petite maison.",
           "Où est la bibliothèque ? Elle est près du parc.",
           "L'élève a réussi l'examen, quelle fête !",
           "Ce matin, j'ai lu un livre sur la mer. Ça coûte cher, garçon.",
           "Le 14 juillet 1789, à 6 h 58."],
    "de": ["Die Katze sitzt auf der Matte.", "Hallo Welt, wie geht es Ihnen heute?",
           "Ich hätte gern eine Tasse Tee, bitte.", "Das Wetter ist schön und die Sonne scheint.",
           "Wir fahren mit dem Zug zum Bahnhof.", "Ich heiße Anna und wohne in einem kleinen Haus.",
           "Wo ist die Bibliothek? Sie ist in der Nähe des Parks.",
           "Über Öl und Ärger spricht man nicht gern.",
           "Heute Morgen habe ich ein Buch über das Meer gelesen. Die Straße ist groß.",
           "Am 3. Oktober 1990 um 0 Uhr."],
    "es": ["El gato está sentado en la alfombra.", "Hola mundo, ¿cómo estás hoy?",
           "Quisiera una taza de té, por favor.", "Hace buen tiempo y el sol brilla.",
           "Vamos a la estación en tren.", "Me llamo Anna y vivo en una casa pequeña.",
           "¿Dónde está la biblioteca? Está cerca del parque.",
           "El niño y la niña comen piña con el señor.",
           "Esta mañana leí un libro sobre el mar. ¡Qué día tan bonito!",
           "Son las 8 y 25, cuesta 19,99 €."],
}
# the sentencepiece settings of the fairseq models (NLLB, M2M100, SeamlessM4T) and LLaMA
SPM_OPTIONS = {
    "fairseq": dict(vocab_size=256),
    "llama": dict(vocab_size=512, byte_fallback=True, split_digits=True,
                  normalization_rule_name="identity", remove_extra_whitespaces=False,
                  allow_whitespace_only_pieces=True),
}
_SPM: dict[str, bytes] = {}  # the trained models, once per session


def corpus() -> list[str]:
    """The toy corpus: English, French, German and Spanish sentences."""
    return [s for lines in CORPUS.values() for s in lines]


def spm_model(path, kind: str = "fairseq") -> Path:
    """Write a toy sentencepiece BPE model (unk 0, <s> 1, </s> 2, no pad) to ``path``, trained on
    ``corpus()`` with ``SPM_OPTIONS[kind]`` once per session: "fairseq" has 256 pieces and NFKC
    normalization; "llama" 512 pieces, byte-fallback pieces <0x00>...<0xFF> at 3-258, no
    normalization."""
    import sentencepiece as spm

    if kind not in _SPM:
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus()), model_writer=buf, model_type="bpe",
            character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1,
            minloglevel=2, **SPM_OPTIONS[kind])
        _SPM[kind] = buf.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_SPM[kind])
    return path


def _processor(model):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(model))


def _added(content: str, special: bool, lstrip: bool = False, normalized: bool = False) -> dict:
    """An added_tokens_decoder entry of tokenizer_config.json."""
    return {"content": content, "lstrip": lstrip, "normalized": normalized, "rstrip": False,
            "single_word": False, "special": special}


def _load(cls_name: str, folder: Path, config: dict, **kwargs):
    """Write tokenizer_config.json and load ``folder`` with transformers' ``cls_name``."""
    import transformers
    from transformers.utils import is_protobuf_available

    cls = getattr(transformers, cls_name)
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": cls_name, **config}))
    (folder / "tokenizer.json").unlink(missing_ok=True)
    model = next(folder.glob("*.model"), None)
    if model and hasattr(cls, "_convert_from_sentencepiece") and not is_protobuf_available():
        # transformers 5 reads the sentencepiece model with protobuf: without it, convert it here
        added = {int(i): transformers.AddedToken(**t)
                 for i, t in config.get("added_tokens_decoder", {}).items()}
        tok = cls(**_spm_kwargs(cls, model), **{**config, "added_tokens_decoder": added})
        tok.save_pretrained(str(folder))
    return cls.from_pretrained(str(folder), **kwargs)


def _spm_kwargs(cls, model) -> dict:
    """What transformers 5 extracts from a sentencepiece BPE model (its SentencePieceExtractor and
    the class's converter), read without protobuf: vocab, merges, the normalizer's precompiled
    charsmap."""
    from transformers.convert_slow_tokenizer import SLOW_TO_FAST_CONVERTERS
    from transformers.tokenization_utils_base import generate_merges

    sp = _processor(model)
    vocab = {sp.id_to_piece(i): i for i in range(len(sp))}
    normalizer = _proto_field(Path(model).read_bytes(), 3)  # ModelProto.normalizer_spec
    kw = {"vocab": vocab, "merges": generate_merges(vocab),  # NormalizerSpec.precompiled_charsmap:
          "_spm_precompiled_charsmap": _proto_field(normalizer, 2) or None}
    converter = SLOW_TO_FAST_CONVERTERS.get(cls.__name__)
    if hasattr(converter, "convert_from_spm"):
        kw = converter.convert_from_spm(**kw)
    return cls.convert_from_spm_model(**kw) if hasattr(cls, "convert_from_spm_model") else kw


def _proto_field(buf: bytes, number: int) -> bytes:
    """The last length-delimited field ``number`` of a serialized protobuf message
    (b"" if absent)."""
    def varint(i):
        n = shift = 0
        while True:
            b = buf[i]
            n, shift, i = n | (b & 0x7F) << shift, shift + 7, i + 1
            if b < 0x80:
                return n, i

    i, found = 0, b""
    while i < len(buf):
        key, i = varint(i)
        kind = key & 7
        if kind == 0:
            _, i = varint(i)
        elif kind == 2:
            n, i = varint(i)
            found, i = (buf[i:i + n] if key >> 3 == number else found), i + n
        else:
            i += 8 if kind == 1 else 4
    return found


def seamless_m4t_tokenizer(folder, langs=("eng", "fra", "deu", "spa")):
    """SeamlessM4TTokenizer: pad 0, unk 1, <s> 2, </s> 3, the spm pieces shifted by one, then
    ``__lang__`` tokens (257...). ``tok(text, src_lang="eng")`` -> ``__eng__ ... </s>``;
    ``tok(text_target=text, tgt_lang="fra")`` -> ``</s> __fra__ ... </s>``."""
    folder = Path(folder) / "seamless_m4t"
    spm_model(folder / "sentencepiece.bpe.model")
    codes = [f"__{lang}__" for lang in langs]
    config = {"additional_special_tokens": codes, "src_lang": codes[0],
              "tgt_lang": codes[min(1, len(codes) - 1)]}
    return _load("SeamlessM4TTokenizer", folder, config)


def llama_tokenizer(folder, legacy: bool | None = False):
    """LlamaTokenizer (as SALMONN loads Vicuna, ``use_fast=False``): unk 0, <s> 1, </s> 2, the byte
    pieces at 3-258, 512 in all, no pad; ``tok(text)`` -> ``<s> ...`` (no </s>). ``legacy=None``
    leaves the key out of tokenizer_config.json, as checkpoints converted before transformers 4.31
    (Vicuna v1.1) do."""
    folder = Path(folder) / "llama"
    spm_model(folder / "tokenizer.model", "llama")
    config = {"add_bos_token": True, "add_eos_token": False, "pad_token": None}
    if legacy is not None:
        config["legacy"] = legacy
    return _load("LlamaTokenizer", folder, config, use_fast=False)


def nllb_tokenizer(folder, langs=("eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn")):
    """NllbTokenizer (non-legacy): <s> 0, <pad> 1, </s> 2, <unk> 3, the spm pieces shifted by one,
    the language codes (257...), then <mask>, as released.
    ``tok.src_lang = "fra_Latn"; tok(text)`` -> ``fra_Latn ... </s>``; after
    ``tok.tgt_lang = "deu_Latn"``, ``tok(text_target=text)`` -> ``deu_Latn ... </s>``."""
    folder = Path(folder) / "nllb"
    n = len(_processor(spm_model(folder / "sentencepiece.bpe.model"))) + 1
    added = {str(n + i): _added(t, special=True) for i, t in enumerate(langs)}
    added[str(n + len(langs))] = _added("<mask>", special=True, lstrip=True, normalized=True)
    return _load("NllbTokenizer", folder, {"added_tokens_decoder": added, "src_lang": langs[0],
                                           "additional_special_tokens": list(langs),
                                           "legacy_behaviour": False})


def m2m100_tokenizer(folder, langs=("en", "fr", "de", "es")):
    """M2M100Tokenizer: <s> 0, <pad> 1, </s> 2, <unk> 3, the spm pieces (vocab.json), then
    ``__lang__`` tokens (a model's vocab_size: len(vocab.json) + len(langs) + 8 made-up words).
    ``tok.src_lang = "fr"; tok(text)`` -> ``__fr__ ... </s>``. The class takes its languages from a
    table keyed by ``language_codes``: ``langs`` is added to it as "toy_en_fr_de_es" (for this
    process only)."""
    from transformers.models.m2m_100 import tokenization_m2m_100 as m2m

    folder = Path(folder) / "m2m100"
    proc = _processor(spm_model(folder / "sentencepiece.bpe.model"))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(3, len(proc)):
        vocab[proc.id_to_piece(i)] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    name = "toy_" + "_".join(langs)
    m2m.FAIRSEQ_LANGUAGE_CODES.setdefault(name, list(langs))
    return _load("M2M100Tokenizer", folder, {"language_codes": name, "src_lang": langs[0],
                                             "tgt_lang": langs[min(1, len(langs) - 1)]})


WHISPER_SPECIALS = ("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                    "<|nocaptions|>", "<|notimestamps|>")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (printable Latin-1 bytes kept, the rest from
    U+0100)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    rest = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(rest)}}


def byte_bpe(words, n_merges: int = 64) -> tuple[list[str], list[tuple[str, str]]]:
    """A toy GPT-2 byte-level BPE learned from pre-split ``words``: the 256 byte symbols in GPT-2's
    order (a space is "Ġ"), then the most frequent pair merged ``n_merges`` times (ties: the
    smallest pair)."""
    byte = bytes_to_unicode()
    counts = Counter(tuple(byte[b] for b in w.encode()) for w in words)
    symbols, merges = list(byte.values()), []
    for _ in range(n_merges):
        pairs = Counter()
        for w, n in counts.items():
            for pair in pairwise(w):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        symbols.append("".join(best))
        new = Counter()
        for w, n in counts.items():
            out, i = [], 0
            while i < len(w):
                take = 2 if w[i:i + 2] == best else 1
                out.append("".join(w[i:i + take]))
                i += take
            new[tuple(out)] += n
        counts = new
    return symbols, merges


def whisper_tokenizer(folder, timestamps: bool = False):
    """WhisperTokenizer laid out as the released multilingual one: byte-level BPE (256 bytes,
    64 merges), ``<|endoftext|>`` (eot = bos = eos = unk = pad) = 320, ``<|startoftranscript|>``,
    every language of transformers' ``LANGUAGES`` in its order (``prefix_tokens`` takes ``<|fr|>``
    as sot + 1 + its index there), translate, transcribe, startoflm, startofprev, nocaptions,
    notimestamps (then, with
    ``timestamps``, the 1501 ``<|0.00|>`` ... ``<|30.00|>``). Text -> ``sot <|fr|> <|transcribe|>
    <|notimestamps|> ... eot`` after ``set_prefix_tokens(language="french", task="transcribe")``."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    folder = Path(folder) / "whisper"
    folder.mkdir(parents=True, exist_ok=True)
    symbols, merges = byte_bpe(w for s in corpus() for w in re.findall(r" ?\w+| ?[^\w\s]+", s))
    eot = "<|endoftext|>"
    vocab = {s: i for i, s in enumerate([*symbols, eot])}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    special = [eot, "<|startoftranscript|>", *(f"<|{c}|>" for c in LANGUAGES), *WHISPER_SPECIALS]
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501 if timestamps else 0)]
    added = [_added(t, special=True) for t in special] + [_added(t, special=False) for t in stamps]
    return _load("WhisperTokenizer", folder, {
        "added_tokens_decoder": {str(len(symbols) + i): t for i, t in enumerate(added)},
        "additional_special_tokens": special, "bos_token": eot, "eos_token": eot, "unk_token": eot,
        "pad_token": eot, "add_prefix_space": False, "errors": "replace", "model_max_length": 1024})


def whisper_generation_config(tok):
    """The GenerationConfig a multilingual Whisper checkpoint ships, with the ids of ``tok``."""
    from transformers import GenerationConfig
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    ids = tok.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    return GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"), bos_token_id=eot, eos_token_id=eot,
        pad_token_id=eot, lang_to_id={f"<|{c}|>": ids(f"<|{c}|>") for c in LANGUAGES},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        is_multilingual=True, begin_suppress_tokens=[ids("Ġ"), eot], suppress_tokens=[],
        max_initial_timestamp_index=50, return_timestamps=False)


def whisper_model(tok, seed: int = 0):
    """A tiny random WhisperForConditionalGeneration for ``tok`` (80 mel bins, 16 input frames),
    eval mode, with ``whisper_generation_config(tok)``."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    gen = whisper_generation_config(tok)
    config = WhisperConfig(
        vocab_size=len(tok), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=8, max_target_positions=32,
        decoder_start_token_id=gen.decoder_start_token_id, pad_token_id=gen.pad_token_id,
        bos_token_id=gen.bos_token_id, eos_token_id=gen.eos_token_id,
        begin_suppress_tokens=None, suppress_tokens=None)  # they are in the generation config
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = gen
    return model
