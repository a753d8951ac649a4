"""One batch through a wrapped model under a :class:`Recorder`: the step between a model wrapper
and a store. The wrapper makes the inputs and says which positions are real; this function owns
the Recorder, tells it those lengths, and runs the model (the hooks leave whatever happens).

    rec, inputs = probekit.capture(wrapper, batch, pool="mean")
    rec["text_encoder.layers.3"]           # (B, D)
    inputs.lengths["text_encoder"]         # valid tokens per example
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .recorder import Recorder


def capture(wrapper: Any, batch: Sequence[dict[str, Any]], stacks: Sequence[str] | None = None,
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
