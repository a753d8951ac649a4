"""What every model wrapper offers, and loading real checkpoints with clear offline errors."""

from __future__ import annotations

import logging
import os
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from ..blocks import resolve_layers
from ..errors import ProbekitError, RecordingError
from ..recorder import as_dtype
from .spec import ModelSpec, Options


class ModelLoadError(ProbekitError):
    """A checkpoint could not be loaded (offline, missing file, wrong path)."""


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def from_pretrained(load: Callable[..., Any], checkpoint: str, what: str, **kwargs: Any) -> Any:
    """``load(checkpoint, **kwargs)`` from a local path or the local cache; download only when the
    hub is reachable, else one actionable error naming the file and how to point at a copy."""
    try:
        return load(checkpoint, local_files_only=True, **kwargs)
    except (OSError, ValueError) as cached_error:
        if os.path.isdir(checkpoint):
            raise ModelLoadError(f"cannot load {what} from the local folder {checkpoint}: "
                                 f"{cached_error}") from None
        if not hub_reachable():
            raise ModelLoadError(
                f"{what} {checkpoint!r} is not in the local Hugging Face cache and the hub cannot "
                "be reached (offline). Download it where you have network "
                f"(`huggingface-cli download {checkpoint}`) and copy the cache (HF_HOME), or "
                "point the spec at a local copy: model.checkpoint=/path/to/folder") from None
    return load(checkpoint, **kwargs)


def large_model_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """``from_pretrained`` arguments for a spec's ``device_map`` (accelerate spreads the weights
    over the GPUs, then the CPU) and ``quantize`` (bitsandbytes 8- or 4-bit weights)."""
    kwargs: dict[str, Any] = {}
    if spec.device_map:
        _require("accelerate", "model.device_map", "pip install accelerate")
        kwargs["device_map"] = spec.device_map
    if spec.quantize:
        _require("bitsandbytes", f"model.quantize={spec.quantize}", "pip install bitsandbytes")
        if not torch.cuda.is_available():
            raise ModelLoadError(f"model.quantize={spec.quantize} needs a CUDA GPU (bitsandbytes) "
                                 "and none is visible; remove model.quantize to run unquantized")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_8bit=spec.quantize == "8bit", load_in_4bit=spec.quantize == "4bit")
        kwargs.setdefault("device_map", {"": str(pick_device(spec.device))})
    return kwargs


def _require(package: str, what: str, fix: str) -> None:
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise ModelLoadError(f"{what} needs the package {package}, which is not installed: {fix}")


def place(model: nn.Module, spec: ModelSpec) -> nn.Module:
    """``model`` on the spec's device, unless ``from_pretrained`` already placed it
    (``device_map``, quantized weights)."""
    if placed(model):
        return model
    return model.to(pick_device(spec.device))


def placed(model: nn.Module) -> bool:
    """Whether ``from_pretrained`` placed ``model`` itself: spread over several devices
    (``device_map``; moving it would undo that), or quantized (bitsandbytes weights cannot be
    moved)."""
    spread = len({p.device for p in model.parameters()}) > 1
    return spread or bool(getattr(model, "is_quantized", False))


def hub_cached(repo: str, filename: str = "config.json", revision: str | None = None) -> bool:
    """Whether ``repo`` (a hub id; a local folder counts) has ``filename`` locally; no network."""
    if os.path.isdir(repo):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
        return isinstance(try_to_load_from_cache(repo, filename, revision=revision), str)
    except Exception:  # not a valid repo id, ...
        return False


