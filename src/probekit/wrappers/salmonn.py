"""SALMONN (Tang et al. 2024), built in probekit from its published description and the released
checkpoint's parameter layout: a Whisper encoder and BEATs in parallel, their frame features
concatenated (BEATs zero-padded to Whisper's 1500 frames), a window-level Q-Former (one query per
window of 17 frames, stride 17, cross-attention in every layer), a linear projection to the LLM
width, and LLaMA/Vicuna with LoRA (r=8, alpha=32, dropout 0.1 on q_proj and v_proj).

Prompt: ``USER: <Speech><SpeechHere></Speech> {instruction}\\nASSISTANT:`` with BOS first and the
speech embeddings at ``<SpeechHere>``; the instruction is ``options.instruction``, by default the
release's ASR prompt (recorded in the store). The text modality puts the transcript there instead
(``text_template``), so the LLM reads the same sentence as tokens. LLM layers are pooled over the
speech positions (or the transcript's tokens), never over the template; Q-Former windows that
cover only Whisper's padding of the 30 s input are left out.

As in the release: clips shorter than 1 s are padded with silence to 1 s; Whisper, BEATs, the
Q-Former and the projection keep float32 weights and run, with the LLM (in the spec's or recipe's
dtype), under autocast to the LLM's half precision; BEATs' fbank is computed in float32. One
deliberate difference: BEATs marks padding per time-major patch and its outputs at padded patches
are zeroed before the Q-Former (as when the clip runs alone), so no clip depends on its batch.

Released checkpoint keys map to probekit's modules in :mod:`probekit.interop.salmonn` (its
``KEY_MAP``); keys it ignores are known and not needed; any other key is an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from einops import rearrange

from ..errors import RecordingError, SpecError
from ..interop.salmonn import load_beats, load_salmonn_checkpoint
from ..nets.beats import BEATs, BEATsConfig
from .base import ModelInputs, Wrapper
from .loading import from_pretrained, hub_cached, large_model_kwargs, pick_device, placed
from .spec import ModelSpec, Options

WINDOW = 17
WINDOWS = 1500 // WINDOW   # 88 windows over Whisper's 1500 frames; the last 4 frames are unused
RELEASE_INSTRUCTION = "Recognize the speech and give me the transcription."
PROMPT = "USER: <Speech><SpeechHere></Speech> {instruction}\nASSISTANT:"
TEXT_PROMPT = "USER: <Speech>{text}</Speech> {instruction}\nASSISTANT:"

LLM_SPANS = ("content", "all")


@dataclass
class SALMONNOptions(Options):
    """Options of the SALMONN wrapper (``wrapper: salmonn``)."""

    whisper: str = field(default="openai/whisper-large-v2", metadata={
        "doc": "the Whisper checkpoint whose encoder SALMONN uses (hub id or folder)"})
    beats_checkpoint: str = field(default="BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt",
                                  metadata={"doc": "local path of the released BEATs .pt file"})
    salmonn_checkpoint: str = field(default="salmonn_v1.pth", metadata={
        "doc": "local path of the released SALMONN .pth file (Q-Former, projection, LoRA)"})
    instruction: str = field(default=RELEASE_INSTRUCTION, metadata={
        "doc": "the instruction after the speech (default: the release's ASR prompt)"})
    llm_span: str = field(default="content", metadata={
        "doc": "LLM positions pooled: content (the speech or transcript) or all (the prompt)"})
    lora_r: int = field(default=8, metadata={"doc": "LoRA rank (as released)"})
    lora_alpha: int = field(default=32, metadata={"doc": "LoRA alpha (as released)"})
    lora_dropout: float = field(default=0.1, metadata={"doc": "LoRA dropout (as released)"})
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"], metadata={
        "doc": "LLM modules with LoRA adapters (as released)"})

    def check(self, spec: ModelSpec) -> None:
        super().check(spec)
        if self.llm_span not in LLM_SPANS:
            raise SpecError(f"{spec.path}: options.llm_span: {self.llm_span!r} is not one of "
                            f"{', '.join(LLM_SPANS)}")


class SALMONNModel(nn.Module):
    # whisper, qformer and llm are transformers models (their configs' fields are untyped)
    def __init__(self, whisper: Any, beats: BEATs, qformer: Any, llm: Any, llm_width: int):
        super().__init__()
        whisper_width = whisper.config.d_model
        q_width = qformer.config.hidden_size
        self.whisper = whisper
        self.ln_speech = nn.LayerNorm(whisper_width)
        self.beats = beats
        self.ln_audio = nn.LayerNorm(beats.cfg.encoder_embed_dim)
        self.speech_query_tokens = nn.Parameter(torch.zeros(1, 1, q_width))
        self.qformer = qformer
        self.speech_llama_proj = nn.Linear(q_width, llm_width)
        self.llm = llm

    def speech_embeddings(self, mel: torch.Tensor, wave: torch.Tensor,
                          wave_padding: torch.Tensor) -> torch.Tensor:
        """``(B, windows, llm_width)`` speech embeddings for the LLM."""
        speech = self.ln_speech(self.whisper(mel).last_hidden_state)
        audio, padding = self.beats(wave, wave_padding)
        audio = self.ln_audio(audio)
        if padding is not None:  # what a clip alone gets: zeros after its last patch
            audio = audio.masked_fill(padding[..., None], 0.0)
        audio = audio[:, :speech.shape[1]]
        audio = nn.functional.pad(audio, (0, 0, 0, speech.shape[1] - audio.shape[1]))
        frames = torch.cat([speech, audio], dim=-1)
        b, t, _ = frames.shape
        n = t // WINDOW
        windows = rearrange(frames[:, :n * WINDOW], "b (n w) c -> (b n) w c", w=WINDOW)
        query = self.speech_query_tokens.expand(b * n, -1, -1)
        out = self.qformer(query_embeds=query, encoder_hidden_states=windows,
                           encoder_attention_mask=torch.ones(windows.shape[:2], dtype=torch.long,
                                                             device=windows.device))
        return self.speech_llama_proj(rearrange(out[0], "(b n) q d -> b (n q) d", b=b))

    def forward(self, inputs_embeds: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, speech: dict | None = None,
                assemble: Any = None) -> Any:
        """One pass: speech embeddings (if ``speech`` holds mel, wave and wave_padding) handed to
        ``assemble``, which returns the LLM's ``(inputs_embeds, attention_mask)``; then the LLM.
        Runs under autocast to the LLM's dtype when that is half precision (as the release)."""
        dtype = self.llm.get_input_embeddings().weight.dtype
        half = dtype in (torch.float16, torch.bfloat16)
        with torch.autocast(self.speech_llama_proj.weight.device.type, dtype=dtype, enabled=half):
            if speech is not None:
                inputs_embeds, attention_mask = assemble(self.speech_embeddings(**speech))
            if inputs_embeds is None:
                raise TypeError("SALMONNModel: give inputs_embeds or speech")
            return self.llm(inputs_embeds=inputs_embeds.to(dtype), attention_mask=attention_mask)


