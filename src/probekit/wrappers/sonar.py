"""SONAR (sonar-space 0.5 on fairseq2 0.8): one text encoder, one speech encoder per language.

``wrapper.model`` holds ``text_encoder`` (``SonarTextTransformerEncoderModel``) and
``speech_encoder`` (the ``SonarSpeechEncoderModel`` of one language at a time, mounted by
:meth:`Sonar.inputs` before the Recorder is made, so that layer names stay the same for every
language). Stacks: ``text_encoder.encoder.layers``; ``speech_encoder.encoder.layers``
(w2v-BERT conformer); ``speech_encoder.encoder_pooler.decoder.layers`` (the attention-pooling
decoder: one BOS query, so one position); and each encoder's ``sentence_embedding``, a
pseudo-layer holding the model's own pooled sentence embedding.

Speech input is an 80-bin Kaldi fbank of the 16 kHz waveform scaled by 2^15 and standardised per
utterance, as SONAR's own pipeline computes it; the frontend stacks frame pairs, so the
conformer's valid length is half the number of fbank frames (rounded down).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn as nn

from ..data import input_language
from ..errors import ModelLoadError, RecordingError, SpecError, closest, install_hint
from ..languages import NLLB, SONAR_NLLB, LanguageError, nllb_code
from .base import ModelInputs, Wrapper
from .loading import hub_reachable, pick_device
from .random_init import log_random, randomize_weights
from .spec import ModelSpec, Options
from .tokenizers import ByteTokenizer


def sonar_speech_code(lang: str) -> str:
    """The suffix of SONAR's speech encoder for ``lang`` (an error if it has none)."""
    if lang not in SONAR_NLLB:
        hint = closest(lang, SONAR_NLLB)
        raise LanguageError(
            f"SONAR has no speech encoder for {lang!r}"
            + (f" (did you mean {', '.join(hint)}?)" if hint else "")
            + f"; it has {len(SONAR_NLLB)}: {' '.join(SONAR_NLLB)}")
    return lang


def sonar_text_code(lang: str) -> str:
    """SONAR's text encoder language code: NLLB's (``eng_Latn``)."""
    return nllb_code(lang)


class SonarModels(nn.Module):
    """The modules a SONAR wrapper records; ``speech_encoder`` is the current language's."""

    def __init__(self, text_encoder: nn.Module, speech_encoder: nn.Module):
        super().__init__()
        text_encoder.sentence_embedding = nn.Identity()
        self.text_encoder = text_encoder
        self.mount(speech_encoder)

    def mount(self, speech_encoder: nn.Module) -> None:
        """Put a language's speech encoder (with its sentence-embedding point) in place."""
        speech_encoder.sentence_embedding = nn.Identity()
        self.speech_encoder = speech_encoder


@dataclass
class SonarOptions(Options):
    """Options of the SONAR wrapper (``wrapper: sonar``)."""

    speech_checkpoint: str = field(default="sonar_speech_encoder_{lang}", metadata={
        "doc": "fairseq2 asset name of each language's speech encoder ({lang}: its code)"})
    probe_language: str = field(default="eng", metadata={
        "doc": "the speech encoder mounted (and checked) when the model loads"})
    languages: list[str] = field(default_factory=list, metadata={
        "doc": "languages checked for a speech encoder before anything loads"})

    def check(self, spec: ModelSpec) -> None:
        super().check(spec)
        for lang in [self.probe_language, *self.languages]:
            try:
                sonar_speech_code(lang)
            except Exception as e:
                raise SpecError(f"{spec.path}: options: {e}") from None


