"""Tiny random-initialised models of the real classes, for tests (no download)."""

from __future__ import annotations

import torch


def seamless_v2_config(**overrides):
    """The tiny SeamlessM4T v2 config of models/seamless_m4t_v2.yaml."""
    from transformers import SeamlessM4Tv2Config

    from probekit.wrappers import load_spec

    return SeamlessM4Tv2Config(**{**load_spec("seamless_m4t_v2").tiny["config"], **overrides})


def seamless_v2_text_model(seed: int = 0):
    """A tiny SeamlessM4Tv2ForTextToText (text encoder + decoder), eval mode."""
    from transformers import SeamlessM4Tv2ForTextToText

    torch.manual_seed(seed)
    return SeamlessM4Tv2ForTextToText(seamless_v2_config()).eval()


def padded_ids(lengths, vocab=128, side="right", seed=0):
    """Random token ids with the given lengths, padded with 0, and their attention mask."""
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    ids = torch.zeros(len(lengths), t, dtype=torch.long)
    mask = torch.zeros(len(lengths), t, dtype=torch.long)
    for i, n in enumerate(lengths):
        seq = torch.randint(4, vocab, (n,), generator=g)
        if side == "right":
            ids[i, :n], mask[i, :n] = seq, 1
        else:
            ids[i, t - n:], mask[i, t - n:] = seq, 1
    return ids, mask