def _lora(llm: nn.Module, options: SALMONNOptions) -> nn.Module:
    from peft import LoraConfig, TaskType, get_peft_model

    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, inference_mode=True, r=options.lora_r,
                     lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                     target_modules=list(options.lora_targets))
    return get_peft_model(llm, cfg)


def build_model(spec: ModelSpec, variant: str | None,
                dtype: torch.dtype = torch.float32) -> tuple[SALMONNModel, Any, Any]:
    """The SALMONN model (LLM weights in ``dtype``, the rest in float32), tokenizer, extractor."""
    import transformers

    if variant == "tiny":
        tiny = spec.tiny
        torch.manual_seed(int(tiny.get("seed", 0)))
        whisper = transformers.WhisperModel(transformers.WhisperConfig(**tiny["whisper"])).encoder
        beats = BEATs(BEATsConfig(**tiny["beats"]))
        qcfg = transformers.Blip2QFormerConfig(**tiny["qformer"])
        llm_cfg = transformers.LlamaConfig(**tiny["llm"])
        llm = transformers.LlamaForCausalLM(llm_cfg)
        llm = llm.to(dtype)  # type: ignore[arg-type]  # transformers types .to's wrapper wrongly
        from .tokenizers import ByteTokenizer
        tokenizer = ByteTokenizer(llm_cfg.vocab_size, 0, llm_cfg.eos_token_id or 2,
                                  llm_cfg.bos_token_id or 1)
        extractor = transformers.WhisperFeatureExtractor(
            feature_size=tiny["whisper"]["num_mel_bins"])
        model = SALMONNModel(whisper, beats, transformers.Blip2QFormerModel(qcfg),
                             _lora(llm, spec.options), llm_cfg.hidden_size)
        return model.eval(), tokenizer, extractor
    opts = spec.options
    whisper_id = opts.whisper
    whisper = from_pretrained(transformers.WhisperModel.from_pretrained, whisper_id,
                              "Whisper checkpoint").encoder
    extractor = from_pretrained(transformers.WhisperFeatureExtractor.from_pretrained, whisper_id,
                                "Whisper feature extractor")
    beats = load_beats(opts.beats_checkpoint)
    llm = from_pretrained(transformers.LlamaForCausalLM.from_pretrained, spec.checkpoint,
                          "LLaMA/Vicuna checkpoint", torch_dtype=dtype,
                          **large_model_kwargs(spec))
    tokenizer = from_pretrained(transformers.AutoTokenizer.from_pretrained, spec.checkpoint,
                                "LLaMA tokenizer", use_fast=False)
    qcfg = transformers.Blip2QFormerConfig(
        hidden_size=768, num_hidden_layers=2, num_attention_heads=12, intermediate_size=3072,
        encoder_hidden_size=whisper.config.d_model + beats.cfg.encoder_embed_dim,
        cross_attention_frequency=1)
    model = SALMONNModel(whisper, beats, transformers.Blip2QFormerModel(qcfg),
                         _lora(llm, opts), llm.config.hidden_size)
    load_salmonn_checkpoint(model, opts.salmonn_checkpoint)
    return place_salmonn(model, llm, spec).eval(), tokenizer, extractor


