"""Model wrappers: ``load_model(spec)`` builds a model from a ``models/*.yaml`` spec and returns a
wrapper that knows its stacks, its inputs and the valid lengths of every recorded sequence."""

from __future__ import annotations

from typing import Any

from .base import ModelLoadError, Wrapper
from .spec import ModelSpec, SpecError, available_specs, load_spec


def _registry() -> dict[str, Any]:
    from .hf import HFModel
    from .seamless import SeamlessM4T
    from .salmonn import SALMONN
    from .sonar import Sonar
    return {"seamless_m4t": SeamlessM4T, "hf": HFModel, "sonar": Sonar, "salmonn": SALMONN}


VARIANTS = (None, "tiny", "random")


def load_model(spec: str | ModelSpec, variant: str | None = None, check: bool = True,
               dtype: str | None = None, **overrides: Any) -> Wrapper:
    """Build the model of ``spec`` (a name in ``models/`` or a YAML path).

    ``variant="tiny"`` builds the spec's tiny configuration with random (seeded) weights, offline;
    otherwise the checkpoint is loaded from a local path, the cache, or the hub; ``"random"``
    keeps its architecture, tokenizer and features with random (seeded) weights (a control). ``check`` runs
    :meth:`Wrapper.self_check` (block counts, every block fires once on a probe example).
    ``dtype`` (float32 | float16 | bfloat16) sets the weights' precision on any device; without
    it the spec's dtype is used, in float32 on a CPU (and for the tiny variant)."""
    spec = load_spec(spec, **overrides)
    if variant not in VARIANTS:
        raise SpecError(f"variant must be one of {', '.join(map(str, VARIANTS))}; got {variant!r}")
    if variant == "random" and spec.wrapper not in ("hf", "seamless_m4t"):
        raise SpecError(f"{spec.path}: variant 'random' (the checkpoint's architecture with "
                        "random weights) is available for transformers specs (hf, seamless_m4t)")
    if variant == "tiny" and not spec.tiny:
        raise SpecError(f"{spec.path}: no 'tiny' section to build a test model from")
    wrappers = _registry()
    if spec.wrapper not in wrappers:
        raise SpecError(f"{spec.path}: unknown wrapper {spec.wrapper!r}; known: "
                        f"{', '.join(wrappers)}")
    from .base import model_dtype

    if dtype is None and variant == "tiny":
        dtype = "float32"
    wrapper = wrappers[spec.wrapper].build(spec, variant, model_dtype(spec, dtype))
    if check:
        wrapper.self_check()
    return wrapper


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
