"""A run's self-check before extraction: the loaded model's load-time check
(:func:`probekit.selfcheck.check_wrapper`) with probes taken from the recipe's own data, and what
a batch-dependent model means for this run (stop, or go on when every example runs alone)."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ProbekitError
from ..selfcheck import BatchDependenceError, Measured, check_wrapper, describe_length
from ..wrappers import Wrapper
from .context import Run
from .inputs import Example, admit

log = logging.getLogger("probekit")

PROBE_POOL = 16  # the first examples of each modality searched for a short and a long probe


def check_enabled(run: Run) -> bool:
    """Whether the run checks batch independence: the recipe's ``model.check``, else the
    spec's ``check``."""
    given = run.recipe.model.check
    return run.spec.check if given is None else bool(given)


def runs_alone(run: Run) -> bool:
    """Whether every example runs alone (``record.batch_size: 1``)."""
    return run.recipe.record.batch_size == 1


def data_probes(examples: list[Example], wrapper: Wrapper) -> dict[str, list[Example]]:
    """Per modality, the shortest and the longest of the first :data:`PROBE_POOL` examples of
    the first language that run (admitted: audio loaded); a modality without two of different
    lengths is left to the synthetic probes."""
    probes: dict[str, list[Example]] = {}
    for modality in wrapper.modalities:
        mine = [ex for ex in examples if ex["modality"] == modality]
        mine = [ex for ex in mine if ex["lang"] == mine[0]["lang"]][:PROBE_POOL] if mine else []
        ready = []
        for ex in mine:
            try:
                ready.append(admit(ex, wrapper, wrapper.spec))
            except ProbekitError:
                continue
        ready.sort(key=lambda ex: len(ex["audio"]) if modality == "speech" else len(ex["text"]))
        if len(ready) >= 2 and describe_length(ready[0]) != describe_length(ready[-1]):
            probes[modality] = [ready[0], ready[-1]]
    return probes


def self_check(run: Run, wrapper: Wrapper, examples: list[Example], log_lines: bool = True
               ) -> Measured | None:
    """The load-time check on the run's loaded ``wrapper``, batch independence measured on the
    run's own examples (logged, with ``log_lines``). A batch-dependent model stops the run (the
    message names the layer and the fixes) unless every example runs alone, where it is a
    warning."""
    enabled = check_enabled(run)
    try:
        measured = check_wrapper(wrapper, data_probes(examples, wrapper) if enabled else None,
                                 batch=enabled)
    except BatchDependenceError as e:
        if not runs_alone(run):
            raise
        log.warning("%s; record.batch_size is 1, so every example runs alone and the run goes "
                    "on", str(e).split(" Likely fixes")[0].rstrip("."))
        return None
    if measured is None:
        log.warning("%s: batch independence not checked (check: false)", run.spec.name)
    elif log_lines:
        for line in measured.lines():
            log.info("self-check: %s", line)
    return measured


def provenance(run: Run) -> dict[str, Any]:
    """What the store's provenance says about the self-check."""
    if not check_enabled(run):
        return {"batch_independence": "not checked (check: false)"}
    return {"batch_independence": "checked before extraction on two examples per modality (the "
                                  "data's shortest and longest of its first 16 where they "
                                  "differ), alone and in one padded batch",
            "runs_alone": runs_alone(run)}
