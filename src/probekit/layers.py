"""``python -m probekit.layers SPEC [--variant tiny]``: every hook point of a model spec, with its
stack, index, output shape (from one small forward pass) and length rule."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .errors import ProbekitError


def describe(spec: str, variant: str | None) -> list[tuple[str, int, str, str, str]]:
    from .wrappers import load_model

    wrapper = load_model(spec, variant=variant)
    rows = []
    shapes: dict[str, str] = {}
    for modality in wrapper.modalities:
        example = {"id": "probe", "lang": "eng", "modality": modality, "text": "probekit layers",
                   "audio": np.random.default_rng(0).standard_normal(16000).astype(np.float32)}
        wrapper.prepare([example])
        with wrapper.recorder(pool="none") as rec:
            wrapper.run([example], rec)
        for name in rec.names:
            shapes.setdefault(name, f"{modality}: {tuple(rec[name][0].shape)}")
    for stack, layers in wrapper.stacks.items():
        for i, name in enumerate(layers):
            rows.append((stack, i, name, shapes.get(name, "did not run"),
                         wrapper.length_rule(name)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m probekit.layers", description=__doc__)
    ap.add_argument("spec", help="a name in models/ or a YAML path")
    ap.add_argument("--variant", choices=["tiny"], default=None,
                    help="build the spec's tiny random model (offline)")
    args = ap.parse_args(argv)
    try:
        rows = describe(args.spec, args.variant)
    except ProbekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'stack':16s} {'#':>3s}  {'layer':44s} {'output (one example)':28s} lengths")
    for stack, i, name, shape, rule in rows:
        print(f"{stack:16s} {i:3d}  {name:44s} {shape:28s} {rule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
