"""Which class a spec's ``wrapper:`` names: a built-in family, an installed plugin, or a class.

- a built-in family: ``hf``, ``seamless_m4t``, ``sonar``, ``salmonn``;
- a class by import path: ``wrapper: my_package.my_module:MyWrapper``, imported only when the
  user allows code named by specs and recipes (``--allow-code``, or ``PROBEKIT_ALLOW_CODE=1``):
  a spec or recipe is data that travels between people, and importing a module runs it;
- a plugin: an installed package that declares, in its ``pyproject.toml``::

      [project.entry-points."probekit.wrappers"]
      my_family = "my_package.my_module:MyWrapper"

  and specs name it ``wrapper: my_family``.

Every wrapper class derives from :class:`probekit.wrappers.Wrapper`.
"""

from __future__ import annotations

import functools
import importlib
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import SpecError, closest

ENTRY_POINTS = "probekit.wrappers"
ALLOW_CODE = "PROBEKIT_ALLOW_CODE"  # "1": import wrapper classes that specs name by path
BUILTIN = {"hf": "probekit.wrappers.hf:HFModel",
           "seamless_m4t": "probekit.wrappers.seamless:SeamlessM4T",
           "sonar": "probekit.wrappers.sonar:Sonar",
           "salmonn": "probekit.wrappers.salmonn:SALMONN"}


def allow_code() -> None:
    """Let specs name wrapper classes by import path in this process (and the processes it
    starts): the ``--allow-code`` flag."""
    os.environ[ALLOW_CODE] = "1"


def plugins() -> dict[str, str]:
    """Installed plugin families: name -> ``module:Class``."""
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINTS)}


def families() -> dict[str, str]:
    """Every family a spec can name: built-in, then plugins (a built-in name wins)."""
    return {**plugins(), **BUILTIN}


def wrapper_class(name: Any, where: Path | str | None = "spec") -> Any:
    """The wrapper class ``name`` stands for (see the module docstring)."""
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}: wrapper: name a wrapper family ({', '.join(families())}) "
                        "or a class as package.module:Class")
    if ":" in name and os.environ.get(ALLOW_CODE) != "1":
        raise SpecError(f"{where}: wrapper: {name[:80]!r} names a class by import path, and "
                        "importing it would run its module's code; probekit does that only when "
                        f"you allow it: pass --allow-code (or set {ALLOW_CODE}=1) if you trust "
                        "it, or install its package so that it registers the family under the "
                        f"entry-point group {ENTRY_POINTS!r} and name it by that name")
    target = name if ":" in name else families().get(name)
    if target is None:
        hint = closest(name, families())
        raise SpecError(f"{where}: wrapper: unknown wrapper {name!r}"
                        + (f"; did you mean {hint[0]!r}?" if hint else "")
                        + f" (known: {', '.join(families())}; or give a class as "
                        "package.module:Class, or install a package that registers it under "
                        f"the entry-point group {ENTRY_POINTS!r})")
    return _load(target, name, str(where))


@functools.cache
def _load(target: str, name: str, where: str) -> Any:
    from .base import Wrapper

    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SpecError(f"{where}: wrapper {name!r}: cannot import {module_name} ({e}); install "
                        "the package that provides it, or fix the module path") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise SpecError(f"{where}: wrapper {name!r}: {module_name} has no {attr!r}")
    if not (isinstance(cls, type) and issubclass(cls, Wrapper)):
        raise SpecError(f"{where}: wrapper {name!r}: {target} is not a subclass of "
                        "probekit.wrappers.Wrapper")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise SpecError(f"{where}: wrapper {name!r}: {target} does not implement "
                        f"{', '.join(missing)} (see probekit.wrappers.Wrapper)")
    return cls
