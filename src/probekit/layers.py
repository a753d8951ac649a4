"""``probekit layers SPEC [--variant tiny] [--checkpoint PATH]``: every hook point of a model spec,
with its stack, index and width.

Without ``--variant`` the released architecture is built from its checkpoint's config alone (a
local folder, the Hugging Face cache or the hub: ``config.json`` only) on the meta device: no
weights are loaded, and widths come from the blocks' parameter shapes. ``--variant tiny`` builds
the spec's tiny random model and runs one probe example per modality, showing each block's output
shape and its valid-length rule.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch.nn as nn

from .errors import ProbekitError
from .helptext import plain

NO_RULE = "NONE: no length rule"


def block_width(block: nn.Module) -> int | None:
    """A block's output width from its parameters: the last layer norm's size, else the last
    linear layer's output features (registration order)."""
    width = None
    for module in block.modules():
        shape = getattr(module, "normalized_shape", None)
        if shape:
            width = int(shape[-1])
        elif isinstance(module, nn.Linear) and not any(
                isinstance(m, nn.LayerNorm) for m in block.modules()):
            width = module.out_features
    return width


def describe_skeleton(spec: Any) -> list[tuple[str, int, str, str, str]]:
    """Rows (stack, index, layer, width, parameters) of the released architecture, weightless."""
    from .blocks import resolve_layers
    from .wrappers import wrapper_class

    model = wrapper_class(spec.wrapper, spec.path).skeleton(spec)
    rows = []
    for stack, patterns in spec.stacks.items():
        for i, name in enumerate(resolve_layers(model, patterns)):
            block = model.get_submodule(name.split(":")[0])
            width = block_width(block)
            params = sum(p.numel() for p in block.parameters())
            rows.append((stack, i, name, f"width {width}" if width else "-",
                         f"{params / 1e6:.1f}M parameters"))
    return rows


def checkpoint_sizes(spec: Any) -> dict[str, list[int]]:
    """stack -> [blocks, width] of the checkpoint the spec names, from its config alone
    (:meth:`~probekit.wrappers.Wrapper.skeleton`); stacks whose width cannot be told are left
    out. Raises what the skeleton raises (offline, no config, a family that cannot say)."""
    rows = describe_skeleton(spec)
    sizes: dict[str, list[int]] = {}
    for stack in spec.stacks:
        mine = [width for s, _, _, width, _ in rows if s == stack]
        widths = {w for w in mine if w != "-"}
        if mine and len(widths) == 1:
            sizes[stack] = [len(mine), int(widths.pop().removeprefix("width "))]
    return sizes


def describe_tiny(spec: Any) -> list[tuple[str, int, str, str, str]]:
    """Rows (stack, index, layer, output shape, length rule) of the tiny variant, from a probe."""
    from .batch import capture
    from .selfcheck import probe_example
    from .wrappers import load_model

    wrapper = load_model(spec, variant="tiny", check=False)
    shapes: dict[str, str] = {}
    unruled: set[str] = set()  # sequences whose valid lengths the wrapper does not give
    for modality in wrapper.modalities:
        rec, inputs = capture(wrapper, [probe_example(modality)], pool="none")
        for name in rec.names:
            shapes.setdefault(name, f"{modality}: {tuple(rec[name][0].shape)}")
            rule = inputs.rule(name, wrapper.stack_of(name))
            if rec[name][0].dim() == 2 and rule not in inputs.lengths | inputs.masks:
                unruled.add(name)
    return [(stack, i, name, shapes.get(name, "did not run"),
             NO_RULE if name in unruled else wrapper.length_rule(name))
            for stack, layers in wrapper.stacks.items() for i, name in enumerate(layers)]


def main(argv: list[str] | None = None, prog: str = "python -m probekit.layers") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=plain(__doc__),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec", help="a spec name (probekit specs lists them) or a YAML path")
    ap.add_argument("--variant", choices=["tiny"], default=None,
                    help="build the spec's tiny random model (offline) and run a probe")
    ap.add_argument("--checkpoint", default=None,
                    help="read the config from this hub id or local folder instead of the spec's")
    ap.add_argument("--allow-code", action="store_true",
                    help="import a wrapper class that the spec names by path (module:Class)")
    args = ap.parse_args(argv)
    try:
        from .wrappers import load_spec
        from .wrappers.registry import allow_code

        if args.allow_code:
            allow_code()
        spec = load_spec(args.spec, **({"checkpoint": args.checkpoint} if args.checkpoint else {}))
        rows = describe_tiny(spec) if args.variant else describe_skeleton(spec)
    except ProbekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    head = ("output (one example)", "lengths") if args.variant else ("width", "parameters")
    print(f"{'stack':16s} {'#':>3s}  {'layer':44s} {head[0]:28s} {head[1]}")
    for stack, i, name, shape, rule in rows:
        print(f"{stack:16s} {i:3d}  {name:44s} {shape:28s} {rule}")
    if not args.variant:
        print(f"{spec.name}: {len(rows)} hook points from {spec.checkpoint}'s config; "
              "no weights loaded")
    lacking = sorted({stack for stack, _, _, _, rule in rows if rule == NO_RULE})
    if lacking:
        print(f"warning: stack(s) {', '.join(lacking)} have no length rule, so a padded batch "
              "records their padding as if it were input (and the load-time check refuses "
              "them); add one to the spec, e.g. options.lengths: "
              f"{{{lacking[0]}: {{rule: input}}}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
