"""Any transformers model from a spec alone (no Python): a model class, a checkpoint, the input
processor, how each modality enters the model, and a length rule per stack.

``options`` of a spec:
- ``routes``: modality -> ``encoder`` | ``encoder+decoder`` | ``decoder``. ``encoder`` runs the
  encoder on the example (speech through ``feature_extractor``, text through the tokenizer);
  ``encoder+decoder`` also runs the decoder with teacher forcing on the example's target text;
  ``decoder`` runs the decoder alone on the text, without encoder states (as
  ``WhisperForCausalLM`` does). Default: ``{input: encoder+decoder}`` with ``decoder: true``, else
  ``{input: encoder}``, where ``input`` is ``speech`` or ``text``.
- ``text_format``: how token sequences are framed, as the model's own generation frames them:
  ``plain`` (the tokenizer's defaults; decoder input = labels shifted right), ``whisper``
  (decoder input ``<|startoftranscript|><|xx|><|transcribe|><|notimestamps|>`` + the text with
  Whisper's leading space, no ``<|endoftext|>``), ``translation`` (NLLB/M2M100: the tokenizer's
  ``src_lang``/``tgt_lang`` set from the examples' languages, decoder input = the target labels
  shifted right after the decoder start token).
- ``language_codes``: the tokenizer's language-code scheme (``nllb``, ``iso639_1``, ``whisper``,
  ``iso639_3``; see :func:`probekit.languages.language_code`).
- ``lengths``: stack -> ``{rule: input | decoder, stride: s, fills: bool}``; ``input`` uses the
  encoder input's attention mask (``stride`` s for a stack that subsamples by s, rounding up),
  ``decoder`` the decoder mask; ``fills: false`` for stacks padded beyond the longest input
  (Whisper pads every clip to 30 s).
- ``extractor_options``: keyword arguments for the feature extractor call;
  ``pass_attention_mask``: give the extractor's attention mask to the model (models that take it).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..errors import RecordingError
from ..languages import language_code
from ..recorder import Recorder
from .base import Wrapper, transformers_parts
from .spec import ModelSpec, SpecError
from .tokenizers import ByteTokenizer, pad_rows

ROUTES = ("encoder", "encoder+decoder", "decoder")
TEXT_FORMATS = ("plain", "whisper", "translation")


def routes_of(spec: ModelSpec) -> dict[str, str]:
    """modality -> route, checked against the spec's modalities."""
    o = spec.options
    routes = o.get("routes") or {o.get("input", "text"):
                                 "encoder+decoder" if o.get("decoder") else "encoder"}
    bad = {m: r for m, r in routes.items() if r not in ROUTES or m not in ("speech", "text")}
    if bad:
        raise SpecError(f"{spec.path}: options.routes: {bad} (modality speech|text -> route "
                        f"{' | '.join(ROUTES)})")
    if routes.get("speech") == "decoder":
        raise SpecError(f"{spec.path}: options.routes.speech: speech enters through the encoder")
    if set(routes) != set(spec.modalities):
        raise SpecError(f"{spec.path}: options.routes names {', '.join(routes)} but the spec's "
                        f"modalities are {', '.join(spec.modalities)}; give a route for each")
    if o.get("text_format", "plain") not in TEXT_FORMATS:
        raise SpecError(f"{spec.path}: options.text_format: {o['text_format']!r} is not one of "
                        f"{', '.join(TEXT_FORMATS)}")
    return routes