def weights_source(name: str, revision: str | None = None) -> tuple[str, str, bool]:
    """``(name, where it comes from, available here)`` of a checkpoint named by a local folder
    or a Hugging Face hub id (``owner/name``); no network."""
    folder = os.path.expanduser(name)
    if os.path.isdir(folder):
        return name, "local folder", True
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        return name, "local folder, which does not exist", False
    pinned = f" at revision {revision}" if revision and revision != "main" else ""
    return name, f"Hugging Face hub{pinned}", hub_cached(name, revision=revision)


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class ModelInputs:
    """One batch made ready for the model by :meth:`Wrapper.inputs`: the arguments of
    :meth:`Wrapper.forward`, and which positions of each stack's outputs are real.

    ``lengths`` (``(B,)`` valid positions from the start) and ``masks`` (``(B, T)`` booleans) are
    keyed by stack, or by layer for a layer that differs from its stack; ``fills`` names the
    stacks (or layers) whose longest valid length must fill the output exactly (checked, so a
    wrong length rule fails instead of passing silently); ``views`` reshape a stack's outputs to
    ``(B, T, D)`` before pooling. The run loop
    gives all of this to the :class:`~probekit.Recorder`; wrappers never see the Recorder."""

    args: dict[str, Any]
    modality: str = ""
    lengths: dict[str, torch.Tensor] = field(default_factory=dict)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    fills: set[str] = field(default_factory=set)
    views: dict[str, Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=dict)

    def rule(self, layer: str, stack: str) -> str:
        """The key (layer, else stack) whose lengths or mask apply to ``layer``."""
        return layer if layer in self.lengths or layer in self.masks else stack


