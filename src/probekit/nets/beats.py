"""BEATs audio encoder (Chen et al. 2022), written for probekit from the paper's description and
the released checkpoint's parameter layout (``../shared/data/beats_ckpt_keys.txt``), so that the
released ``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt`` loads by name.

Input: the 16 kHz wave -> 128-bin Kaldi fbank (x 2^15, 25 ms / 10 ms), normalised with the
pre-training statistics -> 16 x 16 patches (Conv2d, no bias) -> LayerNorm(512) -> Linear to 768
-> convolutional position embedding (kernel 128, 16 groups, weight-normalised) -> LayerNorm ->
post-norm Transformer layers with deep-norm residual scaling and a gated relative position bias
(the bias table of the first layer is used by every layer, each with its own gate).

Padding: a patch counts as padding when any of its 16 fbank frames reaches past the clip's end,
so a clip's valid patches are those it has when it runs alone. (The released code maps the
sample-level mask onto patches linearly although patches are ordered time-major, 8 frequency
patches per time step; padded patches then count as valid and a clip's outputs depend on its
batch.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange, reduce

FBANK_MEAN, FBANK_STD = 15.41663, 6.55582


@dataclass
class BEATsConfig:
    embed_dim: int = 512
    patch_size: int = 16
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    conv_pos: int = 128
    conv_pos_groups: int = 16
    num_buckets: int = 320
    max_distance: int = 800
    deep_norm: bool = True
    predictor_class: int | None = 527   # the AudioSet classifier of the fine-tuned checkpoint
    num_mel_bins: int = 128


# The released code's config defaults (a checkpoint's ``cfg`` updates them), and what probekit
# does with each flag: read it, implement it at one value only, or ignore it (training only).
RELEASED_DEFAULTS = {
    "input_patch_size": -1, "embed_dim": 512, "conv_bias": False, "encoder_layers": 12,
    "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12,
    "activation_fn": "gelu", "layer_wise_gradient_decay_ratio": 1.0, "layer_norm_first": False,
    "deep_norm": False, "dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0, "dropout_input": 0.0, "conv_pos": 128, "conv_pos_groups": 16,
    "relative_position_embedding": False, "num_buckets": 320, "max_distance": 1280,
    "gru_rel_pos": False, "finetuned_model": False, "predictor_dropout": 0.1,
    "predictor_class": 527}
_READ = {"input_patch_size": "patch_size", "embed_dim": "embed_dim",
         "encoder_layers": "encoder_layers", "encoder_embed_dim": "encoder_embed_dim",
         "encoder_ffn_embed_dim": "encoder_ffn_embed_dim",
         "encoder_attention_heads": "encoder_attention_heads", "conv_pos": "conv_pos",
         "conv_pos_groups": "conv_pos_groups", "num_buckets": "num_buckets",
         "max_distance": "max_distance", "deep_norm": "deep_norm",
         "predictor_class": "predictor_class"}
_ONLY = {"conv_bias": False, "activation_fn": "gelu", "layer_norm_first": False,
         "relative_position_embedding": True, "gru_rel_pos": True}
_TRAINING_ONLY = {"layer_wise_gradient_decay_ratio", "dropout", "attention_dropout",
                  "activation_dropout", "encoder_layerdrop", "dropout_input", "predictor_dropout",
                  "finetuned_model"}


def config_from_checkpoint(cfg: dict, where: str = "BEATs checkpoint") -> BEATsConfig:
    """A :class:`BEATsConfig` from a released checkpoint's ``cfg`` (over the released code's
    defaults). A flag probekit does not know, or implements only at another value, is an error:
    nothing is silently dropped."""
    from ..errors import ProbekitError

    unknown = sorted(set(cfg) - set(RELEASED_DEFAULTS))
    if unknown:
        raise ProbekitError(f"{where}: unknown cfg flag(s) {', '.join(unknown)}; probekit's BEATs "
                            "does not implement them (extend probekit.nets.beats)")
    full = {**RELEASED_DEFAULTS, **cfg}
    for key, only in _ONLY.items():
        if full[key] != only:
            raise ProbekitError(f"{where}: cfg {key}={full[key]!r}"
                                f"{'' if key in cfg else ' (the released default)'} is not "
                                f"supported; probekit's BEATs implements {key}={only!r} only")
    if int(full["input_patch_size"]) <= 0:
        raise ProbekitError(f"{where}: cfg input_patch_size={full['input_patch_size']!r}; "
                            "expected the patch size (16)")
    values = {ours: full[theirs] for theirs, ours in _READ.items()}
    if not full["finetuned_model"]:
        values["predictor_class"] = None
    return BEATsConfig(**values)


def relative_bucket(relative: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """T5-style bidirectional buckets: exact for small distances, logarithmic beyond."""
    half = num_buckets // 2
    buckets = (relative > 0).long() * half
    distance = relative.abs()
    exact = half // 2
    large = exact + (torch.log(distance.float().clamp_min(1) / exact)
                     / math.log(max_distance / exact) * (half - exact)).long()
    large = large.clamp(max=half - 1)
    return buckets + torch.where(distance < exact, distance, large)


class BEATsAttention(nn.Module):
    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        d, h = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.heads, self.head_dim = h, d // h
        self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.relative_attention_bias = nn.Embedding(cfg.num_buckets, h)
        self.grep_linear = nn.Linear(self.head_dim, 8)
        self.grep_a = nn.Parameter(torch.ones(1, h, 1, 1))

    def position_bias(self, length: int) -> torch.Tensor:
        pos = torch.arange(length, device=self.relative_attention_bias.weight.device)
        buckets = relative_bucket(pos[None, :] - pos[:, None], self.num_buckets, self.max_distance)
        return rearrange(self.relative_attention_bias(buckets), "t s h -> h t s")

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None,
                bias: torch.Tensor) -> torch.Tensor:
        heads = lambda z: rearrange(z, "b t (h e) -> b h t e", h=self.heads)  # noqa: E731
        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        scores = (q * self.head_dim ** -0.5) @ k.transpose(-1, -2)
        gates = reduce(self.grep_linear(q), "b h t (g k) -> b h t g", "sum", g=2)
        gate_a, gate_b = torch.sigmoid(gates).chunk(2, dim=-1)
        gate = gate_a * (gate_b * self.grep_a - 1.0) + 2.0
        scores = scores + gate * bias[None]
        if padding is not None:
            scores = scores.masked_fill(padding[:, None, None, :], float("-inf"))
        out = torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v
        return self.out_proj(rearrange(out, "b h t e -> b t (h e)"))


class BEATsLayer(nn.Module):
    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        d = cfg.encoder_embed_dim
        self.self_attn = BEATsAttention(cfg)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.alpha = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None,
                bias: torch.Tensor) -> torch.Tensor:
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, padding, bias))
        return self.final_layer_norm(x * self.alpha + self.fc2(F.gelu(self.fc1(x))))


class BEATsEncoder(nn.Module):
    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        d = cfg.encoder_embed_dim
        conv = nn.Conv1d(d, d, cfg.conv_pos, padding=cfg.conv_pos // 2, groups=cfg.conv_pos_groups)
        self.pos_conv = nn.Sequential(nn.utils.weight_norm(conv, name="weight", dim=2))
        self.trim = 1 if cfg.conv_pos % 2 == 0 else 0
        self.layers = nn.ModuleList(BEATsLayer(cfg) for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        if padding is not None:
            x = x.masked_fill(padding[..., None], 0.0)
        pos = self.positions(x.transpose(1, 2))
        if self.trim:
            pos = pos[..., :-self.trim]
        x = self.layer_norm(x + F.gelu(pos).transpose(1, 2))
        bias = cast(BEATsLayer, self.layers[0]).self_attn.position_bias(x.shape[1])
        for layer in self.layers:
            x = layer(x, padding, bias)
        return x

    def positions(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional position embedding of ``x`` (B, D, N). In bfloat16 on a CPU (or
        under bfloat16 autocast there) it is computed in float32 and returned in bfloat16:
        oneDNN's AMX kernels return wrong values for grouped bfloat16 convolutions with few
        channels per group (relative error about 1 at 4 or 8 channels per group, torch 2.9 and
        2.13, seen on a Sapphire Rapids CPU)."""
        autocast = (torch.is_autocast_enabled("cpu")
                    and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        if x.device.type != "cpu" or not (x.dtype == torch.bfloat16 or autocast):
            return self.pos_conv(x)
        conv = cast(nn.Conv1d, self.pos_conv[0])
        v, g = cast(torch.Tensor, conv.weight_v), cast(torch.Tensor, conv.weight_g)  # weight_norm's
        with torch.autocast("cpu", enabled=False):
            weight = torch._weight_norm(v.float(), g.float(), 2)
            bias = conv.bias.float() if conv.bias is not None else None
            pos = F.conv1d(x.float(), weight, bias, conv.stride, conv.padding, conv.dilation,
                           conv.groups)
        return pos.to(torch.bfloat16)


class BEATs(nn.Module):
    """The BEATs encoder; ``forward(wave (B, S), padding (B, S) bool)`` -> ``(B, N, 768)`` and
    the patch-level padding mask."""

    def __init__(self, cfg: BEATsConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or BEATsConfig()
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, cfg.patch_size, cfg.patch_size,
                                         bias=False)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.post_extract_proj = nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
        self.encoder = BEATsEncoder(cfg)
        self.predictor = (nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class)
                          if cfg.predictor_class else None)

    def fbank(self, wave: torch.Tensor) -> torch.Tensor:
        from ..audio import kaldi_fbank

        feats = [kaldi_fbank(w.cpu() * 2 ** 15, self.cfg.num_mel_bins) for w in wave.float()]
        return ((torch.stack(feats) - FBANK_MEAN) / (2 * FBANK_STD)).to(wave.device)

    @property
    def patches_per_step(self) -> int:
        """Frequency patches per time step (128 mel bins / 16)."""
        return self.cfg.num_mel_bins // self.cfg.patch_size

    def valid_steps(self, samples: torch.Tensor) -> torch.Tensor:
        """Time steps (of ``patch_size`` 25 ms / 10 ms frames) that ``samples`` fill entirely."""
        frames = ((samples - 400).div(160, rounding_mode="floor") + 1).clamp_min(0)
        return frames.div(self.cfg.patch_size, rounding_mode="floor")

    def patch_padding(self, padding: torch.Tensor, time_patches: int) -> torch.Tensor:
        """``(B, patches)`` padding of the time-major patch sequence from the ``(B, samples)``
        padding of right-padded waves: a time step is valid when all its frames are."""
        steps = self.valid_steps((~padding).sum(1))
        time = torch.arange(time_patches, device=padding.device)[None] >= steps[:, None]
        return time.repeat_interleave(self.patches_per_step, dim=1)

    def forward(self, wave: torch.Tensor, padding: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        with torch.autocast(wave.device.type, enabled=False):  # fbank energies overflow fp16
            fbank = self.fbank(wave)
        x = self.patch_embedding(fbank[:, None].to(self.patch_embedding.weight.dtype))
        time_patches = x.shape[2]
        x = self.layer_norm(rearrange(x, "b c t f -> b (t f) c"))  # time-major patches
        if padding is not None:
            padding = self.patch_padding(padding, time_patches)
        x = self.encoder(self.post_extract_proj(x), padding)
        return x, padding
