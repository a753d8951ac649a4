"""Model wrappers: ``load_model(spec)`` builds a model from a ``models/*.yaml`` spec and returns a
wrapper that turns examples into model inputs with the valid length of every recorded stack.

A new model family subclasses :class:`Wrapper` (see its docstring) and is named in a spec as
``wrapper: package.module:Class`` or registered by an installed package under the
``probekit.wrappers`` entry-point group (:mod:`probekit.wrappers.registry`).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelLoadError, SpecError
from .base import ModelInputs, Wrapper
from .loading import model_dtype
from .registry import families, wrapper_class
from .spec import ModelSpec, Options, available_specs, read_spec, respec, with_options

VARIANTS = (None, "tiny", "random")


def load_spec(spec: str | os.PathLike | ModelSpec, **overrides: Any) -> ModelSpec:
    """A spec by name (``"seamless_m4t_v2"``) or YAML path, with field overrides, its options
    typed by its family's ``Options`` class and checked (a loaded spec: overrides applied)."""
    if isinstance(spec, ModelSpec):
        return respec(spec, **overrides)
    raw = read_spec(spec, **overrides)
    cls = wrapper_class(raw.wrapper, raw.path)
    if "model_class" in cls.NEEDS and not raw.model_class:
        raise SpecError(f"{raw.path}: the {raw.wrapper} wrapper builds the model from "
                        "model_class: name its transformers class (e.g. model_class: "
                        "Wav2Vec2Model)")
    return with_options(raw, cls.Options)


def load_model(spec: str | ModelSpec, variant: str | None = None, check: bool = True,
               dtype: str | None = None, **overrides: Any) -> Wrapper:
    """Build the model of ``spec`` (a name in ``models/`` or a YAML path).

    ``variant="tiny"`` builds the spec's tiny configuration with random (seeded) weights, offline;
    otherwise the checkpoint is loaded from a local path, the cache, or the hub; ``"random"``
    keeps its architecture, tokenizer and features with random weights seeded by ``tiny.seed`` (a
    control): rebuilt from the config by families that can (hf, seamless_m4t), else reset in place
    by :meth:`Wrapper.randomize`. ``check`` runs :func:`probekit.selfcheck.check_wrapper` (block
    counts, every block fires once on a probe example, and, unless the spec says ``check:
    false``, batch independence on two probes of each modality; what it measured is kept as
    ``wrapper.measured``). ``dtype`` (float32 | float16 | bfloat16)
    sets the weights' precision on any device; without it the spec's dtype is used, in float32 on
    a CPU (and for the tiny variant)."""
    spec = load_spec(spec, **overrides)
    if variant not in VARIANTS:
        raise SpecError(f"variant must be one of {', '.join(map(str, VARIANTS))}; got {variant!r}")
    cls = wrapper_class(spec.wrapper, spec.path)
    if variant == "tiny" and "tiny" in cls.NEEDS and not spec.tiny:
        raise SpecError(f"{spec.path}: no 'tiny' section to build a test model from")
    if variant != "tiny" and "checkpoint" in cls.NEEDS and not spec.checkpoint:
        raise SpecError(f"{spec.path}: no checkpoint: name a hub id or local folder in the spec "
                        "(checkpoint: ...) or the recipe (model.checkpoint=PATH), or run the "
                        "tiny variant (model.variant=tiny)")
    if dtype is None and variant == "tiny":
        dtype = "float32"
    wrapper = cls.build(spec, variant, model_dtype(spec, dtype))
    if variant == "random" and not cls.RANDOM_AT_BUILD:
        wrapper.randomize(int(spec.tiny.get("seed", 0)))
    if check:  # beside the recorder it drives; imported here so the wrappers never import it
        from ..selfcheck import check_wrapper

        wrapper.measured = check_wrapper(wrapper, batch=spec.check)
    return wrapper


def describe_inputs(spec: ModelSpec) -> dict[str, Any]:
    """How ``spec``'s model receives examples (prompts, token prefixes); loads nothing."""
    return wrapper_class(spec.wrapper, spec.path).describe_inputs(spec)


def fidelity(spec: ModelSpec) -> tuple[str, ...]:
    """What tests prove for ``spec`` (a shipped spec, unchanged), and which test shows it;
    nothing for other specs, whose self-check measures batch independence when they load."""
    return wrapper_class(spec.wrapper, spec.path).fidelity_claims(spec)


__all__ = ["ModelInputs", "ModelLoadError", "ModelSpec", "Options", "SpecError", "Wrapper",
           "available_specs", "describe_inputs", "families", "fidelity", "load_model", "load_spec",
           "wrapper_class"]