class Sonar(Wrapper):
    """SONAR's text encoder and per-language speech encoders (fairseq2)."""

    Options = SonarOptions
    NEEDS = ("checkpoint", "tiny")
    STRIDE_PERIOD = 4  # the frontend stacks 2 fbank frames (lengths up to 4 cover it)
    FIDELITY = (
        "sonar-space's own models, built by its factories and loaded by fairseq2; sentence "
        "embeddings are the model's own output, exactly (tests/test_sonar.py::"
        "test_text_embedding_is_the_models_own, tests/test_sonar.py::"
        "test_speech_lengths_follow_frame_stacking_and_embeddings_match)",
        Wrapper.BATCH_INDEPENDENT)

    model: SonarModels

    def __init__(self, spec: ModelSpec, variant: str | None, text_encoder: nn.Module,
                 text_tokenizer: Any, load_speech: Any):
        self._load_speech = load_speech
        self._speech: dict[str, nn.Module] = {}
        self.language: str | None = None
        self.text_tokenizer = text_tokenizer
        first = spec.options.probe_language
        super().__init__(SonarModels(text_encoder, self._speech_model(first)), spec, variant)
        self.language = first

    @classmethod
    def build(cls, spec: ModelSpec, variant: str | None = None,
              dtype: torch.dtype = torch.float32) -> Sonar:
        from fairseq2.nn import BatchLayout  # noqa: F401  (fails early without fairseq2)

        if spec.device_map or spec.quantize:
            raise ModelLoadError(f"{spec.name}: device_map and quantize are for transformers "
                                 "models; SONAR's encoders (under 1.5 B parameters each) fit one "
                                 "GPU: remove model.device_map / model.quantize")
        if variant == "tiny":
            text, tokenizer = _tiny_text(spec.tiny)
            return cls(spec, variant, text.to(dtype), tokenizer,
                       lambda lang: _tiny_speech(spec.tiny, lang).to(dtype))
        device = pick_device(spec.device)
        text = _load_asset(spec.checkpoint, device, dtype)
        tokenizer = _load_tokenizer(spec.checkpoint)
        speech_name = spec.options.speech_checkpoint
        return cls(spec, variant, text, tokenizer,
                   lambda lang: _load_asset(speech_name.format(lang=lang), device, dtype))

    # -- languages -----------------------------------------------------------------------------
    def _speech_model(self, lang: str) -> nn.Module:
        code = sonar_speech_code(lang)  # raises before any download for unsupported languages
        if code not in self._speech:
            model = self._load_speech(code).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            self._speech[code] = model
        return self._speech[code]

    def mount(self, batch: Sequence[dict[str, Any]]) -> None:
        """Mount the speech encoder of the batch's language (before its Recorder is made)."""
        langs = {input_language(ex) for ex in batch if ex["modality"] == "speech"}
        if len(langs) > 1:
            raise RecordingError("a SONAR speech batch holds one language (one encoder each)")
        if langs:
            lang = sonar_speech_code(langs.pop())
            if lang != self.language:
                self.model.mount(self._speech_model(lang))
                self.language = lang
                self.stacks = self._resolve_stacks()  # pooler depth differs by language

    # -- running -------------------------------------------------------------------------------
    def inputs(self, batch: Sequence[dict[str, Any]]) -> ModelInputs:
        from fairseq2.nn import BatchLayout

        modality = self.batch_modality(batch)
        self.mount(batch)
        if modality == "text":
            ids = self._tokens([ex["text"] for ex in batch], [input_language(ex) for ex in batch])
            lens = [len(r) for r in ids]
            seqs = nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=1)
            encoder = self.model.text_encoder
            lengths = {"text_encoder": torch.tensor(lens)}
        else:
            feats = [fbank(ex["audio"]) for ex in batch]
            lens = [len(f) for f in feats]
            seqs = nn.utils.rnn.pad_sequence(feats, batch_first=True)
            encoder = self.model.speech_encoder
            lengths = {"speech_encoder": torch.tensor(lens) // 2,
                       "speech_pooler": torch.ones(len(batch), dtype=torch.long)}
        seqs = seqs.to(self.device)
        seqs = seqs.to(next(encoder.parameters()).dtype) if seqs.is_floating_point() else seqs
        return ModelInputs({"encoder": encoder, "seqs": seqs,
                            "layout": BatchLayout.of(seqs, seq_lens=lens)},
                           modality=modality, lengths=lengths, fills=set(lengths))

    def forward(self, inputs: ModelInputs) -> Any:
        a = inputs.args
        out = a["encoder"](a["seqs"], a["layout"])
        a["encoder"].sentence_embedding(out.sentence_embeddings)
        self.last_output = out
        return out

    @classmethod
    def skeleton(cls, spec: ModelSpec) -> nn.Module:
        """The text encoder and ``probe_language``'s speech encoder from their fairseq2 asset
        cards (shipped with sonar-space), on the meta device."""
        from sonar.models.sonar_speech import get_sonar_speech_encoder_hub
        from sonar.models.sonar_text import get_sonar_text_encoder_hub

        def meta(hub: Any, name: str) -> nn.Module:
            try:
                config = hub.get_model_config(name)
            except Exception as e:
                raise ModelLoadError(f"no fairseq2 asset card {name!r}: {e}") from None
            return hub.create_new_model(config, device=torch.device("cpu"), meta=True)

        speech = spec.options.speech_checkpoint.format(
            lang=sonar_speech_code(spec.options.probe_language))
        return SonarModels(meta(get_sonar_text_encoder_hub(), spec.checkpoint),
                           meta(get_sonar_speech_encoder_hub(), speech))

    # -- family knowledge ------------------------------------------------------------------------
    @classmethod
    def required_weights(cls, spec: ModelSpec, languages: Sequence[str] = (),
                         speech: bool = True) -> list[tuple[str, str, bool | None]]:
        names = [spec.checkpoint] + ([spec.options.speech_checkpoint.format(
            lang=sonar_speech_code(lang)) for lang in languages] if speech else [])
        try:
            import sonar  # noqa: F401  (sets fairseq2 up with SONAR's asset cards)
            from fairseq2.assets import get_asset_store
        except ImportError:
            return [(n, f"fairseq2 assets: {install_hint('sonar')}", False) for n in names]
        store, cache = get_asset_store(), fairseq2_cache()
        needs: list[tuple[str, str, bool | None]] = []
        for name in names:
            card = store.maybe_retrieve_card(name)
            if card is None:
                needs.append((name, "fairseq2 asset card: none of this name", False))
                continue
            for part in ("checkpoint", "tokenizer"):
                field = card.maybe_get_field(part)
                if field is not None:
                    uri = str(field.as_uri())
                    host = urlparse(uri).netloc or "a local file"
                    needs.append((f"{name} {part}", f"fairseq2 asset cache {cache}, from {host}",
                                  fairseq2_cached(uri, cache)))
        return needs

    @classmethod
    def supported_languages(cls, spec: ModelSpec, modalities: Sequence[str]) -> set[str]:
        """Text: the languages with an NLLB code; speech: the 57 with a speech encoder."""
        return set(SONAR_NLLB) if "speech" in modalities else set(NLLB)

    @classmethod
    def check_languages(cls, spec: ModelSpec, languages: Sequence[str],
                        modalities: Sequence[str]) -> None:
        if "speech" in modalities:
            for lang in languages:
                sonar_speech_code(lang)

    def randomize(self, seed: int) -> None:
        """The text encoder from ``seed``; each language's speech encoder (also those loaded
        later) from ``seed`` + its code's CRC32 % 1000, as the tiny variant seeds them."""
        def reset(module: nn.Module, seed: int, what: str) -> None:
            log_random(self.spec.name, seed, what, randomize_weights(module, seed))

        speech_seed = lambda code: seed + zlib.crc32(code.encode()) % 1000  # noqa: E731
        reset(self.model.text_encoder, seed, "the text encoder")
        for code, encoder in self._speech.items():
            reset(encoder, speech_seed(code), f"the {code} speech encoder")
        load = self._load_speech

        def load_random(code: str) -> nn.Module:
            encoder = load(code)
            reset(encoder, speech_seed(code), f"the {code} speech encoder")
            return encoder

        self._load_speech = load_random

    def _tokens(self, texts: Sequence[str], langs: Sequence[str]) -> list[torch.Tensor]:
        if isinstance(self.text_tokenizer, ByteTokenizer):
            return [torch.tensor([self.text_tokenizer.lang_id(lang)] + self.text_tokenizer.tokens(t)
                                 + [self.text_tokenizer.eos_id])
                    for t, lang in zip(texts, langs, strict=True)]
        return [self.text_tokenizer.create_encoder(mode="source", lang=sonar_text_code(lang))(t)
                for t, lang in zip(texts, langs, strict=True)]

    def text_tokens(self, text: str, lang: str) -> int:
        return int(self._tokens([text], [lang])[0].numel()) - 2  # the language tag and </s>

    def length_rule(self, layer: str) -> str:
        if layer.endswith("sentence_embedding"):
            return "one vector per example"
        if ".encoder_pooler." in layer:
            return "one query position"
        if layer.startswith("speech_encoder"):
            return "fbank frames // 2 (frontend stacks frame pairs)"
        return "source token count"


