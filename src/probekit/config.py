"""Typed configuration: YAML mappings checked into dataclasses (recipes, spec options).

Every field's type is checked; an unknown key is refused with the closest known one. A field's
``metadata["doc"]`` is its one-line description (shown in errors and listings).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any

from .errors import ProbekitError, closest


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
                        + f" (valid keys: {', '.join(sorted(names))})")
        values[key] = _check(hints[key], value, f"{where}.{key}", path, error)
    return cls(**values)


def _check(tp: Any, value: Any, where: str, path: str, error: type[ProbekitError]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where, path, error)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        return _check(next(a for a in args if a is not type(None)), value, where, path, error)
    if origin is list:
        if not isinstance(value, list):
            raise error(f"{path}: {where}: expected a list, got {value!r}")
        return [_check(args[0], v, f"{where}[{i}]", path, error) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise error(f"{path}: {where}: expected a mapping, got {value!r}")
        return {str(k): _check(args[1], v, f"{where}.{k}", path, error) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool) or not isinstance(value, tp):
        raise error(f"{path}: {where}: expected {tp.__name__}, got {value!r}")
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
