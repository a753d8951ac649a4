"""Loading real checkpoints: from a local folder, the cache or the hub (downloads only when the hub
answers, else one actionable offline error), on the spec's device and in its dtype, spread over
GPUs (``device_map``) or quantized (``quantize``); what a checkpoint needs and whether it is here;
the transformers parts (model, tokenizer, feature extractor) every transformers family shares."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from ..dtypes import as_dtype
from ..errors import ModelLoadError
from .spec import ModelSpec

# reads a checkpoint not in transformers' format: model class -> model, tokenizer, extractor
Reader = Callable[[type[nn.Module]], tuple[nn.Module, Any, Any]]


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether ``host`` answers on port 443 (never asked when ``HF_HUB_OFFLINE=1``)."""
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
    """A spec's ``device`` as a torch device (``auto``: the GPU when there is one)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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
                       dtype: torch.dtype = torch.float32, with_tokenizer: bool = True,
                       released: Reader | None = None
                       ) -> tuple[nn.Module, Any, Any]:
    """Model, tokenizer and feature extractor of a transformers spec: the tiny variant (random
    seeded weights from ``tiny.config``, a byte tokenizer, a default extractor) or the checkpoint,
    with weights in ``dtype``. ``released(model_cls)`` reads a checkpoint that is not in
    transformers' format (a family's converter, e.g. the hf family's CTranslate2 Whisper) and
    returns its model, tokenizer and extractor; by default ``from_pretrained`` reads it."""
    import transformers

    from .tokenizers import ByteTokenizer

    model_cls = getattr(transformers, spec.model_class)
    extractor_cls = getattr(transformers, extractor_class) if extractor_class else None
    tokenizer: Any
    if variant == "tiny":
        config = model_cls.config_class(**spec.tiny.get("config", {}))
        torch.manual_seed(int(spec.tiny.get("seed", 0)))
        model = model_cls(config)
        tokenizer = ByteTokenizer(config.vocab_size, getattr(config, "pad_token_id", 0) or 0,
                                  getattr(config, "eos_token_id", 3) or 3,
                                  getattr(config, "decoder_start_token_id", 3) or 3)
        extractor = extractor_cls(**spec.tiny.get("extractor", {})) if extractor_cls else None
        return model.to("cpu", dtype), tokenizer, extractor
    if released is not None:
        model, tokenizer, extractor = released(model_cls)
    else:
        model = from_pretrained(model_cls.from_pretrained, spec.checkpoint,
                                f"{spec.model_class} checkpoint", revision=spec.revision,
                                torch_dtype=dtype, **large_model_kwargs(spec))
        source = spec.processor or spec.checkpoint
        tokenizer = (from_pretrained(transformers.AutoTokenizer.from_pretrained, source,
                                     f"tokenizer of {spec.name}") if with_tokenizer else None)
        extractor = (from_pretrained(extractor_cls.from_pretrained, source, extractor_class)
                     if extractor_cls and extractor_class else None)
    if variant == "random":  # the same architecture, tokenizer and features; random weights
        torch.manual_seed(int(spec.tiny.get("seed", 0)))
        model = model_cls(model.config).to(dtype)
        if spec.device_map:
            from accelerate import dispatch_model, infer_auto_device_map

            model = dispatch_model(model, infer_auto_device_map(model))
    return place(model, spec), tokenizer, extractor