class Wrapper(ABC):
    """A model family: how a batch of examples becomes model inputs, and how the model runs.

    A family subclasses this and implements :meth:`build` (spec -> wrapper), :meth:`inputs`
    (examples -> :class:`ModelInputs`: arguments plus the valid length of every stack) and, when
    calling ``model(**args)`` is not enough, :meth:`forward`. Its options are a dataclass
    extending :class:`~probekit.wrappers.spec.Options` (``Options``), checked when a spec loads.
    It may also say which weights it needs (:meth:`required_weights`), which languages it takes
    (:meth:`check_languages`), how examples enter the model (:meth:`describe_inputs`), its
    blocks per stack (:meth:`expected_blocks`) and what is known to match the original
    implementation (``FIDELITY``). Specs name a family as ``wrapper: package.module:Class`` or
    through the ``probekit.wrappers`` entry-point group (see :mod:`probekit.wrappers.registry`).

    Attributes:
        model: the torch module (eval mode, no gradients).
        spec: the :class:`ModelSpec` it was built from; ``spec.options`` is an ``Options``.
        stacks: stack name -> block names in depth order.
        modalities: the input modalities it accepts.
    """

    Options: type[Options] = Options
    FIDELITY: tuple[str, ...] = ()
    BATCH_INDEPENDENT = ("every recorded layer of an example equals the example run alone, within "
                         "1e-4 of its largest value, in padded batches of longer and shorter "
                         "inputs (tests/test_fidelity.py::test_every_layer_of_every_spec_is_the_"
                         "same_alone_and_in_a_padded_batch)")
    RANDOM_AT_BUILD = False  # build() makes variant "random" itself (else randomize() after)

    def __init__(self, model: nn.Module, spec: ModelSpec, variant: str | None = None):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.spec, self.variant = spec, variant
        self.modalities = list(spec.modalities)   # modality -> stacks: spec.stacks_for
        self.stacks = self._resolve_stacks()

    # -- what a family implements ----------------------------------------------------------------
    @classmethod
    @abstractmethod
    def build(cls, spec: ModelSpec, variant: str | None = None,
              dtype: torch.dtype = torch.float32) -> "Wrapper":
        """The wrapper of ``spec``: the released checkpoint (``variant=None``), its architecture
        with random weights (``"random"``), or the spec's ``tiny`` config (random weights)."""

    @abstractmethod
    def inputs(self, batch: Sequence[dict[str, Any]]) -> ModelInputs:
        """Model inputs for ``batch`` (examples of one modality, each with ``modality``, ``lang``
        and ``text`` or ``audio``) and the valid lengths of every stack that modality runs."""

    def forward(self, inputs: ModelInputs) -> Any:
        """Run the model on ``inputs`` (under ``torch.no_grad``; hooks record the blocks)."""
        return self.model(**inputs.args)

    # -- what a family may say about itself ------------------------------------------------------
    @classmethod
    def required_weights(cls, spec: ModelSpec, languages: Sequence[str] = (),
                         speech: bool = True) -> list[tuple[str, str, bool | None]]:
        """What loading the released ``spec`` needs: ``(name, where it comes from, available
        here)``; available is None when it cannot be told without the network."""
        needs = [weights_source(spec.checkpoint, spec.revision)]
        if spec.processor:
            needs.append(weights_source(spec.processor))
        return needs

    @classmethod
    def check_languages(cls, spec: ModelSpec, languages: Sequence[str],
                        modalities: Sequence[str]) -> None:
        """Refuse (with a :class:`ProbekitError`) languages the model cannot take."""

    @classmethod
    def supported_languages(cls, spec: ModelSpec, modalities: Sequence[str]) -> set[str] | None:
        """The languages (ISO 639-3) the model takes on every one of ``modalities``, for named
        groups such as ``data.languages: all``; ``None``: any (the model does not say)."""
        return None

    @classmethod
    def describe_inputs(cls, spec: ModelSpec) -> dict[str, Any]:
        """How examples enter the model (prompts, token prefixes), from the spec alone; recorded
        in the store and part of its recipe hash."""
        return {}

    def expected_blocks(self) -> dict[str, int]:
        """Blocks per stack as the architecture's config says (stacks it can tell)."""
        return {}

    def length_rule(self, layer: str) -> str:
        """How the valid length of ``layer``'s output is computed (for ``probekit layers``)."""
        return "-"

    @classmethod
    def skeleton(cls, spec: ModelSpec) -> nn.Module:
        """The released architecture built from its config alone on the meta device (no
        weights), for listing its layers; families that cannot say raise ProbekitError."""
        raise ProbekitError(f"the {spec.wrapper} wrapper cannot build {spec.name} without its "
                            "weights; list the tiny variant's layers instead (--variant tiny)")

    def randomize(self, seed: int) -> None:
        """Random seeded weights in place of the loaded ones (variant ``random``)."""
        fallback = randomize_weights(self.model, seed)
        _log_random(self.spec.name, seed, "the model", fallback)

    # -- shared --------------------------------------------------------------------------------
    def _resolve_stacks(self) -> dict[str, list[str]]:
        return {name: resolve_layers(self.model, patterns)
                for name, patterns in self.spec.stacks.items()}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def layers(self, stacks: Sequence[str] | None = None) -> list[str]:
        """Block names of the given stacks (all by default), in stack order."""
        names = stacks or list(self.stacks)
        unknown = [s for s in names if s not in self.stacks]
        if unknown:
            raise RecordingError(f"{self.spec.name} has no stack {unknown[0]!r}; it has "
                                 f"{', '.join(self.stacks)}")
        return [layer for s in names for layer in self.stacks[s]]

    def stack_of(self, layer: str) -> str:
        return next((name for name, layers in self.stacks.items() if layer in layers), "")

    def text_tokens(self, text: str, lang: str) -> int:
        """How many tokens ``text`` makes without special tokens (checked against
        ``options.max_text_tokens`` before a text example runs)."""
        from .tokenizers import ByteTokenizer

        tokenizer = getattr(self, "tokenizer", None)
        if isinstance(tokenizer, ByteTokenizer):
            return len(tokenizer.tokens(text))
        if tokenizer is None:
            raise NotImplementedError(f"{type(self).__name__} does not say how to count tokens")
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def batch_modality(self, batch: Sequence[dict[str, Any]]) -> str:
        """The one modality of ``batch`` (an error for a mixed batch or one the model lacks)."""
        modalities = {ex["modality"] for ex in batch}
        if len(modalities) != 1:
            raise RecordingError("a batch holds one modality; split speech and text examples")
        modality = modalities.pop()
        if modality not in self.modalities:
            raise RecordingError(f"{self.spec.name} takes {' and '.join(self.modalities)}, "
                                 f"not {modality}")
        return modality

    def self_check(self) -> None:
        """Load-time check: stacks have the architecture's block counts, and one short probe
        example per modality makes every hooked block fire (exactly once: a repeat is an error)
        with valid lengths that fit its outputs."""
        from ..batch import capture

        for stack, count in self.expected_blocks().items():
            if len(self.stacks.get(stack, [])) != count:
                raise RecordingError(
                    f"{self.spec.name}: stack {stack!r} hooks {len(self.stacks.get(stack, []))} "
                    f"blocks but the architecture has {count}; "
                    f"fix the patterns in {self.spec.path}")
        for modality in self.modalities:
            rec, _ = capture(self, [probe_example(modality)], pool="none")
            fired = {n for n, c in rec.calls.items() if c == 1}
            expected = set(self.layers(self.spec.stacks_for(modality)))
            silent = [n for n in self.layers() if n in expected and n not in fired]
            if silent:
                raise RecordingError(
                    f"{self.spec.name}: blocks that never ran on a probe {modality} example: "
                    f"{', '.join(silent[:4])}; check the stacks and modalities in {self.spec.path}")
            extra = sorted(n for n in fired if n not in expected)
            if extra:
                raise RecordingError(
                    f"{self.spec.name}: a {modality} example runs {', '.join(extra[:4])}, but "
                    f"modalities.{modality} in {self.spec.path} does not list its stack")


