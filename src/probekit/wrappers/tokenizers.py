"""Token rows to padded batches, and a byte-level stand-in tokenizer for tiny random models (real
tokenizers need a download).

It follows SeamlessM4T's conventions: source ``[lang] tokens </s>``; decoder input
``[decoder_start] [lang] tokens`` (the labels ``[lang] tokens </s>`` shifted right).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch

_RESERVED = 8  # ids below this are special tokens (pad, bos, eos, ...)


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids`` and their ``attention_mask`` from rows of token ids."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.as_tensor(list(r), dtype=torch.long)
        mask[i, :len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class ByteTokenizer:
    def __init__(self, vocab_size: int, pad_id: int = 0, eos_id: int = 3, start_id: int = 3):
        if vocab_size < 2 * _RESERVED + 2:
            raise ValueError(f"vocab_size {vocab_size} is too small for the byte tokenizer")
        self.vocab_size, self.pad_token_id = vocab_size, pad_id
        self.eos_id, self.start_id = eos_id, start_id
        self._lang_ids = 8  # the last ids of the vocabulary stand for languages

    def lang_id(self, lang: str) -> int:
        return self.vocab_size - 1 - zlib.crc32(lang.encode()) % self._lang_ids

    def tokens(self, text: str) -> list[int]:
        span = self.vocab_size - _RESERVED - self._lang_ids
        return [_RESERVED + b % span for b in text.encode("utf-8")] or [_RESERVED]

    def _batch(self, rows: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        return pad_rows(rows, self.pad_token_id)

    def source(self, texts: Sequence[str], langs: Sequence[str]) -> dict[str, torch.Tensor]:
        return self._batch([[self.lang_id(lang)] + self.tokens(t) + [self.eos_id]
                            for t, lang in zip(texts, langs, strict=True)])

    def decoder_inputs(self, texts: Sequence[str], langs: Sequence[str]) -> dict[str, torch.Tensor]:
        return self._batch([[self.start_id, self.lang_id(lang)] + self.tokens(t)
                            for t, lang in zip(texts, langs, strict=True)])
