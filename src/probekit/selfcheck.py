"""The load-time self-check of a wrapped model, for the spec at hand (shipped or not).

:func:`check_wrapper` (``load_model`` runs it on every wrapper it builds): the stacks have the
architecture's block counts, one short probe example per modality makes every hooked block fire
exactly once, and :func:`batch_independence` holds. :func:`batch_independence` runs two probe
examples of different lengths per modality (from the recipe's own data where there is some)
alone and together in one padded batch, and compares every recorded layer: an example's
activations must not depend on its batch. What it measured is a :class:`Measured`, printed by dry
runs and kept in a store's provenance; over the tolerance it raises :class:`BatchDependenceError`
naming the layer, the size of the difference and the likely fixes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .batch import capture
from .errors import ProbekitError, RecordingError

# the largest difference allowed, as a fraction of the layer's largest value, by weight dtype
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-6, torch.float16: 1e-2, torch.bfloat16: 5e-2}


class BatchDependenceError(RecordingError):
    """An example's recorded layers differ between the example run alone and in a batch."""


@dataclass
class Measured:
    """What :func:`batch_independence` measured: per modality, the largest difference between an
    example alone and in a padded batch (a fraction of the layer's largest value), its layer,
    the layers compared and the probes' lengths."""

    tolerance: float
    worst: dict[str, tuple[float, str]] = field(default_factory=dict)
    layers: dict[str, int] = field(default_factory=dict)
    lengths: dict[str, list[str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # "data" (the recipe's) or "probes"

    @property
    def passed(self) -> bool:
        return all(err <= self.tolerance for err, _ in self.worst.values())

    def lines(self) -> list[str]:
        """One line per modality, in words."""
        return [f"batch independence measured now on 2 {m} examples "
                f"({' and '.join(self.lengths[m])}, "
                f"{'from the data' if self.sources[m] == 'data' else 'probes'})"
                f" alone and in one padded batch, {self.layers[m]} layers: largest difference "
                f"{err:.2g} of the layer's largest value ({layer}); tolerance {self.tolerance:g}"
                f"{'' if err <= self.tolerance else ': FAILED'}"
                for m, (err, layer) in self.worst.items()]

    def as_dict(self) -> dict[str, Any]:
        return {"tolerance": self.tolerance, "sources": self.sources, "passed": self.passed,
                "worst": {m: {"difference": err, "layer": layer}
                          for m, (err, layer) in self.worst.items()},
                "lengths": self.lengths}


def check_wrapper(wrapper: Any, probes: Mapping[str, Sequence[Any]] | None = None,
                  batch: bool = True) -> Measured | None:
    """Load-time check of a :class:`~probekit.wrappers.Wrapper` (see the module docstring); a
    :class:`RecordingError` says what is wrong and which spec to fix. ``batch``: also check
    batch independence (on ``probes``, modality -> two examples, where given); returns what it
    measured (None when not checked)."""
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
    if not batch:
        return None
    measured = batch_independence(wrapper, probes)
    if not measured.passed:
        raise BatchDependenceError(dependence_message(wrapper, measured))
    return measured


def probe_example(modality: str, seconds: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """One short example of ``modality`` (``seconds`` of noise, or a short sentence in
    English)."""
    audio = 0.05 * np.random.default_rng(seed).standard_normal(int(16000 * seconds))
    text = "probekit checks layers" if seed == 0 else \
        "probekit checks every layer of a model on a longer sentence, alone and in a batch"
    return {"id": f"probe{seed}", "lang": "eng", "modality": modality, "text": text,
            "audio": audio.astype(np.float32)}


def probe_pair(modality: str) -> list[dict[str, Any]]:
    """Two probes of ``modality`` of different lengths (1 s and 2.3 s; a short and a longer
    text), for :func:`batch_independence` where the recipe's data is not at hand."""
    return [probe_example(modality), probe_example(modality, 2.3, seed=1)]


def batch_independence(wrapper: Any,
                       probes: Mapping[str, Sequence[Any]] | None = None) -> Measured:
    """Run two examples per modality alone and together in one padded batch and measure the
    largest difference of every recorded layer (see the module docstring). A padded batch that
    fails is one :class:`RecordingError` with its cause."""
    dtype = next(wrapper.model.parameters()).dtype
    measured = Measured(TOLERANCE.get(dtype, 1e-4))
    for modality in wrapper.modalities:
        given = list((probes or {}).get(modality) or [])
        pair = given or probe_pair(modality)
        layers = wrapper.layers(wrapper.spec.stacks_for(modality))
        try:
            alone = [capture(wrapper, [ex], pool="none")[0] for ex in pair]
        except ProbekitError:
            raise
        except Exception as e:  # an example of the data that fails alone: it, not the batch,
            if not given:       # is at fault (it is skipped, with its reason, when it runs)
                raise RecordingError(batch_failure(wrapper, modality, e, alone=True)) from None
            given, pair = [], probe_pair(modality)
            alone = [capture(wrapper, [ex], pool="none")[0] for ex in pair]
        measured.sources[modality] = "data" if given else "probes"
        try:
            together, _ = capture(wrapper, pair, pool="none")
        except ProbekitError:
            raise
        except Exception as e:
            raise RecordingError(batch_failure(wrapper, modality, e)) from None
        worst = (0.0, layers[0])
        for i in range(len(pair)):
            for layer in layers:
                ref, got = alone[i][layer][0].double(), together[layer][i].double()
                if got.shape != ref.shape:
                    raise BatchDependenceError(
                        f"{wrapper.spec.name}: layer {layer} of a {modality} example has shape "
                        f"{tuple(ref.shape)} alone but {tuple(got.shape)} in a padded batch: its "
                        f"length rule is wrong; {length_hint(wrapper, layer)}")
                err = float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-6))
                worst = max(worst, (err, layer))
        measured.worst[modality] = worst
        measured.layers[modality] = len(layers)
        measured.lengths[modality] = [describe_length(ex) for ex in pair]
    return measured


def describe_length(ex: Mapping[str, Any]) -> str:
    if ex["modality"] == "speech":
        return f"{len(ex['audio']) / 16000:.1f} s"
    return f"{len(str(ex.get('text', '')))} characters"


def batch_failure(wrapper: Any, modality: str, error: BaseException, alone: bool = False) -> str:
    """One message for a padded batch (or, ``alone``, a probe example) the model cannot run:
    the cause, and the likely fix."""
    cause = (str(error).splitlines() or [""])[0][:300]
    spec = wrapper.spec
    fix = "check the spec's inputs (options) against the model's documentation"
    unpadded = getattr(wrapper, "extractor_options", {}).get("padding", True) in (False, None)
    if modality == "speech" and ("padding" in str(error) or unpadded):
        fix = ("let the feature extractor pad the batch to its longest clip: "
               "options.extractor_options: {padding: true}")
    what = f"a probe {modality} example alone" if alone else \
        f"a padded batch of 2 {modality} examples"
    return (f"{spec.name}: {what} fails in the model "
            f"({type(error).__name__}: {cause}); {fix} in {spec.path}")


def length_hint(wrapper: Any, layer: str) -> str:
    stack = wrapper.stack_of(layer)
    if hasattr(wrapper.spec.options, "lengths"):
        return (f"fix options.lengths.{stack} in {wrapper.spec.path} (rule input, decoder or "
                "model; `probekit options hf` explains them)")
    return f"the {wrapper.spec.wrapper} wrapper's inputs() gives the wrong lengths for {stack}"


def dependence_message(wrapper: Any, measured: Measured) -> str:
    """What differs, by how much, and the likely fixes, for a run that would record
    batch-dependent activations."""
    spec = wrapper.spec
    modality, (err, layer) = max(measured.worst.items(), key=lambda kv: kv[1][0])
    fixes = []
    opts = spec.options
    grouped = any(isinstance(m, torch.nn.GroupNorm) for m in wrapper.model.modules())
    if grouped:
        fixes.append("the model normalises over time (GroupNorm, as wav2vec2-base's front end "
                     "does), so padding changes every frame and no mask undoes it: run examples "
                     "alone with record.batch_size: 1 in the recipe (slower, exact)")
    elif modality == "speech" and getattr(opts, "pass_attention_mask", True) is False:
        fixes.append("options.pass_attention_mask: true, if the model takes the extractor's "
                     "attention mask (wav2vec2, HuBERT, WavLM with layer-norm front ends)")
    if hasattr(opts, "lengths") and wrapper.stack_of(layer) not in opts.lengths:
        fixes.append(f"a length rule for the stack: options.lengths: {{{wrapper.stack_of(layer)}:"
                     " {rule: input}}")
    if not grouped:
        fixes.append("or record.batch_size: 1 in the recipe, which runs every example alone "
                     "(slower, exact)")
    return (f"{spec.name}: layer {layer} of a {modality} example differs by {err:.1%} of its "
            f"largest value between the example run alone and in a padded batch "
            f"({' and '.join(measured.lengths[modality])}); the tolerance is "
            f"{measured.tolerance:g}, so its activations would depend on the batch. Likely "
            f"fixes, in {spec.path}: " + "; ".join(fixes) + ". (check: false in the spec, or "
            "model.check: false in the recipe, skips this check.)")
