"""SONAR (sonar-space 0.5 on fairseq2 0.8): one text encoder, one speech encoder per language.

``wrapper.model`` holds ``text_encoder`` (``SonarTextTransformerEncoderModel``) and
``speech_encoder`` (the ``SonarSpeechEncoderModel`` of one language at a time: call
:meth:`Sonar.prepare` with a batch before making its Recorder, so that layer names stay the same
for every language). Stacks: ``text_encoder.encoder.layers``; ``speech_encoder.encoder.layers``
(w2v-BERT conformer); ``speech_encoder.encoder_pooler.decoder.layers`` (the attention-pooling
decoder: one BOS query, so one position); and each encoder's ``sentence_embedding``, a
pseudo-layer holding the model's own pooled sentence embedding.

Speech input is an 80-bin Kaldi fbank of the 16 kHz waveform scaled by 2^15 and standardised per
utterance, as SONAR's own pipeline computes it; the frontend stacks frame pairs, so the
conformer's valid length is half the number of fbank frames (rounded down).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import RecordingError
from ..languages import sonar_speech_code, sonar_text_code
from ..recorder import Recorder
from .base import ModelLoadError, Wrapper, hub_reachable, pick_device
from .spec import ModelSpec
from .tokenizers import ByteTokenizer


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


class Sonar(Wrapper):
    FIDELITY = (
        "sonar-space's own models, built by its factories and loaded by fairseq2; sentence "
        "embeddings are the model's own output, exactly (tests/test_sonar.py::"
        "test_text_embedding_is_the_models_own, tests/test_sonar.py::"
        "test_speech_lengths_follow_frame_stacking_and_embeddings_match)",
        Wrapper.BATCH_INDEPENDENT)
    def __init__(self, spec: ModelSpec, variant: str | None, text_encoder: nn.Module,
                 text_tokenizer: Any, load_speech: Any):
        self._load_speech = load_speech
        self._speech: dict[str, nn.Module] = {}
        self.language: str | None = None
        self.text_tokenizer = text_tokenizer
        first = spec.options.get("probe_language", "eng")
        super().__init__(SonarModels(text_encoder, self._speech_model(first)), spec, variant)
        self.language = first

    @classmethod
    def build(cls, spec: ModelSpec, variant: str | None = None,
              dtype: torch.dtype = torch.float32) -> "Sonar":
        from fairseq2.nn import BatchLayout  # noqa: F401  (fails early without fairseq2)

        for lang in spec.options.get("languages", []):  # before anything loads
            sonar_speech_code(lang)
        if variant == "tiny":
            text, tokenizer = _tiny_text(spec.tiny)
            return cls(spec, variant, text.to(dtype), tokenizer,
                       lambda lang: _tiny_speech(spec.tiny, lang).to(dtype))
        device = pick_device(spec.device)
        text = _load_asset(spec.checkpoint, device, dtype)
        tokenizer = _load_tokenizer(spec.checkpoint)
        speech_name = spec.options.get("speech_checkpoint", "sonar_speech_encoder_{lang}")
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

    def prepare(self, batch: Sequence[dict[str, Any]]) -> None:
        """Mount the speech encoder of the batch's language (call before making the Recorder)."""
        langs = {ex["lang"] for ex in batch if ex["modality"] == "speech"}
        if len(langs) > 1:
            raise RecordingError("a SONAR speech batch holds one language (one encoder each)")
        if langs:
            lang = langs.pop()
            if lang != self.language:
                self.model.mount(self._speech_model(lang))
                self.language = lang
                self.stacks = self._resolve_stacks()  # pooler depth differs by language

    # -- running -------------------------------------------------------------------------------
    def run(self, batch: Sequence[dict[str, Any]], recorder: Recorder) -> dict[str, torch.Tensor]:
        from fairseq2.nn import BatchLayout

        modality = self.batch_modality(batch)
        device = self.device
        if modality == "text":
            ids = self._tokens([ex["text"] for ex in batch], [ex["lang"] for ex in batch])
            lens = [len(r) for r in ids]
            seqs = nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=1).to(device)
            encoder, stack = self.model.text_encoder, "text_encoder"
            lengths = {"text_encoder": torch.tensor(lens)}
        else:
            lang = batch[0]["lang"]
            if sonar_speech_code(lang) != self.language:
                raise RecordingError(f"the mounted speech encoder is {self.language!r}, the batch "
                                     f"is {lang!r}: call wrapper.prepare(batch) before making "
                                     "the Recorder")
            feats = [fbank(ex["audio"]) for ex in batch]
            lens = [len(f) for f in feats]
            seqs = nn.utils.rnn.pad_sequence(feats, batch_first=True).to(device)
            encoder, stack = self.model.speech_encoder, "speech_encoder"
            lengths = {"speech_encoder": torch.tensor(lens) // 2,
                       "speech_pooler": torch.ones(len(batch), dtype=torch.long)}
        seqs = seqs.to(next(encoder.parameters()).dtype) if seqs.is_floating_point() else seqs
        for layer in recorder.layers:
            rule = "speech_pooler" if ".encoder_pooler." in layer else self.stack_of(layer)
            if rule in lengths:
                recorder.set_lengths(lengths[rule], [layer], fills=True)
        with torch.no_grad():
            out = encoder(seqs, BatchLayout.of(seqs, seq_lens=lens))
            encoder.sentence_embedding(out.sentence_embeddings)
        self.last_output = out
        return lengths

    def _tokens(self, texts: Sequence[str], langs: Sequence[str]) -> list[torch.Tensor]:
        if isinstance(self.text_tokenizer, ByteTokenizer):
            return [torch.tensor([self.text_tokenizer.lang_id(l)] + self.text_tokenizer.tokens(t)
                                 + [self.text_tokenizer.eos_id]) for t, l in zip(texts, langs)]
        return [self.text_tokenizer.create_encoder(mode="source", lang=sonar_text_code(l))(t)
                for t, l in zip(texts, langs)]

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
    import zlib

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
