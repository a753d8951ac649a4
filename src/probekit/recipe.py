"""Recipes: a YAML file naming the data, the model, what to record, what to analyse and report.

Every error names the file, the key path and what was expected; an unknown key suggests the
closest valid one. Dotted overrides (``record.batch_size=8``) are applied before validation.
The sections, their keys and allowed values are in :mod:`probekit.recipe_schema`.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path
from typing import Any

from .config import from_mapping, load_yaml
from .errors import ProbekitError, RecipeError, closest
from .recipe_languages import data_languages, languages_of_run
from .recipe_schema import (
    ALLOWED,
    CHOICES,
    INTERVAL_ANALYSES,
    KEYS,
    LATER_DEFAULTS,
    PLACEMENT,
    AnalysisSection,
    ClaimsSection,
    CodeSwitchSection,
    ContrastSpec,
    DataSection,
    HFSection,
    LengthBinsSection,
    ModelSection,
    Recipe,
    RecordSection,
    ReportSection,
)
from .recipe_statistics import check_claims, check_statistics


def _set_dotted(data: dict[str, Any], dotted: str, where: str) -> None:
    if "=" not in dotted:
        raise RecipeError(f"override {dotted[:80]!r}: expected key.path=value, e.g. "
                          "record.batch_size=8")
    key, raw = dotted.split("=", 1)
    value = load_yaml(raw, f"override {dotted[:80]!r}", RecipeError) if raw else ""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"override {dotted[:80]!r}: {part[:40]!r} is not a section "
                              f"({where})")
    node[parts[-1]] = value


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe (syntax and types; see :func:`check_recipe`).
    ``path`` is a YAML file, or the name of a recipe shipped with probekit (``demo``)."""
    from .resources import find_recipe

    path = find_recipe(str(path))
    if not path.exists():
        raise RecipeError(f"recipe {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RecipeError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    data = load_yaml(text, str(path), RecipeError) or {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping with data, model, record, analysis, "
                          "report sections")
    for dotted in overrides or []:
        _set_dotted(data, dotted, str(path))
    section = data.get("data")
    if isinstance(section, dict) and isinstance(section.get("languages"), str):
        section["languages"] = [section["languages"]]  # languages: all
    try:
        recipe = from_mapping(Recipe, data, "recipe", str(path), RecipeError, skip=("path",))
        recipe.path = str(path)
        check_recipe(recipe)
    except RecipeError as e:
        raise _blame_override(e, str(path), overrides or []) from None
    return recipe


