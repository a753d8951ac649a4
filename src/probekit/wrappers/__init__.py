"""Model wrappers: ``load_model(spec)`` builds a model from a ``models/*.yaml`` spec and returns a
wrapper that knows its stacks, its inputs and the valid lengths of every recorded sequence."""

from __future__ import annotations

import logging
from typing import Any

import torch.nn as nn

from .base import ModelLoadError, Wrapper
from .spec import ModelSpec, SpecError, available_specs, load_spec


def _registry() -> dict[str, Any]:
    from .hf import HFModel
    from .seamless import SeamlessM4T
    from .salmonn import SALMONN
    from .sonar import Sonar
    return {"seamless_m4t": SeamlessM4T, "hf": HFModel, "sonar": Sonar, "salmonn": SALMONN}


VARIANTS = (None, "tiny", "random")
RANDOM_WRAPPERS = ("hf", "seamless_m4t", "sonar", "salmonn")


def load_model(spec: str | ModelSpec, variant: str | None = None, check: bool = True,
               dtype: str | None = None, **overrides: Any) -> Wrapper:
    """Build the model of ``spec`` (a name in ``models/`` or a YAML path).

    ``variant="tiny"`` builds the spec's tiny configuration with random (seeded) weights, offline;
    otherwise the checkpoint is loaded from a local path, the cache, or the hub; ``"random"``
    keeps its architecture, tokenizer and features with random weights seeded by ``tiny.seed`` (a
    control): rebuilt from the config (hf, seamless_m4t) or reset in place by
    :func:`~probekit.wrappers.base.randomize_weights` (sonar, salmonn). ``check`` runs
    :meth:`Wrapper.self_check` (block counts, every block fires once on a probe example).
    ``dtype`` (float32 | float16 | bfloat16) sets the weights' precision on any device; without
    it the spec's dtype is used, in float32 on a CPU (and for the tiny variant)."""
    spec = load_spec(spec, **overrides)
    if variant not in VARIANTS:
        raise SpecError(f"variant must be one of {', '.join(map(str, VARIANTS))}; got {variant!r}")
    if variant == "tiny" and not spec.tiny:
        raise SpecError(f"{spec.path}: no 'tiny' section to build a test model from")
    wrappers = _registry()
    if spec.wrapper not in wrappers:
        raise SpecError(f"{spec.path}: unknown wrapper {spec.wrapper!r}; known: "
                        f"{', '.join(wrappers)}")
    if variant == "random" and spec.wrapper not in RANDOM_WRAPPERS:
        raise SpecError(f"{spec.path}: variant 'random' (the checkpoint's architecture with "
                        f"random weights) is available for {', '.join(RANDOM_WRAPPERS)} specs")
    from .base import model_dtype

    if dtype is None and variant == "tiny":
        dtype = "float32"
    wrapper = wrappers[spec.wrapper].build(spec, variant, model_dtype(spec, dtype))
    if variant == "random" and spec.wrapper in ("sonar", "salmonn"):
        _randomize(wrapper, int(spec.tiny.get("seed", 0)))
    if check:
        wrapper.self_check()
    return wrapper


def _randomize(wrapper: Wrapper, seed: int) -> None:
    """Random seeded weights in place of a loaded sonar or salmonn checkpoint's. SONAR: the text
    encoder from ``seed``, each language's speech encoder (also those loaded later) from ``seed``
    + its code's CRC32 % 1000, as the tiny variant seeds them."""
    import zlib

    from .base import randomize_weights
    from .sonar import Sonar

    log = logging.getLogger("probekit")

    def reset(module: nn.Module, seed: int, what: str) -> None:
        fallback = randomize_weights(module, seed)
        log.info("%s: random weights (seed %d) for %s; %d parameter(s) without a "
                 "reset_parameters() got the fallback init%s", wrapper.spec.name, seed, what,
                 len(fallback), f": {', '.join(fallback[:8])}" if fallback else "")

    if not isinstance(wrapper, Sonar):
        reset(wrapper.model, seed, "the model")
        return
    speech_seed = lambda code: seed + zlib.crc32(code.encode()) % 1000  # noqa: E731
    reset(wrapper.model.text_encoder, seed, "the text encoder")
    for code, encoder in wrapper._speech.items():
        reset(encoder, speech_seed(code), f"the {code} speech encoder")
    load = wrapper._load_speech

    def load_random(code: str) -> nn.Module:
        encoder = load(code)
        reset(encoder, speech_seed(code), f"the {code} speech encoder")
        return encoder

    wrapper._load_speech = load_random


def describe_inputs(spec: ModelSpec) -> dict[str, Any]:
    """How ``spec``'s model receives examples (prompts, token prefixes); loads nothing."""
    wrapper = _registry().get(spec.wrapper)
    return wrapper.describe_inputs(spec) if wrapper else {}


def fidelity(spec: ModelSpec) -> tuple[str, ...]:
    """What is known to match ``spec``'s original implementation, and which test shows it."""
    wrapper = _registry().get(spec.wrapper)
    return wrapper.FIDELITY if wrapper else ()


__all__ = ["describe_inputs", "fidelity", "ModelLoadError", "ModelSpec", "SpecError", "Wrapper", "available_specs",
           "load_model", "load_spec"]
