"""SeamlessM4T v1 and v2 (transformers ``SeamlessM4TModel`` / ``SeamlessM4Tv2Model``).

Stacks (see ``models/seamless_m4t_v2.yaml``): the conformer ``speech_encoder.encoder.layers``;
the length adaptor: what enters it (``speech_encoder.adapter:input``, i.e. ``h + 0.5 * ffn(h)``
after the intermediate feed-forward), its layers (Conv1d kernel 8, stride 8, then attention) and
the layer norm after it (``speech_encoder.inner_layer_norm``, the encoder's output);
``text_encoder.layers``; ``text_decoder.layers``, run with teacher forcing on a target sentence.

Valid lengths: the feature extractor's stacked-frame mask for the conformer and the adaptor's
input; the model's own sub-sampling rule after the adaptor; the attention masks for text.
``output_hidden_states`` is not used (under transformers 5.x the speech encoder's last entry is
the post-adaptor output and the last conformer block is missing).

Inputs as the model's own generation builds them: source text ``[__src__] tokens </s>`` (no
padding token inside an example's length), decoder input ``[</s>, __tgt__] tokens`` (the labels
``[</s>, __tgt__] tokens </s>`` without the last token). One deliberate difference from
transformers: the adaptor's stride-8 convolutions read zeros beyond each clip's last frame, as
they do when the clip runs alone, instead of the padded frames of longer clips in the batch (the
last adaptor frame of a clip would otherwise depend on its batch).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..data import input_language
from .base import ModelInputs, Wrapper
from .loading import transformers_parts, transformers_skeleton
from .spec import ModelSpec
from .tokenizers import ByteTokenizer, pad_rows


class SeamlessM4T(Wrapper):
    """SeamlessM4T (v1 or v2 by ``model_class``), for speech and text input."""
    NEEDS = ("checkpoint", "model_class", "tiny")

    model: Any  # a transformers model: its config's fields and submodules are untyped

    RANDOM_AT_BUILD = True
    STRIDE_PERIOD = 16  # 2 fbank frames stacked, then the adaptor's stride 8
    FIDELITY = (
        "transformers' SeamlessM4T classes and weights; source [__src__] tokens </s> and decoder "
        "prefix [</s>, __tgt__] are the ids its generate uses, exactly (tests/test_tokens.py::"
        "test_seamless_decoder_input_is_the_prefix_generate_uses)",
        Wrapper.BATCH_INDEPENDENT,
        "on purpose unlike transformers' batched output: the adaptor convolution reads zeros past "
        "a clip's end, as the clip alone (tests/test_fidelity.py::"
        "test_seamless_adaptor_reads_no_frame_of_a_longer_clip)")

    def __init__(self, model, spec: ModelSpec, tokenizer, feature_extractor,
                 variant: str | None = None):
        super().__init__(model, spec, variant)
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor

    @classmethod
    def build(cls, spec: ModelSpec, variant: str | None = None,
              dtype: torch.dtype = torch.float32) -> SeamlessM4T:
        model, tokenizer, extractor = transformers_parts(spec, variant,
                                                         "SeamlessM4TFeatureExtractor", dtype)
        return cls(model, spec, tokenizer, extractor, variant)

    @classmethod
    def skeleton(cls, spec: ModelSpec) -> nn.Module:
        return transformers_skeleton(spec)

    # -- inputs --------------------------------------------------------------------------------
    def _text(self, texts: Sequence[str], langs: Sequence[str]) -> dict[str, torch.Tensor]:
        if isinstance(self.tokenizer, ByteTokenizer):
            return self.tokenizer.source(texts, langs)
        # the tokenizer pads to an even length by default: never inside an example's length
        rows = [self.tokenizer(t, src_lang=lang, padding=False,
                               pad_to_multiple_of=None)["input_ids"]
                for t, lang in zip(texts, langs, strict=True)]
        return pad_rows(rows, self.tokenizer.pad_token_id)

    def _target(self, texts: Sequence[str], langs: Sequence[str]) -> dict[str, torch.Tensor]:
        """Decoder inputs for teacher forcing, as generation starts: ``[</s>, __tgt__] tokens``
        (the target-mode labels ``[</s>, __tgt__] tokens </s>`` without their last token)."""
        if isinstance(self.tokenizer, ByteTokenizer):
            return self.tokenizer.decoder_inputs(texts, langs)
        rows = []
        start = self.model.config.decoder_start_token_id
        for t, lang in zip(texts, langs, strict=True):
            labels = list(self.tokenizer(text_target=t, tgt_lang=lang, padding=False,
                                         pad_to_multiple_of=None)["input_ids"])
            if labels and labels[-1] == self.tokenizer.eos_token_id:
                labels = labels[:-1]
            if not labels or labels[0] != start:
                labels = [start] + labels
            rows.append(labels)
        return pad_rows(rows, self.tokenizer.pad_token_id)

    def _speech(self, audio: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        feats = self.feature_extractor([np.asarray(a, dtype=np.float32) for a in audio],
                                       sampling_rate=16000, return_tensors="pt", padding=True,
                                       return_attention_mask=True)
        return {"input_features": feats["input_features"],
                "attention_mask": feats["attention_mask"]}

    def adaptor_lengths(self, frame_mask: torch.Tensor) -> torch.Tensor:
        """Lengths after the length adaptor, by the model's own rule (per adaptor layer)."""
        lengths = frame_mask.sum(1)
        adapter = self.model.speech_encoder.adapter
        if adapter is None:
            return lengths
        for layer in adapter.layers:
            mask = (torch.arange(int(lengths.max()))[None] < lengths[:, None]).long()
            lengths = layer._compute_sub_sample_lengths_from_attention_mask(mask).long()
        return lengths

    # -- running -------------------------------------------------------------------------------
    def inputs(self, batch: Sequence[dict[str, Any]]) -> ModelInputs:
        modality = self.batch_modality(batch)
        langs = [input_language(ex) for ex in batch]
        target = self._target([ex.get("target_text", ex.get("text", "")) for ex in batch],
                              [ex.get("target_lang", input_language(ex)) for ex in batch])
        lengths: dict[str, torch.Tensor] = {"text_decoder": target["attention_mask"].sum(1)}
        if modality == "speech":
            inputs = self._speech([ex["audio"] for ex in batch])
            frames = inputs["attention_mask"].sum(1)
            lengths["speech_encoder"] = frames
            lengths["adaptor"] = self.adaptor_lengths(inputs["attention_mask"])
            for layer in self.stacks.get("adaptor", []):
                if layer.endswith(":input"):  # what enters the adaptor: stacked frames
                    lengths[layer] = frames
        else:
            inputs = self._text([ex["text"] for ex in batch], langs)
            lengths["text_encoder"] = inputs["attention_mask"].sum(1)
        device = self.device
        args = {k: v.to(device) for k, v in inputs.items()}
        if "input_features" in args:
            args["input_features"] = args["input_features"].to(next(self.model.parameters()).dtype)
        args["decoder_input_ids"] = target["input_ids"].to(device)
        args["decoder_attention_mask"] = target["attention_mask"].to(device)
        # the feature extractor pads frames to an even count, so speech outputs may be one frame
        # longer than the longest clip; token stacks are filled exactly
        return ModelInputs(args, modality=modality, lengths=lengths,
                           fills={"text_encoder", "text_decoder"})

    def forward(self, inputs: ModelInputs) -> Any:
        clip_ends = (self._adaptor_reads_own_frames(inputs.args["attention_mask"].sum(1).cpu())
                     if inputs.modality == "speech" else contextlib.nullcontext())
        with _quiet(type(self.model).__module__), clip_ends:
            return self.model(**inputs.args)

    @contextlib.contextmanager
    def _adaptor_reads_own_frames(self, frames: torch.Tensor) -> Iterator[None]:
        """Zero the input of every adaptor convolution beyond each clip's length (what the
        convolution's own zero padding gives a clip that runs alone); hooks leave on exit."""
        adapter = self.model.speech_encoder.adapter
        handles = []
        lengths = frames
        for layer in (adapter.layers if adapter is not None else []):
            def zero_beyond(_module, args, lengths=lengths):
                x = args[0]  # (B, C, T)
                keep = (torch.arange(x.shape[-1], device=x.device)[None]
                        < lengths.to(x.device)[:, None])
                return (x * keep[:, None, :].to(x.dtype),) + tuple(args[1:])
            handles += [layer.residual_conv.register_forward_pre_hook(zero_beyond),
                        layer.self_attn_conv.register_forward_pre_hook(zero_beyond)]
            mask = (torch.arange(int(lengths.max()))[None] < lengths[:, None]).long()
            lengths = layer._compute_sub_sample_lengths_from_attention_mask(mask).long()
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @classmethod
    def supported_languages(cls, spec: ModelSpec, modalities: Sequence[str]) -> set[str]:
        """SeamlessM4T's speech-input and text-input languages (its model card's table)."""
        from ..languages import REGISTRY

        return {code for code, lang in REGISTRY.items()
                if ("speech" not in modalities or lang.seamless_speech)
                and ("text" not in modalities or lang.seamless_text)}

    @classmethod
    def describe_inputs(cls, spec: ModelSpec) -> dict[str, Any]:
        return {"text_encoder": "[__src__] tokens </s>",
                "text_decoder": "[</s> __tgt__] tokens (teacher forcing)",
                "adaptor": "convolutions read zeros beyond each clip's end (as alone)"}

    def expected_blocks(self) -> dict[str, int]:
        cfg = self.model.config
        return {"speech_encoder": cfg.speech_encoder_layers, "text_encoder": cfg.encoder_layers,
                "text_decoder": cfg.decoder_layers, "adaptor": cfg.num_adapter_layers + 2}

    def length_rule(self, layer: str) -> str:
        return {"speech_encoder": "stacked fbank frames (feature mask)",
                "adaptor_input": "stacked fbank frames (feature mask)",
                "adaptor": "adaptor sub-sampling: floor((L + 2*(k//2) - k) / s) + 1, k=s=8",
                "text_encoder": "source token mask",
                "text_decoder": "target token mask (teacher forcing)"}.get(
            "adaptor_input" if layer.endswith(":input") else self.stack_of(layer), "-")


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence the model module's per-call warning ("This calls the same method forward as
    ...ForTextToText"), which the full model's forward logs on every pass."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