def _blame_override(error: RecipeError, where: str, overrides: list[str]) -> RecipeError:
    """``error`` naming the command-line override that set the key it is about (the last one:
    it wins), not the recipe file the key was not written in."""
    message = str(error)
    about = message.removeprefix(f"{where}: ").removeprefix("recipe.")
    for dotted in reversed(overrides):
        key = dotted.partition("=")[0].strip()
        if key and re.match(rf"(recipe\.)?{re.escape(key)}(?![\w])", about):
            shown = dotted if len(dotted) <= 80 else dotted[:77] + "..."
            return RecipeError(f"from override {shown} (on recipe {where}): " + about)
    return error

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_recipe(recipe: Recipe) -> None:
    """Values, paths and languages, checked before any model loads."""
    where = recipe.path or "recipe"
    for dotted, allowed in CHOICES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(recipe, section), key)
        if value not in allowed:
            raise RecipeError(f"{where}: {dotted}: {value!r} is not one of "
                              f"{', '.join(str(a) for a in allowed)}")
    if not NAME.fullmatch(recipe.name):
        raise RecipeError(f"{where}: name: {recipe.name!r} names the output folder runs/NAME; use "
                          "letters, digits, '.', '_' and '-' (no '/', not starting with '.')")
    r = recipe.record
    for key in ("batch_size", "shard_size", "sort_window", "token_stride", "max_positions",
                "max_batch_tokens", "max_batch_seconds"):
        value = getattr(r, key)
        if value is not None and (value <= 0 if key == "max_batch_seconds" else value < 1):
            raise RecipeError(f"{where}: record.{key}: "
                              + ("above 0" if key == "max_batch_seconds" else "at least 1")
                              + (", or null for none" if key.startswith("max_") else "")
                              + f"; got {value}")
    data = recipe.data
    if data.max_sentences is not None and data.max_sentences < 1:
        raise RecipeError(f"{where}: data.max_sentences: at least 1, or null for every sentence; "
                          f"got {data.max_sentences}")
    if not data.languages:
        raise RecipeError(f"{where}: data.languages: list at least one language (ISO 639-3)")
    for key in ("languages", "modalities"):
        values = getattr(data, key)
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise RecipeError(f"{where}: data.{key}: {', '.join(twice)} listed twice")
    bad = [m for m in data.modalities if m not in ALLOWED["data.modalities"]]
    if bad or not data.modalities:
        raise RecipeError(
            f"{where}: data.modalities: use text and/or speech, got {data.modalities}")
    if data.source != "fleurs":
        if not data.path:
            raise RecipeError(f"{where}: data.path: the {data.source} source needs a path"
                              + (" (a hub id, or a save_to_disk folder)" if data.source == "hf"
                                 else ""))
        full = data_path(recipe)
        if data.source == "hf":
            from .hf_source import column_map
            try:
                column_map(data.hf.columns)
            except ProbekitError as e:
                raise RecipeError(f"{where}: {e}") from None
        elif not full.exists():
            raise RecipeError(f"{where}: data.path: {full} does not exist")
        if data.source == "fleurs_local" and not full.is_dir():
            raise RecipeError(f"{where}: data.path: {full} is not a folder; fleurs_local reads a "
                              "folder in FLEURS' layout (<config>/<split>.tsv, <config>/audio/)")
        if data.source == "manifest" and full.is_dir():
            raise RecipeError(f"{where}: data.path: {full} is a folder; a manifest is a .tsv or "
                              ".jsonl file (use source: fleurs_local for a FLEURS folder)")
    if not recipe.model.spec:
        raise RecipeError(f"{where}: model.spec: name a spec in models/ (e.g. seamless_m4t_v2)")
    from .wrappers import SpecError
    try:
        spec = spec_of(recipe)
    except SpecError as e:
        raise RecipeError(f"{where}: model: {e}") from None
    unsupported = [m for m in data.modalities if m not in spec.modalities]
    if unsupported:
        raise RecipeError(f"{where}: data.modalities: {spec.name} takes "
                          f"{' and '.join(spec.modalities)}, not {' '.join(unsupported)}")
    if recipe.record.stacks:
        unknown = [s for s in recipe.record.stacks if s not in spec.stacks]
        if unknown:
            raise RecipeError(f"{where}: record.stacks: {spec.name} has no stack {unknown[0]!r}; "
                              f"it has {', '.join(spec.stacks)}")
    try:
        where_data = data_path(recipe) if data.path else None
        data.languages = languages_of_run(recipe, spec, data_languages(data, where_data))
    except ProbekitError as e:
        raise RecipeError(f"{where}: data.languages: {e}") from None
    _check_inputs(recipe, spec, where)
    a = recipe.analysis
    check_statistics(a, where)
    for pair in a.cross_modal:
        if len(pair) != 2 or any(s not in spec.stacks for s in pair):
            raise RecipeError(f"{where}: analysis.cross_modal: each entry is [speech stack, text "
                              f"stack] from {', '.join(spec.stacks)}; got {pair}")
        for stack, modality in zip(pair, ("speech", "text"), strict=True):
            if stack not in spec.stacks_for(modality) or modality not in data.modalities:
                raise RecipeError(
                    f"{where}: analysis.cross_modal: {pair} needs {stack!r} run on {modality}, "
                    f"but " + (f"data.modalities has no {modality}" if modality not in
                               data.modalities else f"{spec.name}'s {modality} inputs run "
                               f"through {', '.join(spec.stacks_for(modality))} only")
                    + f" (modalities in {spec.path})")
    for stack in a.cross_lingual:
        if stack not in spec.stacks:
            hint = closest(stack, spec.stacks)
            raise RecipeError(f"{where}: analysis.cross_lingual: {spec.name} has no stack {stack!r}"
                              + (f"; did you mean {hint[0]!r}?" if hint else "")
                              + f" (stacks: {', '.join(spec.stacks)})")
        if not set(spec.modalities_of(stack)) & set(data.modalities):
            raise RecipeError(f"{where}: analysis.cross_lingual: {stack!r} runs on "
                              f"{' and '.join(spec.modalities_of(stack))} inputs only, and "
                              f"data.modalities is {data.modalities}")
    from .blocks import matcher
    patterns = [matcher(p) for ps in spec.stacks.values() for p in ps]
    points = dict(a.adaptation_points)
    if a.adaptation_text_layer:
        points["adaptation_text_layer"] = a.adaptation_text_layer
    for label, layer in points.items():
        if not any(m(layer, None) for m in patterns):
            raise RecipeError(f"{where}: analysis.adaptation_points.{label}: {layer!r} is in no "
                              f"stack of {spec.name}; give a layer name such as "
                              f"{spec.stacks[next(iter(spec.stacks))][0]!r}")
    levels = {k: v for k, v in a.resource.items() if v not in ALLOWED["analysis.resource"]}
    if levels:
        raise RecipeError(f"{where}: analysis.resource: levels are 'high' or 'low'; got {levels}")
    for name, groups in a.groups.items():
        if name == "resource" or not name.isidentifier():
            raise RecipeError(f"{where}: analysis.groups.{name}: a grouping's name is a word "
                              "other than 'resource' (set resource levels in analysis.resource)")
        from .languages import REGISTRY

        unknown = sorted(set(groups) - set(recipe.data.languages) - set(REGISTRY))
        if unknown:  # languages known but not in this run are left out (overrides may narrow)
            hint = closest(unknown[0], [*recipe.data.languages, *REGISTRY])
            raise RecipeError(f"{where}: analysis.groups.{name}: unknown language "
                              f"{unknown[0]!r}" + (f"; did you mean {hint[0]}?" if hint else ""))
        if len(set(groups.values())) < 2:
            raise RecipeError(f"{where}: analysis.groups.{name}: give at least two groups, "
                              "e.g. {eng: Indo-European, swh: Niger-Congo}")
    check_claims(a, data.languages, where)


