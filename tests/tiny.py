"""Tiny random-initialised models of the real classes, for tests (no download)."""

from __future__ import annotations

import torch


def seamless_v2_config(**overrides):
    from transformers import SeamlessM4Tv2Config

    cfg = dict(vocab_size=128, t2u_vocab_size=64, char_vocab_size=64, hidden_size=32,
               encoder_layers=3, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
               encoder_attention_heads=2, decoder_attention_heads=2, speech_encoder_layers=3,
               speech_encoder_attention_heads=2, speech_encoder_intermediate_size=64,
               conv_depthwise_kernel_size=5, t2u_encoder_layers=1, t2u_decoder_layers=1,
               t2u_encoder_ffn_dim=32, t2u_decoder_ffn_dim=32, t2u_variance_predictor_embed_dim=32,
               t2u_variance_predictor_hidden_dim=16, unit_embed_dim=16, lang_embed_dim=8,
               spkr_embed_dim=8, unit_hifi_gan_vocab_size=64, upsample_initial_channel=32,
               max_position_embeddings=128, encoder_layerdrop=0.0, decoder_layerdrop=0.0,
               speech_encoder_layerdrop=0.0, t2u_encoder_layerdrop=0.0, t2u_decoder_layerdrop=0.0,
               pad_token_id=0, bos_token_id=2, eos_token_id=3, decoder_start_token_id=3)
    cfg.update(overrides)
    return SeamlessM4Tv2Config(**cfg)


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