def place_salmonn(model: SALMONNModel, llm: nn.Module, spec: ModelSpec) -> SALMONNModel:
    """The encoders and adapters on the spec's device; the LLM there too, unless
    ``from_pretrained`` spread or quantized it (then the rest goes to its first device)."""
    if not placed(llm):
        return model.to(pick_device(spec.device))
    first = next(p.device for p in llm.parameters() if p.device.type != "meta")
    for name, child in model.named_children():
        if name != "llm":
            child.to(first)
    model.speech_query_tokens.data = model.speech_query_tokens.data.to(first)
    return model


class SALMONN(Wrapper):
    """SALMONN: Whisper + BEATs -> window Q-Former -> LLaMA/Vicuna with LoRA."""

    model: SALMONNModel

    Options = SALMONNOptions
    NEEDS = ("checkpoint", "tiny")
    STRIDE_PERIOD = 34  # BEATs' 16-frame patches; Q-Former windows of 17 Whisper frames (x 2)
    FIDELITY = (
        "built in probekit from the paper and the released checkpoint's layout: every released "
        "key is mapped or ignored (tests/test_salmonn.py::"
        "test_every_released_salmonn_key_is_mapped_or_ignored); prompt ids built as the release "
        "builds them (tests/test_tokens.py::"
        "test_salmonn_prompt_ids_are_built_as_the_release_builds_them)",
        Wrapper.BATCH_INDEPENDENT,
        "half precision as the release (LLM in float16/bfloat16, encoders float32 under "
        "autocast) agrees with float32 within 3% (tests/test_fidelity.py::"
        "test_salmonn_in_half_precision_runs_both_modalities_and_agrees_with_float32)",
        "not compared numerically with the original classes (not runnable here); on purpose "
        "unlike the release: BEATs padding per time-major patch, padded patches zeroed")
    def __init__(self, model: SALMONNModel, spec: ModelSpec, tokenizer, extractor,
                 variant: str | None = None):
        super().__init__(model, spec, variant)
        self.tokenizer, self.extractor = tokenizer, extractor
        self.instruction = spec.options.instruction
        self.span = spec.options.llm_span

    @classmethod
    def build(cls, spec: ModelSpec, variant: str | None = None,
              dtype: torch.dtype = torch.float32) -> SALMONN:
        model, tokenizer, extractor = build_model(spec, variant, dtype)
        return cls(model, spec, tokenizer, extractor, variant)

    @classmethod
    def describe_inputs(cls, spec: ModelSpec) -> dict[str, Any]:
        instruction = spec.options.instruction
        return {"speech": "<s>" + PROMPT.format(instruction=instruction),
                "text": "<s>" + TEXT_PROMPT.format(text="{text}", instruction=instruction),
                "audio": "clips under 1 s padded with silence to 1 s"}

    def _ids(self, text: str, bos: bool) -> list[int]:
        from .tokenizers import ByteTokenizer

        if isinstance(self.tokenizer, ByteTokenizer):
            return ([self.tokenizer.start_id] if bos else []) + self.tokenizer.tokens(text)
        # as the release: BOS as its own id, each side of <SpeechHere> without special tokens
        ids = list(self.tokenizer(text, add_special_tokens=False).input_ids)
        return [self.tokenizer.bos_token_id] + ids if bos else ids

    def _embed(self, ids: list[int]) -> torch.Tensor:
        table = self.model.llm.get_input_embeddings()
        return table(torch.tensor(ids, device=table.weight.device))

    def inputs(self, batch: Sequence[dict[str, Any]]) -> ModelInputs:
        modality = self.batch_modality(batch)
        b = len(batch)
        rows, spans = [], []
        if modality == "speech":
            waves = [_at_least_one_second(np.asarray(ex["audio"], dtype=np.float32))
                     for ex in batch]
            if max(len(w) for w in waves) > 30 * 16000:
                raise RecordingError("SALMONN reads at most 30 s of audio per example")
            feats = self.extractor(waves, sampling_rate=16000, return_tensors="pt",
                                   return_attention_mask=True)
            frames = -(-feats["attention_mask"].sum(1) // 2)   # Whisper's stride-2 conv
            wave = nn.utils.rnn.pad_sequence([torch.from_numpy(w) for w in waves], True)
            padding = (torch.arange(wave.shape[1])[None]
                       >= torch.tensor([len(w) for w in waves])[:, None])
            lengths = {"whisper": frames, "qformer": (-(-frames // WINDOW)).clamp_max(WINDOWS),
                       "beats": self._beats_lengths(waves)}
            device = self.device
            dtype = self.model.speech_llama_proj.weight.dtype  # float32, as released
            speech = {"mel": feats["input_features"].to(device, dtype),
                      "wave": wave.to(device), "wave_padding": padding.to(device)}
            before, after = PROMPT.format(instruction=self.instruction).split("<SpeechHere>")
            head, tail = self._ids(before, True), self._ids(after, False)
            t = len(head) + WINDOWS + len(tail)
            for i in range(b):
                spans.append((len(head), len(head) + int(lengths["qformer"][i])))
            masks = {"llm": self._llm_mask(spans, [t] * b)}
            lengths["llm"] = masks["llm"].sum(1)

            def assemble(speech: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                table = self.model.llm.get_input_embeddings().weight
                speech = speech.to(table.dtype)
                embeds = torch.stack([torch.cat([self._embed(head), speech[i],
                                                 self._embed(tail)]) for i in range(b)])
                return embeds, torch.ones(embeds.shape[:2], dtype=torch.long,
                                          device=embeds.device)

            # the Q-Former runs on B * windows single-query sequences
            views = {"qformer": lambda x: rearrange(x, "(b n) q d -> b (n q) d", b=b)}
            return ModelInputs({"speech": speech, "assemble": assemble}, modality=modality,
                               lengths=lengths, masks=masks, views=views)
        with torch.no_grad():
            for ex in batch:
                prompt = TEXT_PROMPT.format(text="\0", instruction=self.instruction)
                before, after = prompt.split("\0")
                head = self._ids(before, True)
                text = self._ids(ex["text"], False)
                rows.append(self._embed(head + text + self._ids(after, False)))
                spans.append((len(head), len(head) + len(text)))
        t = max(len(r) for r in rows)
        embeds = torch.stack([nn.functional.pad(r, (0, 0, 0, t - len(r))) for r in rows])
        attention = (torch.arange(t)[None] < torch.tensor([len(r) for r in rows])[:, None]).long()
        masks = {"llm": self._llm_mask(spans, [len(r) for r in rows])}
        return ModelInputs({"inputs_embeds": embeds, "attention_mask": attention.to(embeds.device)},
                           modality=modality, lengths={"llm": masks["llm"].sum(1)}, masks=masks)

    @classmethod
    def required_weights(cls, spec: ModelSpec, languages: Sequence[str] = (),
                         speech: bool = True) -> list[tuple[str, str, bool | None]]:
        o = spec.options
        needs = super().required_weights(spec, languages, speech)
        needs.append((o.whisper, "Hugging Face hub", hub_cached(o.whisper)))
        for key in ("beats_checkpoint", "salmonn_checkpoint"):
            path = str(getattr(o, key))
            needs.append((path, f"local file (options.{key}; from the SALMONN release)",
                          os.path.isfile(path)))
        return needs

    def _llm_mask(self, spans: list[tuple[int, int]], totals: list[int]) -> torch.Tensor:
        """LLM positions pooled: the content span (or the whole prompt with llm_span: all)."""
        mask = torch.zeros(len(spans), max(totals), dtype=torch.bool)
        for i, ((lo, hi), total) in enumerate(zip(spans, totals, strict=True)):
            mask[i, :total] = self.span == "all"
            mask[i, lo:hi] = True
        return mask

    def _beats_lengths(self, waves: Sequence[np.ndarray]) -> torch.Tensor:
        """Patches with real audio: the valid time steps x frequency patches per step."""
        beats = self.model.beats
        steps = beats.valid_steps(torch.tensor([len(w) for w in waves]))
        return steps.clamp_min(1) * beats.patches_per_step

    def expected_blocks(self) -> dict[str, int]:
        m = self.model
        return {"whisper": m.whisper.config.encoder_layers, "beats": m.beats.cfg.encoder_layers,
                "qformer": m.qformer.config.num_hidden_layers,
                "llm": m.llm.get_base_model().config.num_hidden_layers}

    def length_rule(self, layer: str) -> str:
        stack = self.stack_of(layer)
        return {"whisper": "real mel frames / 2 (the rest is Whisper's 30 s padding)",
                "beats": "patches of real audio (16-frame steps x 8 frequency patches)",
                "qformer": "windows of 17 frames holding real audio",
                "llm": "speech positions (speech) or transcript tokens (text); no template"
                }.get(stack, "-")


def _at_least_one_second(wave: np.ndarray) -> np.ndarray:
    """The release pads clips shorter than 1 s with silence to 1 s."""
    return wave if len(wave) >= 16000 else np.pad(wave, (0, 16000 - len(wave)))
