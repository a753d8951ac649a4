"""BEATs audio encoder (Chen et al. 2022), written for probekit from the paper's description and
the released checkpoint's parameter layout (``../shared/data/beats_ckpt_keys.txt``), so that the
released ``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt`` loads by name.

Input: the 16 kHz wave -> 128-bin Kaldi fbank (x 2^15, 25 ms / 10 ms), normalised with the
pre-training statistics -> 16 x 16 patches (Conv2d, no bias) -> LayerNorm(512) -> Linear to 768
-> convolutional position embedding (kernel 128, 16 groups, weight-normalised) -> LayerNorm ->
post-norm Transformer layers with deep-norm residual scaling and a gated relative position bias
(the bias table of the first layer is used by every layer, each with its own gate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

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
        return self.relative_attention_bias(buckets).permute(2, 0, 1)  # (H, T, T)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None,
                bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        split = lambda z: z.view(b, t, self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        scores = (q * self.head_dim ** -0.5) @ k.transpose(-1, -2)
        gate_a, gate_b = torch.sigmoid(self.grep_linear(q).view(b, self.heads, t, 2, 4).sum(-1)
                                       ).chunk(2, dim=-1)
        gate = gate_a * (gate_b * self.grep_a - 1.0) + 2.0
        scores = scores + gate * bias[None]
        if padding is not None:
            scores = scores.masked_fill(padding[:, None, None, :], float("-inf"))
        out = torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


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
        pos = self.pos_conv(x.transpose(1, 2))
        if self.trim:
            pos = pos[..., :-self.trim]
        x = self.layer_norm(x + F.gelu(pos).transpose(1, 2))
        bias = self.layers[0].self_attn.position_bias(x.shape[1])
        for layer in self.layers:
            x = layer(x, padding, bias)
        return x


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

    @staticmethod
    def _downsample(padding: torch.Tensor, length: int) -> torch.Tensor:
        extra = padding.shape[1] % length
        if extra:
            padding = padding[:, :-extra]
        return padding.view(padding.shape[0], length, -1).all(-1)

    def forward(self, wave: torch.Tensor, padding: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        fbank = self.fbank(wave)
        if padding is not None:
            padding = self._downsample(padding, fbank.shape[1])
        x = self.patch_embedding(fbank[:, None].to(self.patch_embedding.weight.dtype))
        x = self.layer_norm(x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2))
        if padding is not None:
            padding = self._downsample(padding, x.shape[1])
        x = self.encoder(self.post_extract_proj(x), padding)
        return x, padding
