"""Random-weight controls (variant ``random``): a model's architecture with seeded random weights
in place of the released ones, reset in place for families that cannot rebuild from a config."""

from __future__ import annotations

import logging
from typing import cast

import torch
import torch.nn as nn


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
                    for name in cast(nn.ModuleDict, mod.parametrizations):
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


def log_random(name: str, seed: int, what: str, fallback: list[str]) -> None:
    """Log that ``what`` of model ``name`` got random weights from ``seed``, and which
    parameters (from :func:`randomize_weights`) got the fallback init."""
    logging.getLogger("probekit").info(
        "%s: random weights (seed %d) for %s; %d parameter(s) without a reset_parameters() got "
        "the fallback init%s", name, seed, what, len(fallback),
        f": {', '.join(fallback[:8])}" if fallback else "")
