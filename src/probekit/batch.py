"""One batch through a wrapped model under a :class:`Recorder`: the step between a model wrapper
and a store. The wrapper makes the inputs and says which positions are real; this function owns
the Recorder, tells it those lengths, and runs the model (the hooks leave whatever happens).

    rec, inputs = probekit.capture(wrapper, batch, pool="mean")
    rec["text_encoder.layers.3"]           # (B, D)
    inputs.lengths["text_encoder"]         # valid tokens per example

The load-time self-check that ``load_model`` runs on every wrapper it builds is in
:mod:`probekit.selfcheck`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .errors import MissingLengthsError, RecordingError
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
            try:
                wrapper.forward(inputs)
            except MissingLengthsError as e:
                raise RecordingError(no_length_rule(wrapper, e.layer)) from None
    return rec, inputs


def no_length_rule(wrapper: Any, layer: str) -> str:
    """The fix for a stack without valid lengths, in the spec's terms."""
    spec, stack = wrapper.spec, wrapper.stack_of(layer)
    if hasattr(spec.options, "lengths"):
        return (f"{spec.path}: stack {stack!r} has no length rule, so in a padded batch its real "
                f"positions cannot be told from padding; add one to the spec: "
                f"options.lengths: {{{stack}: {{rule: input}}}} (rules: input, decoder, model; "
                "`probekit options hf` explains them)")
    return (f"{spec.name}: the {spec.wrapper} wrapper gives no valid lengths for stack {stack!r} "
            f"(layer {layer}); its inputs() must set ModelInputs.lengths[{stack!r}]")
