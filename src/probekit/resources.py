"""Where the shipped model specs, recipes and demo data are.

A checkout's top-level ``models/``, ``recipes/`` and ``data/`` win (edit them in place); an
installed wheel carries copies as package data under ``probekit/_resources``. ``$PROBEKIT_MODELS``
points specs elsewhere.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

KINDS = ("models", "recipes", "data")


def _checkout() -> Path | None:
    """The source checkout this module runs from (None for an installed wheel)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").exists() and (parent / "models").is_dir():
            return parent
    return None


def resource_dir(kind: str) -> Path:
    """The folder of ``kind`` (``models``, ``recipes`` or ``data``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if kind == "models" and os.environ.get("PROBEKIT_MODELS"):
        return Path(os.environ["PROBEKIT_MODELS"])
    root = _checkout()
    if root is not None:
        return root / kind
    return Path(str(resources.files("probekit") / "_resources" / kind))


def models_dir() -> Path:
    return resource_dir("models")


def available_recipes() -> list[str]:
    return sorted(p.stem for p in resource_dir("recipes").glob("*.yaml"))


def demo_manifest() -> Path:
    """The shipped demo set's manifest (100 sentences in 10 languages, text and speech), in a
    checkout or an installed wheel; recipes name it ``data.path: demo``."""
    return resource_dir("data") / "demo" / "manifest.tsv"


def find_recipe(name: str) -> Path:
    """A recipe path: ``name`` itself when it exists, else a shipped recipe of that name."""
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml") and len(path.parts) > 1:
        return path
    shipped = resource_dir("recipes") / f"{path.stem}.yaml"
    return shipped if shipped.exists() else path
