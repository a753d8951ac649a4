"""The stages of ``probekit run``, in the order data flows through them.

A :class:`Run` is resolved once from the recipe (its spec, its data section with absolute paths,
its output folder, its process group and its control run); each stage takes it:

- :mod:`.output`: the output folder's checks, ``recipe.yaml`` and ``run.log``;
- :mod:`.inputs`: the examples, and the admission of each one (audio read, lengths checked);
- :mod:`.extract`: batches through the model into the store, with the retry policy;
- :mod:`.analyze`: the analyses (:mod:`.analyses`) of the stores into tables;
- :mod:`.figures`: the report stage's figures and the closing summary;
- :mod:`.dry_run`: what a run needs and how long it takes, without running it.
"""

from .context import Run, resolve_run

__all__ = ["Run", "resolve_run"]
