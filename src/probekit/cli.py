"""The ``probekit`` command: one entry point for the command-line tools.

``probekit run RECIPE ...``       run a recipe (``python -m probekit.run``)
``probekit dry-run RECIPE ...``   validate a recipe, list what it needs, estimate its time
``probekit layers SPEC ...``      list a model's hook points (``python -m probekit.layers``)
``probekit store verify DIR``     check a store's shards (``python -m probekit.store``)
``probekit specs``                the model specs and recipes this installation knows
``probekit options [FAMILY]``     each wrapper family's spec options: type, default, meaning
``probekit options recipe``       every recipe key: type, default, allowed values, meaning
                                 (``--markdown``: the table in recipes/README.md)

RECIPE and SPEC are a path or a name shipped with probekit (``demo``, ``seamless_m4t_v2``).
"""

from __future__ import annotations

import sys

COMMANDS = ("run", "dry-run", "layers", "store", "specs", "options")


def _specs() -> int:
    from .resources import available_recipes
    from .wrappers import available_specs

    print("model specs: " + " ".join(available_specs()))
    print("recipes:     " + " ".join(available_recipes()))
    return 0


def _recipe_options(args: list[str]) -> int:
    from .config import as_yaml, markdown_table
    from .recipe import KEYS

    if args not in ([], ["--markdown"]):
        print(f"probekit options recipe: unknown arguments {' '.join(args)} (--markdown: the "
              "keys as a Markdown table)", file=sys.stderr)
        return 2
    if args:
        print(markdown_table(list(KEYS.values())), end="")
        return 0
    section = None
    for key in KEYS.values():
        name = key.name.rsplit(".", 1)
        if len(name) == 2 and name[0] != section:
            section = name[0]
            print(f"{section}:")
        allowed = (f"; {'each ' if key.each else ''}one of "
                   f"{', '.join(as_yaml(c) for c in key.choices)}" if key.choices else "")
        print(f"{'  ' if len(name) == 2 else ''}{name[-1]} ({key.type}, default "
              f"{as_yaml(key.default)}{allowed}): {key.doc}")
    return 0


def _options(names: list[str]) -> int:
    if names[:1] == ["recipe"]:
        return _recipe_options(names[1:])
    from .config import describe_fields
    from .errors import ProbekitError
    from .wrappers import families, wrapper_class

    try:
        for family in names or list(families()):
            cls = wrapper_class(family, "probekit options")
            print(f"{family} ({cls.__module__}.{cls.__name__}):")
            for name, kind, default, doc in describe_fields(cls.Options):
                print(f"  {name} ({kind}, default {default!r}): {doc}")
    except ProbekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        from .helptext import plain
        print(plain(__doc__))
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__
        print(f"probekit {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        from .run import main as run
        return run(rest, prog="probekit run")
    if command == "dry-run":
        from .run import main as run
        return run(rest + ["--dry-run"], prog="probekit dry-run")
    if command == "layers":
        from .layers import main as layers
        return layers(rest, prog="probekit layers")
    if command == "store":
        from .store.__main__ import main as store
        return store(rest, prog="probekit store")
    if command == "specs":
        return _specs()
    if command == "options":
        return _options(rest)
    from .errors import closest
    hint = closest(command, COMMANDS)
    print(f"probekit: unknown command {command!r}"
          + (f"; did you mean {hint[0]!r}?" if hint else "")
          + f" (commands: {', '.join(COMMANDS)}; probekit --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