def fbank(audio: np.ndarray) -> torch.Tensor:
    """SONAR's speech features: 80-bin Kaldi fbank of the 16 kHz wave x 2^15, standardised."""
    from ..audio import kaldi_fbank

    feats = kaldi_fbank(torch.as_tensor(np.asarray(audio, dtype=np.float32)) * 2 ** 15, 80)
    return (feats - feats.mean(0)) / feats.std(0).clamp_min(1e-5)


def _tiny_text(tiny: dict[str, Any]) -> tuple[nn.Module, ByteTokenizer]:
    from fairseq2.data.tokenizers import VocabularyInfo
    from sonar.models.sonar_text.config import SonarTextEncoderConfig
    from sonar.models.sonar_text.factory import SonarTextEncoderFactory

    cfg = dict(tiny["text"])
    vocab = cfg.pop("vocab_size")
    config = SonarTextEncoderConfig(**cfg, vocab_info=VocabularyInfo(
        size=vocab, unk_idx=1, bos_idx=2, eos_idx=3, pad_idx=1))
    torch.manual_seed(int(tiny.get("seed", 0)))
    return SonarTextEncoderFactory(config).create_model().eval(), ByteTokenizer(vocab, 1, 3, 3)


def _tiny_speech(tiny: dict[str, Any], lang: str) -> nn.Module:
    from fairseq2.models.transformer import TransformerNormOrder
    from fairseq2.models.w2vbert import W2VBertConfig
    from sonar.models.sonar_speech.config import SonarSpeechEncoderConfig
    from sonar.models.sonar_speech.factory import SonarSpeechEncoderFactory

    cfg = dict(tiny["speech"])
    encoder = dataclasses.replace(W2VBertConfig().w2v2_config.encoder_config,
                                  **cfg.pop("encoder"))
    config = SonarSpeechEncoderConfig(w2v2_encoder_config=encoder,
                                      decoder_norm_order=TransformerNormOrder.POST, **cfg)
    torch.manual_seed(int(tiny.get("seed", 0)) + zlib.crc32(lang.encode()) % 1000)
    return SonarSpeechEncoderFactory(config).create_model().eval()