def _log_random(name: str, seed: int, what: str, fallback: list[str]) -> None:
    logging.getLogger("probekit").info(
        "%s: random weights (seed %d) for %s; %d parameter(s) without a reset_parameters() got "
        "the fallback init%s", name, seed, what, len(fallback),
        f": {', '.join(fallback[:8])}" if fallback else "")


def probe_example(modality: str) -> dict[str, Any]:
    """One short example of ``modality`` (1 s of noise, or a short sentence in English)."""
    import numpy as np

    audio = 0.05 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    return {"id": "probe", "lang": "eng", "modality": modality, "text": "probekit checks layers",
            "audio": audio}


def randomize_weights(module: nn.Module, seed: int) -> list[str]:
    """Re-initialise ``module``'s parameters in place from ``seed``, keeping dtypes and devices and
    leaving the global RNG state alone: every submodule's ``reset_parameters()`` (weight-normed
    convolutions re-split from their reset weight), then the parameters none of them wrote to:
    1-D weights and biases of normalisation modules to 1 and 0, the rest from N(0, 0.02).
    Returns the names of those fallback parameters. Values depend on the device (its RNG)."""
    from torch.nn.utils import parametrize
    from torch.nn.utils.weight_norm import WeightNorm

    before = {id(p): (p._version, p) for p in module.parameters()}  # in-place writes bump it
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.random.default_generator.manual_seed(seed)
        for index in devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        for mod in module.modules():
            reset = getattr(mod, "reset_parameters", None)
            if not callable(reset):
                continue
            if parametrize.is_parametrized(mod):  # reset the computed tensors, write them back
                with parametrize.cached():
                    reset()
                    for name in mod.parametrizations:
                        setattr(mod, name, getattr(mod, name))
            else:
                reset()
            for hook in mod._forward_pre_hooks.values():
                if isinstance(hook, WeightNorm):  # reset_parameters wrote the computed weight
                    weight = getattr(mod, hook.name)
                    getattr(mod, hook.name + "_v").copy_(weight)
                    getattr(mod, hook.name + "_g").copy_(torch.norm_except_dim(weight, 2, hook.dim))
        fallback = []
        for name, p in module.named_parameters():
            if before.get(id(p), (-1,))[0] != p._version:
                continue
            fallback.append(name)
            owner = module.get_submodule(name.rpartition(".")[0])
            if p.dim() == 1 and "norm" in type(owner).__name__.lower():
                p.fill_(0.0 if name.endswith("bias") else 1.0)
            else:
                nn.init.normal_(p, std=0.02)
    return fallback


