"""How a run's examples are cut into batches.

Batches hold examples of one modality and one language. By default they are ``batch_size``
examples in example order. With a budget (``record.max_batch_tokens`` for text,
``record.max_batch_seconds`` for speech), the examples are sorted by length, longest first,
within windows of ``sort_window``. Each batch then takes examples while its padded size
(examples x the longest) stays within the budget and it holds at most ``batch_size``. That means
less padding and fewer wasted FLOPs. The store holds the same values whatever the batching,
because every wrapper is batch-independent (tests/test_fidelity.py).

The plan is made from every example of the run, whatever is already stored and however many
processes share it, so an example is computed in the same batch in every case.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from .data import Example

Batch = list[Example]

# Speech lengths are in seconds and text lengths in tokens. To balance processes, one second
# costs as much as 50 tokens (speech encoders run at 50 frames a second before downsampling).
FRAMES_PER_SECOND = 50.0


def example_length(ex: Example, count_tokens: Callable[[str, str], int]) -> float:
    """An example's length: seconds of audio (read from the files' headers) or tokens of
    text. ``count_tokens(text, lang)`` counts tokens; where it cannot, characters are counted.
    A clip that cannot be read counts 0 (it is refused, with its reason, when it runs)."""
    if ex["modality"] == "speech":
        return audio_seconds(ex)
    text = ex.get("text") or ""
    try:
        return float(count_tokens(text, ex.get("input_lang") or ex["lang"]))
    except NotImplementedError:
        return float(len(text))


def audio_seconds(ex: Example) -> float:
    import soundfile

    paths = ex["audio_path"]
    if isinstance(paths, str):
        paths = [paths]
    spans = ex.get("audio_spans") or [[0.0, None]] * len(paths)
    total = float(ex.get("audio_gap", 0.0)) * (len(paths) - 1)
    for path, (start, end) in zip(paths, spans, strict=False):
        try:
            seconds = soundfile.info(path).duration
        except Exception:
            return 0.0
        total += (seconds if end is None else min(end, seconds)) - start
    return max(total, 0.0)


def plan(examples: Sequence[Example], batch_size: int,
         lengths: Sequence[float] | None = None, max_tokens: int | None = None,
         max_seconds: float | None = None, sort_window: int = 1000) -> list[Batch]:
    """The run's batches (see the module's docstring). ``lengths``, one per example, are needed
    only with a budget."""
    groups: OrderedDict[tuple[str, str], list[int]] = OrderedDict()
    for i, ex in enumerate(examples):
        groups.setdefault((ex["modality"], ex["lang"]), []).append(i)
    out: list[Batch] = []
    for (modality, _), members in groups.items():
        budget = max_seconds if modality == "speech" else max_tokens
        if budget is None:
            out += [[examples[i] for i in members[k:k + batch_size]]
                    for k in range(0, len(members), batch_size)]
            continue
        if lengths is None:
            raise ValueError("a batch budget needs the examples' lengths")
        for w in range(0, len(members), sort_window):
            window = sorted(members[w:w + sort_window], key=lambda i: (-lengths[i], i))
            batch: list[int] = []
            for i in window:  # longest first: a batch's first example is its longest
                if batch and (len(batch) >= batch_size
                              or (len(batch) + 1) * lengths[batch[0]] > budget):
                    out.append([examples[j] for j in batch])
                    batch = []
                batch.append(i)
            if batch:
                out.append([examples[j] for j in batch])
    return out


def padded_cost(batch: Batch, length_of: dict[str, float]) -> float:
    """A batch's padded size in token-equivalents (seconds x :data:`FRAMES_PER_SECOND`)."""
    scale = FRAMES_PER_SECOND if batch[0]["modality"] == "speech" else 1.0
    return len(batch) * max(length_of[ex["id"]] for ex in batch) * scale
