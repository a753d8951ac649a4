"""The contract between probekit and a model family: :class:`Wrapper` (what a family implements
and may say about itself) and :class:`ModelInputs` (one batch made ready for the model).

Loading checkpoints lives in :mod:`probekit.wrappers.loading`, random-weight controls in
:mod:`probekit.wrappers.random_init`, and the load-time check (every block fires once on a probe
example) beside the recorder, in :func:`probekit.selfcheck.check_wrapper`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..blocks import resolve_layers
from ..errors import ProbekitError, RecordingError
from .loading import weights_source
from .random_init import log_random, randomize_weights
from .spec import ModelSpec, Options


@dataclass
class ModelInputs:
    """One batch made ready for the model by :meth:`Wrapper.inputs`: the arguments of
    :meth:`Wrapper.forward`, and which positions of each stack's outputs are real.

    ``lengths`` (``(B,)`` valid positions from the start) and ``masks`` (``(B, T)`` booleans) are
    keyed by stack, or by layer for a layer that differs from its stack; ``fills`` names the
    stacks (or layers) whose longest valid length must fill the output exactly (checked, so a
    wrong length rule fails instead of passing silently); ``views`` reshape a stack's outputs to
    ``(B, T, D)`` before pooling. The run loop
    gives all of this to the :class:`~probekit.Recorder`; wrappers never see the Recorder."""

    args: dict[str, Any]
    modality: str = ""
    lengths: dict[str, torch.Tensor] = field(default_factory=dict)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    fills: set[str] = field(default_factory=set)
    views: dict[str, Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=dict)

    def rule(self, layer: str, stack: str) -> str:
        """The key (layer, else stack) whose lengths or mask apply to ``layer``."""
        return layer if layer in self.lengths or layer in self.masks else stack


class Wrapper(ABC):
    """A model family: how a batch of examples becomes model inputs, and how the model runs.

    A family subclasses this and implements :meth:`build` (spec -> wrapper), :meth:`inputs`
    (examples -> :class:`ModelInputs`: arguments plus the valid length of every stack) and, when
    calling ``model(**args)`` is not enough, :meth:`forward`. Its options are a dataclass
    extending :class:`~probekit.wrappers.spec.Options` (``Options``), checked when a spec loads.
    It may also say which weights it needs (:meth:`required_weights`), which languages it takes
    (:meth:`check_languages`), how examples enter the model (:meth:`describe_inputs`), its
    blocks per stack (:meth:`expected_blocks`), what is known to match the original
    implementation (``FIDELITY``) and the period of its strides (``STRIDE_PERIOD``). Specs name a
    family as ``wrapper: package.module:Class`` or through the ``probekit.wrappers`` entry-point
    group (see :mod:`probekit.wrappers.registry`). ``load_model`` checks every wrapper it builds
    with :func:`probekit.selfcheck.check_wrapper` (block counts; every block fires once on a probe
    example of each modality).

    Attributes:
        model: the torch module (eval mode, no gradients).
        spec: the :class:`ModelSpec` it was built from; ``spec.options`` is an ``Options``.
        stacks: stack name -> block names in depth order.
        modalities: the input modalities it accepts.

    Class attributes:
        Options: the family's options dataclass (extends :class:`Options`).
        FIDELITY: what matches the original implementation, each claim naming its test.
        RANDOM_AT_BUILD: :meth:`build` makes variant ``random`` itself (else :meth:`randomize`
            runs after it).
        STRIDE_PERIOD: the period, in 10 ms audio frames, of the strides between the input and
            its stacks (frame stacking, strided convolutions, windows): valid lengths repeat
            their rounding pattern with it, so clips hitting every remainder modulo it exercise
            every length rule (tests/test_fidelity.py); 1 when nothing strides.
    """

    Options: type[Options] = Options
    FIDELITY: tuple[str, ...] = ()
    STRIDE_PERIOD: int = 1
    BATCH_INDEPENDENT = ("every recorded layer of an example equals the example run alone, within "
                         "1e-4 of its largest value, in padded batches of longer and shorter "
                         "inputs (tests/test_fidelity.py::test_every_layer_of_every_spec_is_the_"
                         "same_alone_and_in_a_padded_batch)")
    RANDOM_AT_BUILD = False  # build() makes variant "random" itself (else randomize() after)
    # the spec fields the family reads: checkpoint (unless the variant is tiny), tiny (for the
    # tiny variant), model_class (always); the others may be left out of its specs
    NEEDS: tuple[str, ...] = ("checkpoint",)
    measured: Any = None  # what the load-time self-check measured (probekit.selfcheck.Measured)

    def __init__(self, model: nn.Module, spec: ModelSpec, variant: str | None = None):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.spec, self.variant = spec, variant
        self.modalities = list(spec.modalities)   # modality -> stacks: spec.stacks_for
        self.stacks = self._resolve_stacks()

    # -- what a family implements ----------------------------------------------------------------
    @classmethod
    @abstractmethod
    def build(cls, spec: ModelSpec, variant: str | None = None,
              dtype: torch.dtype = torch.float32) -> Wrapper:
        """The wrapper of ``spec``: the released checkpoint (``variant=None``), its architecture
        with random weights (``"random"``), or the spec's ``tiny`` config (random weights)."""

    @abstractmethod
    def inputs(self, batch: Sequence[dict[str, Any]]) -> ModelInputs:
        """Model inputs for ``batch`` (examples of one modality, each with ``modality``, ``lang``
        and ``text`` or ``audio``) and the valid lengths of every stack that modality runs."""

    def forward(self, inputs: ModelInputs) -> Any:
        """Run the model on ``inputs`` (under ``torch.no_grad``; hooks record the blocks)."""
        return self.model(**inputs.args)

    # -- what a family may say about itself ------------------------------------------------------
    @classmethod
    def required_weights(cls, spec: ModelSpec, languages: Sequence[str] = (),
                         speech: bool = True) -> list[tuple[str, str, bool | None]]:
        """What loading the released ``spec`` needs: ``(name, where it comes from, available
        here)``; available is None when it cannot be told without the network."""
        needs: list[tuple[str, str, bool | None]] = [weights_source(spec.checkpoint,
                                                                     spec.revision)]
        if spec.processor:
            needs.append(weights_source(spec.processor))
        return needs

    @classmethod  # noqa: B027 (an optional check: by default every language passes)
    def check_languages(cls, spec: ModelSpec, languages: Sequence[str],
                        modalities: Sequence[str]) -> None:
        """Refuse (with a :class:`ProbekitError`) languages the model cannot take."""

    @classmethod
    def supported_languages(cls, spec: ModelSpec, modalities: Sequence[str]) -> set[str] | None:
        """The languages (ISO 639-3) the model takes on every one of ``modalities``, for named
        groups such as ``data.languages: all``; ``None``: any (the model does not say)."""
        return None

    @classmethod
    def describe_inputs(cls, spec: ModelSpec) -> dict[str, Any]:
        """How examples enter the model (prompts, token prefixes), from the spec alone; recorded
        in the store and part of its recipe hash."""
        return {}

    @classmethod
    def fidelity_claims(cls, spec: ModelSpec) -> tuple[str, ...]:
        """The ``FIDELITY`` claims that tests prove for ``spec``: those of a shipped spec, read
        unchanged from probekit's ``models/``; none for any other spec (its self-check measures
        what holds)."""
        return cls.FIDELITY if spec.shipped else ()

    def expected_blocks(self) -> dict[str, int]:
        """Blocks per stack as the architecture's config says (stacks it can tell)."""
        return {}

    def length_rule(self, layer: str) -> str:
        """How the valid length of ``layer``'s output is computed (for ``probekit layers``)."""
        return "-"

    @classmethod
    def skeleton(cls, spec: ModelSpec) -> nn.Module:
        """The released architecture built from its config alone on the meta device (no
        weights), for listing its layers; families that cannot say raise ProbekitError."""
        raise ProbekitError(f"the {spec.wrapper} wrapper cannot build {spec.name} without its "
                            "weights; list the tiny variant's layers instead (--variant tiny)")

    def randomize(self, seed: int) -> None:
        """Random seeded weights in place of the loaded ones (variant ``random``)."""
        fallback = randomize_weights(self.model, seed)
        log_random(self.spec.name, seed, "the model", fallback)

    # -- shared --------------------------------------------------------------------------------
    def _resolve_stacks(self) -> dict[str, list[str]]:
        return {name: resolve_layers(self.model, patterns)
                for name, patterns in self.spec.stacks.items()}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def layers(self, stacks: Sequence[str] | None = None) -> list[str]:
        """Block names of the given stacks (all by default), in stack order."""
        names = stacks or list(self.stacks)
        unknown = [s for s in names if s not in self.stacks]
        if unknown:
            raise RecordingError(f"{self.spec.name} has no stack {unknown[0]!r}; it has "
                                 f"{', '.join(self.stacks)}")
        return [layer for s in names for layer in self.stacks[s]]

    def stack_of(self, layer: str) -> str:
        return next((name for name, layers in self.stacks.items() if layer in layers), "")

    def text_tokens(self, text: str, lang: str) -> int:
        """How many tokens ``text`` makes without special tokens (checked against
        ``options.max_text_tokens`` before a text example runs)."""
        from .tokenizers import ByteTokenizer

        tokenizer = getattr(self, "tokenizer", None)
        if isinstance(tokenizer, ByteTokenizer):
            return len(tokenizer.tokens(text))
        if tokenizer is None:
            raise NotImplementedError(f"{type(self).__name__} does not say how to count tokens")
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def batch_modality(self, batch: Sequence[dict[str, Any]]) -> str:
        """The one modality of ``batch`` (an error for a mixed batch or one the model lacks)."""
        modalities = {ex["modality"] for ex in batch}
        if len(modalities) != 1:
            raise RecordingError("a batch holds one modality; split speech and text examples")
        modality = modalities.pop()
        if modality not in self.modalities:
            raise RecordingError(f"{self.spec.name} takes {' and '.join(self.modalities)}, "
                                 f"not {modality}")
        return modality