def model_dtype(spec: ModelSpec, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The weights' dtype: ``dtype`` when given (honoured on every device, the CPU included);
    else the spec's, where half precision falls back to float32 on the CPU (slow there)."""
    if dtype is not None:
        return as_dtype(dtype)
    dtype = as_dtype(spec.dtype) or torch.float32
    if dtype in (torch.float16, torch.bfloat16) and pick_device(spec.device).type == "cpu":
        logging.getLogger("probekit").info("%s: no GPU, loading in float32 instead of %s",
                                           spec.name, spec.dtype)
        return torch.float32
    return dtype


def transformers_skeleton(spec: ModelSpec) -> nn.Module:
    """A transformers spec's model from its checkpoint's config (a local folder, the cache or
    the hub: config.json only), on the meta device."""
    import transformers

    model_cls = getattr(transformers, spec.model_class)
    config = from_pretrained(model_cls.config_class.from_pretrained, spec.checkpoint,
                             f"config of {spec.name}", revision=spec.revision)
    with torch.device("meta"):
        return model_cls(config)


def transformers_parts(spec: ModelSpec, variant: str | None, extractor_class: str | None,
                       dtype: torch.dtype = torch.float32, with_tokenizer: bool = True
                       ) -> tuple[nn.Module, Any, Any]:
    """Model, tokenizer and feature extractor of a transformers spec: the tiny variant (random
    seeded weights from ``tiny.config``, a byte tokenizer, a default extractor) or the checkpoint,
    with weights in ``dtype``."""
    import transformers

    from .tokenizers import ByteTokenizer

    model_cls = getattr(transformers, spec.model_class)
    extractor_cls = getattr(transformers, extractor_class) if extractor_class else None
    if variant == "tiny":
        config = model_cls.config_class(**spec.tiny.get("config", {}))
        torch.manual_seed(int(spec.tiny.get("seed", 0)))
        model = model_cls(config)
        tokenizer = ByteTokenizer(config.vocab_size, getattr(config, "pad_token_id", 0) or 0,
                                  getattr(config, "eos_token_id", 3) or 3,
                                  getattr(config, "decoder_start_token_id", 3) or 3)
        extractor = extractor_cls(**spec.tiny.get("extractor", {})) if extractor_cls else None
        return model.to("cpu", dtype), tokenizer, extractor
    if getattr(spec.options, "checkpoint_format", "") == "ctranslate2":
        from .ct2_whisper import load_ct2_whisper, resolve_ct2_whisper

        full, tokenizer, extractor = load_ct2_whisper(resolve_ct2_whisper(spec.checkpoint), dtype)
        model = full if isinstance(full, model_cls) else full.get_submodule(
            spec.options.submodule)
    else:
        model = from_pretrained(model_cls.from_pretrained, spec.checkpoint,
                                f"{spec.model_class} checkpoint", revision=spec.revision,
                                torch_dtype=dtype, **large_model_kwargs(spec))
        source = spec.processor or spec.checkpoint
        tokenizer = (from_pretrained(transformers.AutoTokenizer.from_pretrained, source,
                                     f"tokenizer of {spec.name}") if with_tokenizer else None)
        extractor = (from_pretrained(extractor_cls.from_pretrained, source, extractor_class)
                     if extractor_cls else None)
    if variant == "random":  # the same architecture, tokenizer and features; random weights
        torch.manual_seed(int(spec.tiny.get("seed", 0)))
        model = model_cls(model.config).to(dtype)
        if spec.device_map:
            from accelerate import dispatch_model, infer_auto_device_map

            model = dispatch_model(model, infer_auto_device_map(model))
    return place(model, spec), tokenizer, extractor