def fairseq2_cache() -> Path:
    """fairseq2's download cache, found as fairseq2 0.8 finds it."""
    if os.environ.get("FAIRSEQ2_CACHE_DIR"):
        return Path(os.environ["FAIRSEQ2_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "fairseq2" / "assets"
    return Path.home() / ".cache" / "fairseq2" / "assets"


def fairseq2_cached(uri: str, cache: Path) -> bool:
    """Whether an asset at ``uri`` is here: a local file that exists, or a download that
    fairseq2 0.8 has cached (a folder named by the URI's SHA-1, its first 24 hex digits)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path).exists()
    folder = cache / hashlib.sha1(uri.encode()).hexdigest()[:24]
    return folder.is_dir() and any(folder.iterdir())


def _load_asset(name: str, device: torch.device, dtype: torch.dtype) -> nn.Module:
    from fairseq2.models import load_model

    if not hub_reachable("dl.fbaipublicfiles.com"):
        try:
            return load_model(name, device=device, dtype=dtype)
        except Exception:
            raise ModelLoadError(
                f"SONAR asset {name!r} is not in fairseq2's cache and its download server cannot "
                "be reached (offline). Load it once where you have network (fairseq2 caches it), "
                "or point fairseq2 at a local asset card whose 'checkpoint' is a local file "
                "(FAIRSEQ2_USER_ASSET_DIR)") from None
    return load_model(name, device=device, dtype=dtype)


def _load_tokenizer(name: str) -> Any:
    from fairseq2.data.tokenizers import load_tokenizer

    try:
        return load_tokenizer(name)
    except Exception as e:
        raise ModelLoadError(f"cannot load the tokenizer of SONAR asset {name!r}: {e}") from None
