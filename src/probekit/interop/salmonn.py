"""The released SALMONN and BEATs checkpoints read into probekit's modules: SALMONN's key map
(released name -> probekit name; :data:`KEY_MAP`, :data:`IGNORED`: known keys not needed; any
other key is an error) and strict, tensors-only loading (``weights_only=True``: a file cannot
run code when it loads). The model itself is :mod:`probekit.wrappers.salmonn`'s; BEATs is
:mod:`probekit.nets.beats`.
"""

from __future__ import annotations

import os
import pickle
import re
from typing import Any

import torch
import torch.nn as nn

from ..errors import ModelLoadError, ProbekitError
from ..nets.beats import BEATs, config_from_checkpoint

# released name (regex) -> probekit name (template)
KEY_MAP = [
    (r"speech_query_tokens", "speech_query_tokens"),
    (r"(ln_speech|ln_audio|speech_llama_proj)\.(weight|bias)", r"\1.\2"),
    (r"llama_model\.(.+)", r"llm.\1"),
    (r"speech_Qformer\.bert\.embeddings\.LayerNorm\.(weight|bias)", r"qformer.layernorm.\1"),
    (r"speech_Qformer\.bert\.encoder\.layer\.(\d+)\.(attention|crossattention)\.self\.(.+)",
     r"qformer.encoder.layer.\1.\2.attention.\3"),
    (r"speech_Qformer\.bert\.encoder\.layer\.(\d+)\.(.+)", r"qformer.encoder.layer.\1.\2"),
]
IGNORED = [
    r"speech_Qformer\.bert\.embeddings\.position_ids",           # a buffer, unused by queries
    r"beats\.encoder\.layers\.\d+\.self_attn\.relative_attention_bias\.weight",  # tied copies
    r".*\.rotary_emb\.inv_freq",                                  # recomputed by LLaMA
]


def map_key(key: str) -> str | None:
    """probekit's name for a released SALMONN key; None if it is ignored; error if unknown."""
    if any(re.fullmatch(p, key) for p in IGNORED):
        return None
    for pattern, target in KEY_MAP:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, target, key)
    raise ModelLoadError(f"SALMONN checkpoint key {key!r} is neither mapped nor ignored; "
                         "extend probekit.interop.salmonn.KEY_MAP")


def _torch_file(path: str, what: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise ModelLoadError(
            f"{what} {path!r} not found: download it from the SALMONN / BEATs releases and give "
            "its local path in the spec (options.salmonn_checkpoint / options.beats_checkpoint)")
    try:  # tensors and plain containers only: a .pth file cannot run code when it loads
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = next((line.strip() for line in str(e).splitlines()
                       if "GLOBAL" in line or "Unsupported" in line), str(e).splitlines()[0])
        raise ModelLoadError(
            f"{what} {path} holds Python objects besides tensors and plain containers "
            f"({detail[:200]}); probekit loads checkpoints with weights_only=True so that a file "
            "cannot run code. If you trust the file, re-save what it holds as plain data: "
            "torch.save({'model': ckpt['model'], 'cfg': dict(ckpt['cfg'])}, 'plain.pt')") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ModelLoadError(f"{what} {path} cannot be read ({e}); download it again") from None


def load_beats(path: str) -> BEATs:
    """BEATs from the released checkpoint (a dict with ``cfg`` and ``model``), loaded strictly."""
    ckpt = _torch_file(path, "BEATs checkpoint")
    try:
        cfg = config_from_checkpoint(dict(ckpt.get("cfg", {})), f"BEATs checkpoint {path}")
    except ProbekitError as e:
        raise ModelLoadError(str(e)) from None
    beats = BEATs(cfg)
    beats.load_state_dict(ckpt["model"], strict=True)
    return beats


def load_salmonn_checkpoint(model: nn.Module, path: str | dict[str, Any]) -> list[str]:
    """Load released SALMONN weights into ``model``; returns the ignored keys. Every key must be
    mapped or ignored, and every mapped key must exist with the same shape."""
    state = _torch_file(path, "SALMONN checkpoint") if isinstance(path, str) else path
    state = state.get("model", state)
    own = model.state_dict()
    mapped, ignored = {}, []
    for key, value in state.items():
        target = map_key(key)
        if target is None:
            ignored.append(key)
            continue
        if target not in own:
            raise ModelLoadError(f"SALMONN key {key!r} maps to {target!r}, which this model lacks")
        if tuple(own[target].shape) != tuple(value.shape):
            raise ModelLoadError(f"SALMONN key {key!r}: shape {tuple(value.shape)} but "
                                 f"{target!r} has {tuple(own[target].shape)}")
        mapped[target] = value
    model.load_state_dict(mapped, strict=False)
    return ignored
