"""Which modules are blocks: find every block list, and resolve layer patterns to module paths.

A *layer name* is a module path as given by ``model.named_modules()``, e.g.
``speech_encoder.encoder.layers.3``. For a block list (an ``nn.ModuleList`` of repeated blocks) the
last segment is the block's index in that list, counted from 0: ``layers.3`` is the output of the
fourth block, which for transformers models equals ``output_hidden_states[4]`` (``hidden_states[0]``
is the embedding output; the last entry of ``hidden_states`` is usually taken *after* the final
layer norm and so differs from the last block's output).

Patterns (any mix, in a list):
- an exact module path: ``"text_encoder.layers.0"``;
- a glob: ``*`` matches within one path segment, ``**`` across segments, ``?`` one character,
  ``[..]`` a character set: ``"text_encoder.layers.*"``;
- a regular expression with the prefix ``re:``, matched against the whole path:
  ``"re:.*layers\\.(0|5)"``;
- a callable ``f(name, module) -> bool`` (``module`` is None where names alone are matched).

A string pattern ending in ``:input`` selects the *input* of the matched modules instead of their
output (e.g. ``"speech_encoder.adapter:input"``: what enters the length adaptor); such layers are
named ``<module path>:input``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import torch.nn as nn

from .errors import LayerSelectionError, closest

LayerTest = Callable[[str, nn.Module | None], bool]  # None: a name without its module
Pattern = str | LayerTest
INPUT = ":input"

_LEAF_TYPES = (nn.Linear, nn.Embedding, nn.LayerNorm, nn.Dropout, nn.Identity,
               nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.GroupNorm)


def block_lists(model: nn.Module) -> dict[str, list[str]]:
    """Every list of repeated blocks in ``model``: list path -> its block paths, in order.

    A block list is an ``nn.ModuleList`` whose children all have one class that is not a plain
    layer (Linear, Conv, norm, ...). Lists nested inside a block already found are not reported.
    """
    found: dict[str, list[str]] = {}
    for path, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if any(path.startswith(p + ".") for p in found):
            continue
        kinds = {type(child) for child in module}
        if len(kinds) != 1 or issubclass(next(iter(kinds)), _LEAF_TYPES):
            continue
        found[path] = [f"{path}.{i}" if path else str(i) for i in range(len(module))]
    return found


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob where ``*`` stays within a segment and ``**`` crosses segments."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append(r"[^.]*")
        elif c == "?":
            out.append(r"[^.]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def matcher(pattern: Pattern) -> LayerTest:
    """A predicate ``f(name, module)`` for one pattern (path, glob, ``re:`` regex or callable)."""
    if callable(pattern):
        return pattern
    if not isinstance(pattern, str) or not pattern:
        raise LayerSelectionError(
            f"layer pattern {pattern!r} is not a module path, glob, 're:' regex or callable")
    if pattern.startswith("re:"):
        try:
            rx = re.compile(pattern[3:])
        except re.error as e:
            raise LayerSelectionError(
                f"layer pattern {pattern!r} is not a valid regex: {e}") from None
        return lambda name, _m: rx.fullmatch(name) is not None
    if any(ch in pattern for ch in "*?["):
        rx = glob_to_regex(pattern)
        return lambda name, _m: rx.match(name) is not None
    return lambda name, _m: name == pattern


def stack_layers(patterns: Sequence[Pattern], layers: Sequence[str]) -> list[str]:
    """The names in ``layers`` that match any of a stack's ``patterns``, in the order given."""
    match = [matcher(p) for p in patterns]
    return [name for name in layers if any(m(name, None) for m in match)]


def resolve_layers(model: nn.Module,
                   layers: Pattern | Sequence[Pattern] | None = None) -> list[str]:
    """Module paths selected by ``layers``, in the model's registration order, without repeats.

    ``None`` selects every block of every block list (:func:`block_lists`). A pattern that matches
    nothing raises :class:`LayerSelectionError` naming the closest real module paths.
    """
    modules = dict(model.named_modules())
    modules.pop("", None)
    if layers is None:
        names = [b for blocks in block_lists(model).values() for b in blocks]
        if not names:
            raise LayerSelectionError(
                f"{type(model).__name__} has no block list (nn.ModuleList of repeated blocks); "
                "pass layers=[...] with module paths or patterns")
        return names
    patterns: Iterable[Pattern] = ([layers] if isinstance(layers, str) or callable(layers)
                                   else layers)
    chosen: set[str] = set()
    inputs: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, str) and pattern.endswith(INPUT):
            inputs.update(resolve_layers(model, [pattern[:-len(INPUT)]]))
            continue
        match = matcher(pattern)
        hits = [name for name, mod in modules.items() if match(name, mod)]
        if not hits:
            shown = (pattern if isinstance(pattern, str)
                     else getattr(pattern, "__name__", repr(pattern)))
            hint = closest(str(shown).removeprefix("re:"), modules)
            where = f"; closest module paths: {', '.join(hint)}" if hint else ""
            raise LayerSelectionError(
                f"layer pattern {shown!r} matches no module of {type(model).__name__}{where}. "
                "Globs use '*' within one path segment and '**' across segments; "
                "probekit.block_lists(model) lists the model's block lists")
        chosen.update(hits)
    out: list[str] = []
    for name in modules:
        if name in inputs:
            out.append(name + INPUT)
        if name in chosen:
            out.append(name)
    return out


def module_path(layer: str) -> str:
    """The module path of a layer name (``"a.b:input"`` -> ``"a.b"``)."""
    return layer[:-len(INPUT)] if layer.endswith(INPUT) else layer