class HFModel(Wrapper):
    FIDELITY = (
        "transformers' classes and weights; decoder inputs framed as the model's generate "
        "(whisper: <|startoftranscript|><|xx|><|transcribe|><|notimestamps|>; translation: "
        "decoder start then target language), exact ids (tests/test_tokens.py::"
        "test_whisper_decoder_input_is_generates_prefix_then_the_text, tests/test_tokens.py::"
        "test_translation_models_get_language_codes_and_a_shifted_target)",
        Wrapper.BATCH_INDEPENDENT,
        "Whisper from a CTranslate2 (faster-whisper) checkpoint: logits equal the original "
        "transformers model's (tests/test_ct2_whisper.py::test_logits_match_the_original); real "
        "Whisper base transcribes the demo's English clips (make check-real)")
    def __init__(self, model, spec: ModelSpec, tokenizer, extractor, variant: str | None = None):
        self.routes = routes_of(spec)
        super().__init__(model, spec, variant)
        self.tokenizer, self.extractor = tokenizer, extractor
        self.opts = spec.options
        self.text_format = self.opts.get("text_format", "plain")

    @classmethod
    def build(cls, spec: ModelSpec, variant: str | None = None,
              dtype: torch.dtype = torch.float32) -> "HFModel":
        model, tokenizer, extractor = transformers_parts(
            spec, variant, spec.options.get("feature_extractor"), dtype)
        return cls(model, spec, tokenizer, extractor, variant)

    @classmethod
    def describe_inputs(cls, spec: ModelSpec) -> dict[str, Any]:
        fmt = spec.options.get("text_format", "plain")
        decoder = {"plain": "labels shifted right after the decoder start token",
                   "whisper": "<|startoftranscript|><|xx|><|transcribe|><|notimestamps|> text",
                   "translation": "decoder start, target language token, target text"}.get(fmt)
        return {m: r + (f"; decoder input: {decoder}" if "decoder" in r else "")
                for m, r in routes_of(spec).items()} | {"text_format": fmt}

    # -- tokens --------------------------------------------------------------------------------
    def _code(self, lang: str) -> str:
        return language_code(lang, self.opts.get("language_codes", "iso639_1"))

    def _source(self, texts: Sequence[str], langs: Sequence[str]) -> dict[str, torch.Tensor]:
        if isinstance(self.tokenizer, ByteTokenizer):
            return self.tokenizer.source(texts, langs)
        rows = []
        for text, lang in zip(texts, langs):
            if self.text_format == "translation":
                self.tokenizer.src_lang = self._lang_token_checked(lang)
            rows.append(list(self.tokenizer(text)["input_ids"]))
        return pad_rows(rows, self._pad_id)

    def _lang_token_checked(self, lang: str) -> str:
        code = self._code(lang)
        token = {"whisper": f"<|{code}|>", "nllb": code}.get(
            self.text_format if self.text_format == "whisper" else
            self.opts.get("language_codes", "iso639_1"), f"__{code}__")
        found = self.tokenizer.convert_tokens_to_ids(token)
        if found is None or found == self.tokenizer.unk_token_id:
            raise RecordingError(f"{self.spec.name}: the tokenizer has no language token for "
                                 f"{lang!r} (code {code!r}); the model does not support it")
        return code

    def decoder_ids(self, text: str, lang: str) -> list[int]:
        """The decoder input for teacher forcing on ``text`` in ``lang``, as generation starts."""
        tok = self.tokenizer
        if self.text_format == "whisper":
            tok.set_prefix_tokens(language=self._lang_token_checked(lang), task="transcribe",
                                  predict_timestamps=False)
            ids = list(tok(" " + text.strip())["input_ids"])
            return ids[:-1] if ids and ids[-1] == tok.eos_token_id else ids
        if self.text_format == "translation":
            tok.tgt_lang = self._lang_token_checked(lang)
        labels = list(tok(text_target=text)["input_ids"])
        start = self.model.config.decoder_start_token_id
        return [start] + labels[:-1]

    def _decoder(self, texts: Sequence[str], langs: Sequence[str]) -> dict[str, torch.Tensor]:
        if isinstance(self.tokenizer, ByteTokenizer):
            return self.tokenizer.decoder_inputs(texts, langs)
        return pad_rows([self.decoder_ids(t, l) for t, l in zip(texts, langs)], self._pad_id)

    @property
    def _pad_id(self) -> int:
        """The id that fills padded positions (masked out): pad, else end of text."""
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    # -- running -------------------------------------------------------------------------------
    def expected_blocks(self) -> dict[str, int]:
        """From ``options.counts``: stack -> the config attribute holding its depth."""
        cfg = self.model.config
        return {stack: int(getattr(cfg, attr)) for stack, attr in
                self.opts.get("counts", {}).items()}

    def length_rule(self, layer: str) -> str:
        rule = self.opts.get("lengths", {}).get(self.stack_of(layer))
        if not rule:
            return "-"
        text = f"{rule.get('rule', 'input')} mask"
        if int(rule.get("stride", 1)) > 1:
            text += f" / {rule['stride']} (rounded up)"
        return text + ("" if rule.get("fills", True) else "; output padded beyond it")

    def run(self, batch: Sequence[dict[str, Any]], recorder: Recorder) -> dict[str, torch.Tensor]:
        modality = self.batch_modality(batch)
        route = self.routes[modality]
        inputs: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        if route != "decoder":
            if modality == "speech":
                feats = self.extractor([np.asarray(ex["audio"], dtype=np.float32) for ex in batch],
                                       sampling_rate=16000, return_tensors="pt",
                                       return_attention_mask=True,
                                       **self.opts.get("extractor_options", {}))
                inputs = {k: v for k, v in feats.items() if k != "attention_mask"}
                masks["input"] = feats["attention_mask"]
                if self.opts.get("pass_attention_mask", False):
                    inputs["attention_mask"] = feats["attention_mask"]
            else:
                inputs = self._source([ex["text"] for ex in batch], [ex["lang"] for ex in batch])
                masks["input"] = inputs["attention_mask"]
        if "decoder" in route:
            target = self._decoder([ex.get("target_text", ex.get("text", "")) for ex in batch],
                                   [ex.get("target_lang", ex["lang"]) for ex in batch])
            masks["decoder"] = target["attention_mask"]
            if route == "decoder":
                inputs = dict(target)
            else:
                inputs["decoder_input_ids"] = target["input_ids"]
                inputs["decoder_attention_mask"] = target["attention_mask"]
        lengths = self._set_lengths(recorder, masks, self.spec.stacks_for(modality))
        device, dtype = self.device, next(self.model.parameters()).dtype
        kwargs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
                  for k, v in inputs.items()}
        with torch.no_grad():
            if route == "decoder":
                recorder.reset()
                self.model.get_decoder()(**kwargs)
            else:
                self.model(**kwargs)
        return lengths

    def _set_lengths(self, recorder: Recorder, masks: dict[str, torch.Tensor],
                     stacks: Sequence[str]) -> dict[str, torch.Tensor]:
        lengths: dict[str, torch.Tensor] = {}
        for stack, rule in self.opts.get("lengths", {}).items():
            if stack not in stacks:
                continue
            base = masks[rule.get("rule", "input")].sum(1)
            lengths[stack] = -(-base // int(rule.get("stride", 1)))
            layers = [l for l in self.stacks.get(stack, []) if l in recorder.layers]
            if layers:
                recorder.set_lengths(lengths[stack], layers, fills=rule.get("fills", True))
        return lengths

