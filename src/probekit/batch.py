"""One batch through a wrapped model under a :class:`Recorder`: the step between a model wrapper
and a store. The wrapper makes the inputs and says which positions are real; this function owns
the Recorder, tells it those lengths, and runs the model (the hooks leave whatever happens).

    rec, inputs = probekit.capture(wrapper, batch, pool="mean")
    rec["text_encoder.layers.3"]           # (B, D)
    inputs.lengths["text_encoder"]         # valid tokens per example

:func:`check_wrapper` is the load-time check that ``load_model`` runs on every wrapper it builds:
one probe example per modality through :func:`capture`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .errors import RecordingError
from .recorder import Recorder


def capture(wrapper: Any, batch: Sequence[Mapping[str, Any]], stacks: Sequence[str] | None = None,
            **options: Any) -> tuple[Recorder, Any]:
    """Record ``stacks`` (all by default) of ``wrapper`` on ``batch``. ``options`` go to the
    :class:`Recorder` (``pool``, ``dtype``, ...). Returns the Recorder (its values outlive it)
    and the wrapper's :class:`~probekit.wrappers.ModelInputs`."""
    inputs = wrapper.inputs(batch)
    with Recorder(wrapper.model, wrapper.layers(stacks), **options) as rec:
        for layer in rec.layers:
            stack = wrapper.stack_of(layer)
            if stack in inputs.views:
                rec.set_view(inputs.views[stack], [layer])
            rule = inputs.rule(layer, stack)
            if rule in inputs.masks:
                rec.set_mask(inputs.masks[rule], [layer])
            elif rule in inputs.lengths:
                rec.set_lengths(inputs.lengths[rule], [layer],
                                fills=rule in inputs.fills or stack in inputs.fills)
        with torch.no_grad():
            wrapper.forward(inputs)
    return rec, inputs


def check_wrapper(wrapper: Any) -> None:
    """Load-time check of a :class:`~probekit.wrappers.Wrapper`: its stacks have the
    architecture's block counts (:meth:`~probekit.wrappers.Wrapper.expected_blocks`), and one
    short probe example per modality makes every hooked block fire (exactly once: a repeat is an
    error) with valid lengths that fit its outputs; a :class:`RecordingError` says what is
    wrong and which spec to fix."""
    spec = wrapper.spec
    for stack, count in wrapper.expected_blocks().items():
        if len(wrapper.stacks.get(stack, [])) != count:
            raise RecordingError(
                f"{spec.name}: stack {stack!r} hooks {len(wrapper.stacks.get(stack, []))} "
                f"blocks but the architecture has {count}; fix the patterns in {spec.path}")
    for modality in wrapper.modalities:
        rec, _ = capture(wrapper, [probe_example(modality)], pool="none")
        fired = {n for n, c in rec.calls.items() if c == 1}
        expected = set(wrapper.layers(spec.stacks_for(modality)))
        silent = [n for n in wrapper.layers() if n in expected and n not in fired]
        if silent:
            raise RecordingError(
                f"{spec.name}: blocks that never ran on a probe {modality} example: "
                f"{', '.join(silent[:4])}; check the stacks and modalities in {spec.path}")
        extra = sorted(n for n in fired if n not in expected)
        if extra:
            raise RecordingError(
                f"{spec.name}: a {modality} example runs {', '.join(extra[:4])}, but "
                f"modalities.{modality} in {spec.path} does not list its stack")


def probe_example(modality: str) -> dict[str, Any]:
    """One short example of ``modality`` (1 s of noise, or a short sentence in English)."""
    import numpy as np

    audio = 0.05 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    return {"id": "probe", "lang": "eng", "modality": modality, "text": "probekit checks layers",
            "audio": audio}