def _check_inputs(recipe: Recipe, spec: Any, where: str) -> None:
    """Paragraphs, code switching and length bins."""
    d, a = recipe.data, recipe.analysis
    if d.group_sentences < 1:
        raise RecipeError(f"{where}: data.group_sentences: 1 (sentences) or more (paragraphs of "
                          f"that many consecutive sentences); got {d.group_sentences}")
    if d.group_silence < 0:
        raise RecipeError(f"{where}: data.group_silence: seconds of silence between a "
                          f"paragraph's clips, 0 or more; got {d.group_silence}")
    cs = d.code_switch
    for key in ("documents", "code_switch.audio", "code_switch.alignments"):
        value = getattr(cs, key.split(".")[1]) if "." in key else getattr(d, key)
        if value and not resolve_path(recipe, value).is_file():
            raise RecipeError(f"{where}: data.{key}: {resolve_path(recipe, value)} does not exist")
    if cs.boundary not in ALLOWED["data.code_switch.boundary"]:
        raise RecipeError(f"{where}: data.code_switch.boundary: {cs.boundary!r} is not one of "
                          "word, clause")
    if not 0 < cs.ratio < 1:
        raise RecipeError(f"{where}: data.code_switch.ratio: the share of a sentence in the "
                          f"first language, in (0, 1); got {cs.ratio}")
    if cs.audio and cs.alignments:
        raise RecipeError(f"{where}: data.code_switch: give audio (recordings) or alignments "
                          "(word times to cut clips), not both")
    for pair in cs.pairs:
        if len(pair) != 2 or pair[0] == pair[1] or any(x not in d.languages for x in pair):
            raise RecipeError(f"{where}: data.code_switch.pairs: each entry is [first language, "
                              f"second language], two of data.languages ({' '.join(d.languages)})"
                              f"; got {pair}")
    if a.code_switched and not cs.pairs:
        raise RecipeError(f"{where}: analysis.code_switched: data.code_switch.pairs names no "
                          "pair of languages to mix, e.g. [[eng, fra]]")
    for stack in a.code_switched:
        if stack not in spec.stacks:
            hint = closest(stack, spec.stacks)
            raise RecipeError(f"{where}: analysis.code_switched: {spec.name} has no stack "
                              f"{stack!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                              + f" (stacks: {', '.join(spec.stacks)})")
    b = a.length_bins
    if b.by not in ALLOWED["analysis.length_bins.by"]:
        raise RecipeError(f"{where}: analysis.length_bins.by: {b.by!r} is not one of seconds "
                          "(speech duration), tokens, characters")
    if b.by == "seconds" and "speech" not in d.modalities:
        raise RecipeError(f"{where}: analysis.length_bins.by: seconds measures speech, and "
                          "data.modalities has none; use tokens or characters")
    if b.edges and (len(b.edges) < 3 or any(y <= x for x, y in pairwise(b.edges))):
        raise RecipeError(f"{where}: analysis.length_bins.edges: at least 3 increasing edges "
                          f"(2 bins), e.g. [0, 5, 10, .inf]; got {b.edges}")
    if not b.edges and b.quantiles < 2:
        raise RecipeError(f"{where}: analysis.length_bins.quantiles: at least 2 bins; got "
                          f"{b.quantiles}")
    if b.n is not None and b.n < 5:
        raise RecipeError(f"{where}: analysis.length_bins.n: at least 5 sentences per bin; got "
                          f"{b.n}")


def spec_of(recipe: Recipe) -> Any:
    """The recipe's model spec with its overrides; a spec given as a YAML path is relative to
    the recipe's folder, as ``data.path`` is."""
    from .wrappers import load_spec

    spec = recipe.model.spec
    if Path(spec).suffix in (".yaml", ".yml"):
        spec = str(resolve_path(recipe, spec))
    overrides = dict(recipe.model.overrides)
    if recipe.model.checkpoint:
        checkpoint = recipe.model.checkpoint
        here, beside = Path(checkpoint).expanduser(), resolve_path(recipe, checkpoint)
        overrides["checkpoint"] = (str(here.resolve()) if here.exists() else
                                   str(beside) if beside.exists() else checkpoint)
    return load_spec(spec, **overrides)


def resolve_path(recipe: Recipe, value: str) -> Path:
    """A path from a recipe, relative to the recipe file's folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() or not recipe.path else Path(recipe.path).parent / p


def data_path(recipe: Recipe) -> Path:
    """``data.path`` resolved: ``demo`` (with ``source: manifest``) is the shipped demo set
    (:func:`~probekit.resources.demo_manifest`), any other path relative to the recipe."""
    from .resources import demo_manifest

    d = recipe.data
    if d.source == "manifest" and d.path == "demo":
        return demo_manifest()
    full = resolve_path(recipe, str(d.path))
    if d.source == "hf" and not full.exists():
        return Path(str(d.path))  # a hub id
    return full


__all__ = ["ALLOWED", "CHOICES", "INTERVAL_ANALYSES", "KEYS", "LATER_DEFAULTS", "PLACEMENT",
           "AnalysisSection", "ClaimsSection", "CodeSwitchSection", "ContrastSpec", "DataSection",
           "HFSection",
           "LengthBinsSection", "ModelSection", "Recipe", "RecipeError", "RecordSection",
           "ReportSection", "check_recipe", "data_path", "load_recipe", "resolve_path", "spec_of"]
