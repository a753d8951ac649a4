"""One resolved run: the recipe, its model spec, its data section with absolute paths, where it
writes, its process group and its control run. Built once (:func:`resolve_run`) in ``main``;
every stage reads it and none resolves the recipe again."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..distributed import Group, Ranks
from ..recipe import spec_of
from ..recipe_schema import DataSection, Recipe
from ..wrappers import ModelSpec
from .inputs import data_root, resolved_data


@dataclass(frozen=True)
class Run:
    """A recipe resolved for one output folder.

    ``data`` is the recipe's data section with every path absolute; ``data_root`` the folder
    audio paths are stored relative to; ``control`` the ``random_init`` control run (the same
    recipe on random weights, writing to ``out/control``), when the recipe asks for one."""

    recipe: Recipe
    spec: ModelSpec
    data: DataSection
    data_root: Path
    out: Path
    group: Group
    control: Run | None = None

    @property
    def ranks(self) -> Ranks:
        return self.group.ranks

    @property
    def store(self) -> Path:
        return self.out / "store"

    @cached_property
    def store_hash(self) -> str:
        """What made the store's data: the data, model and record sections and how inputs
        enter the model."""
        from ..provenance import stable_hash
        from ..wrappers import describe_inputs

        return stable_hash([self.recipe.section_hash("data", "model", "record"),
                            describe_inputs(self.spec)])

    @property
    def model_label(self) -> str:
        """The spec's name (and its checkpoint's when the recipe brings its own,
        ``whisper_base:my-whisper``), with the variant for random weights (``whisper-tiny``)."""
        from ..wrappers.spec import model_label

        variant = self.recipe.model.variant
        return model_label(self.spec) + (f"-{variant}" if variant else "")

    @property
    def random_weights(self) -> bool:
        return bool(self.recipe.model.variant)

    @property
    def weights_label(self) -> str:
        """The model as captions name it: its checkpoint for real weights
        (``seamless_m4t_v2 (facebook/seamless-m4t-v2-large)``), else said to be random
        (``seamless_m4t_v2-tiny (random weights)``): never a checkpoint it did not load."""
        if self.random_weights:
            return f"{self.model_label} (random weights)"
        return f"{self.model_label} ({self.spec.checkpoint})"


def resolve_run(recipe: Recipe, out: Path | None = None, group: Group | None = None) -> Run:
    """The :class:`Run` of ``recipe`` writing to ``out`` (default ``runs/NAME``)."""
    out = out if out is not None else Path("runs") / recipe.name
    check_extra(recipe)
    group = group or Group(Ranks())
    data = resolved_data(recipe)
    run = _run(recipe, data, out, group)
    if recipe.analysis.control:
        control = control_recipe(recipe, run.spec)
        run = dataclasses.replace(run, control=_run(control, data, out / "control", group))
    return run


def check_extra(recipe: Recipe) -> None:
    """Every analysis ``analysis.extra`` names is registered (:mod:`.analyses`)."""
    from ..errors import RecipeError, closest
    from .analyses import registered

    known = [a.name for a in registered()]
    for name in recipe.analysis.extra:
        if name not in known:
            hint = closest(name, known)
            raise RecipeError(f"{recipe.path or 'recipe'}: analysis.extra.{name}: no analysis of "
                              "that name is registered" + (f"; did you mean {hint[0]!r}?"
                                                           if hint else "")
                              + " (register it with probekit.pipeline.analyses."
                              "register_analysis, or install the package that provides it)")


def _run(recipe: Recipe, data: DataSection, out: Path, group: Group) -> Run:
    return Run(recipe, spec_of(recipe), data, data_root(data), out, group)


def control_recipe(recipe: Recipe, spec: ModelSpec) -> Recipe:
    """The same recipe on the same architecture with random weights (the ``random_init``
    control): variant ``random`` (the tiny variant stays tiny), weights seeded with the spec's
    seed + ``analysis.seed`` + 1, so they differ from the tiny variant's own."""
    seed = int(spec.tiny.get("seed", 0)) + recipe.analysis.seed + 1
    overrides = dict(recipe.model.overrides)
    overrides["tiny"] = {**dict(overrides.get("tiny") or {}), "seed": seed}
    model = dataclasses.replace(recipe.model, overrides=overrides,
                                variant="tiny" if recipe.model.variant == "tiny" else "random")
    return dataclasses.replace(recipe, model=model)
