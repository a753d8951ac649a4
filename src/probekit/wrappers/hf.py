"""Any transformers model from a spec alone (no Python): a model class, a checkpoint, the input
processor and a length rule per stack.

``options`` of a spec:
- ``input``: ``text`` (tokenizer) or ``speech`` (``feature_extractor``: a transformers class name).
- ``decoder``: run a decoder with teacher forcing on the example's target text (default false).
- ``lengths``: stack -> ``{rule: input | decoder, stride: s, fills: bool}``; ``input`` uses the
  input's attention mask (``stride`` s for a stack that subsamples by s, rounding up), ``decoder``
  the decoder mask; ``fills: false`` for stacks padded beyond the longest input (Whisper pads
  every clip to 30 s).
- ``extractor_options``: keyword arguments for the feature extractor call.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..errors import RecordingError
from ..recorder import Recorder
from .base import Wrapper, transformers_parts
from .spec import ModelSpec
from .tokenizers import ByteTokenizer


class HFModel(Wrapper):
    def __init__(self, model, spec: ModelSpec, tokenizer, extractor, variant: str | None = None):
        super().__init__(model, spec, variant)
        self.tokenizer, self.extractor = tokenizer, extractor
        self.opts = spec.options

    @classmethod
    def build(cls, spec: ModelSpec, variant: str | None = None) -> "HFModel":
        model, tokenizer, extractor = transformers_parts(spec, variant, spec.options.get("feature_extractor"))
        return cls(model, spec, tokenizer, extractor, variant)

    def _tokens(self, texts: Sequence[str], langs: Sequence[str], decoder: bool
                ) -> dict[str, torch.Tensor]:
        if isinstance(self.tokenizer, ByteTokenizer):
            return (self.tokenizer.decoder_inputs if decoder else self.tokenizer.source)(texts, langs)
        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

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
        kind = self.opts.get("input", "text")
        if any(ex["modality"] != ("speech" if kind == "speech" else "text") for ex in batch):
            raise RecordingError(f"{self.spec.name} takes {kind} input only")
        langs = [ex["lang"] for ex in batch]
        if kind == "speech":
            feats = self.extractor([np.asarray(ex["audio"], dtype=np.float32) for ex in batch],
                                   sampling_rate=16000, return_tensors="pt",
                                   return_attention_mask=True,
                                   **self.opts.get("extractor_options", {}))
            main = {k: v for k, v in feats.items() if k != "attention_mask"}
            input_mask = feats["attention_mask"]
            pass_mask = self.opts.get("pass_attention_mask", False)
            inputs = {**main, **({"attention_mask": input_mask} if pass_mask else {})}
        else:
            inputs = self._tokens([ex["text"] for ex in batch], langs, decoder=False)
            input_mask = inputs["attention_mask"]
        masks = {"input": input_mask}
        if self.opts.get("decoder"):
            target = self._tokens([ex.get("target_text", ex.get("text", "")) for ex in batch],
                                  [ex.get("target_lang", ex["lang"]) for ex in batch], decoder=True)
            inputs["decoder_input_ids"] = target["input_ids"]
            inputs["decoder_attention_mask"] = target["attention_mask"]
            masks["decoder"] = target["attention_mask"]
        lengths: dict[str, torch.Tensor] = {}
        for stack, rule in self.opts.get("lengths", {}).items():
            base = masks[rule.get("rule", "input")].sum(1)
            stride = int(rule.get("stride", 1))
            lengths[stack] = -(-base // stride)
            layers = [l for l in self.stacks.get(stack, []) if l in recorder.layers]
            if layers:
                recorder.set_lengths(lengths[stack], layers, fills=rule.get("fills", True))
        device, dtype = self.device, next(self.model.parameters()).dtype
        kwargs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
                  for k, v in inputs.items()}
        with torch.no_grad():
            self.model(**kwargs)
        return lengths
