"""Typed configuration: YAML mappings checked into dataclasses (recipes, spec options).

Every field's type is checked; an unknown key is refused with the closest known one. A field's
``metadata["doc"]`` is its one-line description and ``metadata["choices"]`` its allowed values,
if listed (shown by ``probekit options`` and in the docs' generated tables).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any

from .errors import ProbekitError, closest

MAX_DEPTH = 50          # nesting levels of a YAML document
MAX_VALUES = 100_000    # values of a document with its aliases expanded
SHOWN = 80              # characters of a value shown in a message


def shown(value: Any) -> str:
    """A bounded excerpt of ``value`` for a message (never the whole of a huge or aliased one)."""
    import reprlib

    short = reprlib.Repr()  # (keyword arguments need Python 3.12)
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = 3, 4, 4, 40, 40
    text = short.repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."


def load_yaml(text: str, path: str, error: type[ProbekitError] = ProbekitError) -> Any:
    """A YAML document read with limits: at most :data:`MAX_DEPTH` levels and
    :data:`MAX_VALUES` values with aliases expanded (a "billion laughs" of a few KB is refused
    at once, in one line); a syntax error in one line with its place."""
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise error(f"{path}: nested more than {MAX_DEPTH} levels deep; a recipe or spec "
                            "is a few levels of mappings and lists")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}: "
                    f"{getattr(e, 'problem', None) or e}".replace("\n", " ")[:300]) from None
    values = expanded_size(data)
    if values > MAX_VALUES:
        raise error(f"{path}: expands to more than {MAX_VALUES} values through YAML aliases "
                    "(&name / *name); write the values out, or use fewer aliases")
    return data


def expanded_size(data: Any) -> int:
    """How many values ``data`` holds with every shared (aliased) part counted each time it
    appears, computed once per distinct container (so a bomb is measured, not expanded; a
    container holding itself counts as endless); stops counting past :data:`MAX_VALUES`."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = MAX_VALUES + 1  # until counted: a list holding itself is endless
        children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
        total = 1
        for child in children:
            total = min(total + size(child), MAX_VALUES + 1)
        sizes[id(node)] = total
        return total

    return size(data)


def from_mapping(cls: Any, data: Any, where: str, path: str,
                 error: type[ProbekitError] = ProbekitError, skip: tuple[str, ...] = ()) -> Any:
    """``data`` as an instance of dataclass ``cls``, checking keys and types; errors name
    ``path`` and the key path from ``where``, and are of class ``error``."""
    if not isinstance(data, dict):
        raise error(f"{path}: {where}: expected a mapping of {cls.__name__} fields, "
                    f"got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name not in skip}
    values = {}
    for key, value in data.items():
        if key not in names:
            hint = closest(str(key), names)
            raise error(f"{path}: {where}.{key}: unknown key"
                        + (f"; did you mean {where}.{hint[0]}?" if hint else "")
                        + (f" (valid keys: {', '.join(sorted(names))})" if names
                           else f" ({where} takes no keys)"))
        values[key] = _check(hints[key], value, f"{where}.{key}", path, error)
    return cls(**values)


def _check(tp: Any, value: Any, where: str, path: str, error: type[ProbekitError]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where, path, error)
    if origin is typing.Union or origin is types.UnionType:  # Optional[X] and X | None
        if value is None and type(None) in args:
            return None
        return _check(next(a for a in args if a is not type(None)), value, where, path, error)
    if origin is list:
        if not isinstance(value, list):
            raise error(f"{path}: {where}: expected a list, got {shown(value)}")
        return [_check(args[0], v, f"{where}[{i}]", path, error) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise error(f"{path}: {where}: expected a mapping, got {shown(value)}")
        return {str(k): _check(args[1], v, f"{where}.{k}", path, error) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool) or not isinstance(value, tp):
        raise error(f"{path}: {where}: expected {tp.__name__}, got {shown(value)}")
    return value


def describe_fields(cls: Any) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, doc)`` of each field of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = (f.default if f.default is not dataclasses.MISSING else
                   f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        tp = hints[f.name]
        name = tp.__name__ if isinstance(tp, type) else re.sub(r"\b[\w.]+\.(\w+)", r"\1", str(tp))
        rows.append((f.name, name, default, f.metadata.get("doc", "")))
    return rows


class Key(typing.NamedTuple):
    """One key of a nested configuration (:func:`describe_keys`): its dotted name
    (``data.code_switch.ratio``), type, default, allowed values (empty: any value of the type),
    one-line doc, and whether the values are a list's items or a mapping's values (``each``)."""

    name: str
    type: str
    default: Any
    choices: tuple[Any, ...]
    doc: str
    each: bool


def describe_keys(cls: Any, prefix: str = "", skip: tuple[str, ...] = ()) -> list[Key]:
    """Every key of dataclass ``cls`` in field order, with the fields of nested dataclasses
    (sections) under dotted names; a field's ``metadata["choices"]`` are its allowed values."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    keys = []
    for name, kind, default, doc in describe_fields(cls):
        if name in skip:
            continue
        if dataclasses.is_dataclass(hints[name]):
            keys += describe_keys(hints[name], f"{prefix}{name}.")
        else:
            choices = tuple(fields[name].metadata.get("choices", ()))
            kinds = {typing.get_origin(t) for t in (hints[name], *typing.get_args(hints[name]))}
            keys.append(Key(prefix + name, kind, default, choices, doc, bool(kinds & {list, dict})))
    return keys


def as_yaml(value: Any) -> str:
    """``value`` as YAML on one line (``null``, ``true``, ``[text, speech]``)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix(
        "...").strip()


def markdown_table(keys: list[Key]) -> str:
    """``keys`` as a Markdown table: key, type, default, allowed values, meaning."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| key | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    for k in keys:
        allowed = ("each: " if k.each and k.choices else "") + ", ".join(
            f"`{as_yaml(c)}`" for c in k.choices)
        rows.append(f"| `{k.name}` | {cell(k.type)} | `{cell(as_yaml(k.default))}` | "
                    f"{cell(allowed)} | {cell(k.doc)} |")
    return "\n".join(rows) + "\n"
