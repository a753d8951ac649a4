"""A model family from outside probekit: a byte-level toy encoder and its wrapper, registered
through the ``probekit.wrappers`` entry point (see ../toy_plugin-0.1.dist-info)."""

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from probekit.wrappers import ModelInputs, Options, Wrapper


class ToyEncoder(nn.Module):
    def __init__(self, width: int, depth: int):
        super().__init__()
        self.embed = nn.Embedding(256, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width))
                                    for _ in range(depth))

    def forward(self, ids: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        x = self.embed(ids) * scale
        for block in self.blocks:
            x = x + block(x)  # position-wise: padding never reaches a real position
        return x


@dataclass
class ToyOptions(Options):
    scale: float = field(default=1.0, metadata={"doc": "multiplies the embeddings"})


class ToyWrapper(Wrapper):
    Options = ToyOptions

    @classmethod
    def build(cls, spec, variant=None, dtype=torch.float32):
        torch.manual_seed(int(spec.tiny.get("seed", 0)))
        model = ToyEncoder(int(spec.tiny["width"]), int(spec.tiny["depth"])).to(dtype)
        return cls(model, spec, variant)

    def text_tokens(self, text, lang):
        return len(text.encode())

    def inputs(self, batch):
        modality = self.batch_modality(batch)
        rows = [list(ex["text"].encode()) or [0] for ex in batch]
        ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
        return ModelInputs({"ids": ids, "scale": self.spec.options.scale}, modality=modality,
                           lengths={"blocks": torch.tensor([len(r) for r in rows])},
                           fills={"blocks"})


class Incomplete(Wrapper):
    """Lacks ``inputs``: refused when a spec names it."""

    @classmethod
    def build(cls, spec, variant=None, dtype=torch.float32):
        raise AssertionError("never built")
