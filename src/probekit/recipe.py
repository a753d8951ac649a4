"""Recipes: a YAML file naming the data, the model, what to record, what to analyse and report.

Every error names the file, the key path and what was expected; an unknown key suggests the
closest valid one. Dotted overrides (``record.batch_size=8``) are applied before validation.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from .config import describe_keys, from_mapping
from .errors import ProbekitError, closest
from .provenance import stable_hash


class RecipeError(ProbekitError):
    """A recipe that cannot be used as written."""


def _doc(text: str, choices: tuple[Any, ...] = ()) -> dict[str, Any]:
    """A field's metadata: its one-line doc and, if listed, its allowed values."""
    return {"doc": text, "choices": choices} if choices else {"doc": text}


DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class CodeSwitchSection:
    """``data.code_switch``: code-switched inputs (recipes/README.md, "Code-switched inputs")."""

    pairs: list[list[str]] = field(default_factory=list, metadata=_doc(
        "[first language, second language] pairs of data.languages: each sentence starts in "
        "the first and goes on in the second."))
    ratio: float = field(default=0.5, metadata=_doc(
        "The share of the sentence in the first language, in (0, 1)."))
    boundary: str = field(default="word", metadata=_doc(
        "Where the languages switch: at a word, or at the clause boundary nearest the ratio "
        "(falls back to word per sentence).", ("word", "clause")))
    audio: str | None = field(default=None, metadata=_doc(
        "A manifest of recorded code-switched speech (rows of language a>b)."))
    alignments: str | None = field(default=None, metadata=_doc(
        "Word end times (sentence, lang, word_ends) to cut and join the clips; not with audio."))


@dataclass
class DataSection:
    """``data``: the sentences, their languages and modalities."""

    source: str = field(default="manifest", metadata=_doc(
        "Where the data comes from: a manifest (TSV or JSONL), a local copy of FLEURS, or "
        "FLEURS from the Hugging Face hub.", ("manifest", "fleurs_local", "fleurs")))
    path: str | None = field(default=None, metadata=_doc(
        "The manifest file or FLEURS folder, relative to the recipe."))
    languages: list[str] = field(default_factory=list, metadata=_doc(
        "ISO 639-3 codes, or named groups: all, paper30, family:X, genus:X, script:X, ..."))
    modalities: list[str] = field(default_factory=lambda: ["text", "speech"], metadata=_doc(
        "The inputs to record.", ("text", "speech")))
    split: str = field(default="test", metadata=_doc("The FLEURS split to read."))
    max_sentences: int | None = field(default=None, metadata=_doc(
        "At most this many sentences (null: every sentence)."))
    target_language: str | None = field(default=None, metadata=_doc(
        "The decoder's target language under teacher forcing (default: each example's own)."))
    fail_fast: bool = field(default=False, metadata=_doc(
        "Stop at the first bad example instead of skipping it (a rerun resumes)."))
    group_sentences: int = field(default=1, metadata=_doc(
        "k > 1: paragraphs of k consecutive sentences of one document instead of sentences."))
    group_silence: float = field(default=0.3, metadata=_doc(
        "Seconds of silence between a paragraph's clips."))
    documents: str | None = field(default=None, metadata=_doc(
        "A TSV mapping sentence to document (default: the manifest's document column)."))
    code_switch: CodeSwitchSection = field(default_factory=CodeSwitchSection)


@dataclass
class ModelSection:
    """``model``: the model spec, its weights and where they run."""

    spec: str = field(default="", metadata=_doc(
        "The model spec: a name in models/ (seamless_m4t_v2) or a YAML path."))
    variant: str | None = field(default=None, metadata=_doc(
        "tiny: the spec's small random test model; random: the checkpoint's architecture with "
        "random weights; null: the checkpoint.", (None, "tiny", "random")))
    dtype: str | None = field(default=None, metadata=_doc(
        "The weights' dtype, on any device (default: the spec's; float32 on a CPU).",
        (None, *DTYPES)))
    device: str | None = field(default=None, metadata=_doc(
        "auto, cpu, cuda or cuda:N (default: the spec's); under torchrun each process takes "
        "cuda:LOCAL_RANK."))
    device_map: str | None = field(default=None, metadata=_doc(
        "Spread the weights over the GPUs (accelerate), for a model larger than one GPU.",
        (None, "auto", "balanced", "balanced_low_0", "sequential")))
    quantize: str | None = field(default=None, metadata=_doc(
        "LLM weights quantized through bitsandbytes.", (None, "8bit", "4bit")))
    overrides: dict[str, Any] = field(default_factory=dict, metadata=_doc(
        "Spec fields to change for this recipe, e.g. {options: {max_seconds: 20}}."))


@dataclass
class RecordSection:
    """``record``: what is recorded and how it is stored."""

    stacks: list[str] | None = field(default=None, metadata=_doc(
        "The stacks to record (default: every stack of the spec)."))
    pool: str = field(default="mean", metadata=_doc(
        "One vector per example (the mean, first or last valid position), or none: every "
        "token.", ("mean", "first", "last", "none")))
    dtype: str = field(default="float16", metadata=_doc("The stored activations' dtype.", DTYPES))
    backend: str = field(default="hdf5", metadata=_doc(
        "The store's file format.", ("hdf5", "safetensors")))
    shard_size: int = field(default=256, metadata=_doc(
        "Examples per shard (memory holds about one)."))
    batch_size: int = field(default=8, metadata=_doc("At most this many examples per batch."))
    max_batch_tokens: int | None = field(default=None, metadata=_doc(
        "Text: at most this many padded tokens per batch (null: no budget)."))
    max_batch_seconds: float | None = field(default=None, metadata=_doc(
        "Speech: at most this many padded seconds per batch (null: no budget)."))
    sort_window: int = field(default=1000, metadata=_doc(
        "With a budget: examples sorted by length within windows of this many (of one language "
        "and modality)."))
    token_stride: int = field(default=1, metadata=_doc(
        "Pool none: keep every token_stride-th valid position."))
    max_positions: int | None = field(default=None, metadata=_doc(
        "Pool none: keep at most this many positions per example (null: all)."))


@dataclass
class LengthBinsSection:
    """``analysis.length_bins``: every analysis again per length bin (recipes/README.md)."""

    by: str | None = field(default=None, metadata=_doc(
        "A sentence's length: seconds (speech duration), tokens or characters; null: no bins.",
        (None, "seconds", "tokens", "characters")))
    quantiles: int = field(default=3, metadata=_doc(
        "Bins of equal count (unless edges are given)."))
    edges: list[float] = field(default_factory=list, metadata=_doc(
        "Explicit increasing bin edges, e.g. [0, 5, 10, .inf]."))
    n: int | None = field(default=None, metadata=_doc(
        "Sentences per bin (default: as many as the smallest bin holds)."))


@dataclass
class AnalysisSection:
    measures: list[Any] = field(default_factory=lambda: ["svcca"], metadata=_doc(
        "Similarity measures, each a name (svcca, pwcca, linear_cka, rbf_cka, paired_cosine, "
        "retrieval) or {name: options}, e.g. {rbf_cka: {sigma: 0.5}}; they share decompositions."))
    variance: float = field(default=0.99, metadata=_doc(
        "Keep the fewest directions holding this fraction of the variance (unless k is given)."))
    k: int | None = field(default=None, metadata=_doc(
        "A fixed number of kept directions (wins over variance)."))
    zscore: bool | None = field(default=None, metadata=_doc(
        "Z-score every view (true) or none (false); null: the spec's zscore stacks (LLMs); "
        "recorded per row."))
    n_perm: int = field(default=20, metadata=_doc(
        "Permutations per row: the chance level and the chance-adjusted score."))
    n_boot: int = field(default=0, metadata=_doc(
        "Half-samples per row for the interval (0: no interval)."))
    ci: float = field(default=0.95, metadata=_doc("The interval's level."))
    intervals: list[str] = field(default_factory=lambda: ["cross_modal"], metadata=_doc(
        "The analyses whose rows get an interval (cross_lingual: slow).",
        ("cross_modal", "cross_lingual")))
    seed: int = field(default=0, metadata=_doc(
        "The root of every row's own seed (and of the control's)."))
    allow_large_k: bool = field(default=False, metadata=_doc(
        "Go on (rows flagged) when kx + ky > n / 2, where chance nears 1."))
    depth_alignment: str = field(default="same_index", metadata=_doc(
        "How stacks of unequal depth are paired: refused (same_index), or by relative depth.",
        ("same_index", "relative")))
    control: str | None = field(default=None, metadata=_doc(
        "random_init: the same recipe again on random weights, beside every row.",
        (None, "random_init")))
    cross_modal: list[list[str]] = field(default_factory=list, metadata=_doc(
        "[speech stack, text stack] pairs compared on the same sentences, depth by depth."))
    cross_lingual: list[str] = field(default_factory=list, metadata=_doc(
        "Stacks in which every language is compared with every other."))
    adaptation_points: dict[str, str] = field(default_factory=dict, metadata=_doc(
        "Label -> speech layer compared with the text side (e.g. before and after an adaptor)."))
    adaptation_text_layer: str | None = field(default=None, metadata=_doc(
        "The text side of the adaptation points (default: the last layer of the first "
        "cross_modal pair's text stack)."))
    resource: dict[str, str] = field(default_factory=dict, metadata=_doc(
        "Language -> resource level (default: probekit.languages' levels).", ("high", "low")))
    groups: dict[str, dict[str, str]] = field(default_factory=dict, metadata=_doc(
        "Grouping name -> {language: group}: group means beside resource level, family, genus "
        "and script."))
    code_switched: list[str] = field(default_factory=list, metadata=_doc(
        "Stacks in which mixed inputs are compared with monolingual ones (data.code_switch)."))
    length_bins: LengthBinsSection = field(default_factory=lambda: LengthBinsSection())
    extra: dict[str, dict[str, Any]] = field(default_factory=dict, metadata=_doc(
        "Analysis name -> its options, for analyses registered by a plugin or a script "
        "(probekit.pipeline.analyses.register_analysis); each must be registered."))

    @property
    def measure_names(self) -> list[str]:
        """The measures' names, in order (an item is a name or ``{name: options}``)."""
        return [m if isinstance(m, str) else next(iter(m), "") if isinstance(m, dict) else str(m)
                for m in self.measures]

    @property
    def measure_choices(self) -> list[tuple[str, Any]]:
        """``(name, options)`` of each measure, the options as the measure's own dataclass
        instance (defaults filled in)."""
        from .analysis import measure, split_measure

        return [(name, measure(name).configure(options, f"analysis.measures[{i}].{name}",
                                               "recipe", RecipeError))
                for i, (name, options) in enumerate(map(split_measure, self.measures))]


@dataclass
class ReportSection:
    """``report``: what is made of the results."""

    figures: bool = field(default=True, metadata=_doc("Draw the figures (PNG and PDF)."))


@dataclass
class Recipe:
    """A recipe: its name and sections (``probekit options recipe`` lists every key)."""

    name: str = field(default="run", metadata=_doc(
        "The run's name: the default output folder is runs/NAME."))
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    record: RecordSection = field(default_factory=RecordSection)
    analysis: AnalysisSection = field(default_factory=AnalysisSection)
    report: ReportSection = field(default_factory=ReportSection)
    path: str | None = field(default=None, metadata=_doc(
        "The recipe file, set when it is loaded (not a key of the recipe)."))

    def section_hash(self, *sections: str) -> str:
        """Hash of what ``sections`` say about the results (``data.fail_fast`` only says when to
        stop, so a run may resume without it)."""
        content = {s: dataclasses.asdict(getattr(self, s)) for s in sections}
        content.get("data", {}).pop("fail_fast", None)
        for key in PLACEMENT:  # where the weights are, not what they compute
            content.get("model", {}).pop(key, None)
        for section, defaults in LATER_DEFAULTS.items():  # stores made before these existed
            for key, default in defaults.items():
                if content.get(section, {}).get(key, object()) == default:
                    del content[section][key]
        return stable_hash(content)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


# Keys added after recipes had hashes, at their defaults: left out of the hash, so that stores
# and results made before them stay current.
LATER_DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"group_sentences": 1, "group_silence": 0.3, "documents": None,
             "code_switch": dataclasses.asdict(CodeSwitchSection())},
    "analysis": {"code_switched": [], "length_bins": dataclasses.asdict(LengthBinsSection()),
                 "extra": {}},
    "model": {"quantize": None},
    "record": {"max_batch_tokens": None, "max_batch_seconds": None, "sort_window": 1000,
               "token_stride": 1, "max_positions": None}}
PLACEMENT = ("device", "device_map")


def _set_dotted(data: dict[str, Any], dotted: str, where: str) -> None:
    if "=" not in dotted:
        raise RecipeError(f"override {dotted!r}: expected key.path=value, e.g. record.batch_size=8")
    key, raw = dotted.split("=", 1)
    value = yaml.safe_load(raw) if raw else ""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"override {dotted!r}: {part!r} is not a section ({where})")
    node[parts[-1]] = value


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe (syntax and types; see :func:`check_recipe`).
    ``path`` is a YAML file, or the name of a recipe shipped with probekit (``demo``)."""
    from .resources import find_recipe

    path = find_recipe(str(path))
    if not path.exists():
        raise RecipeError(f"recipe {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError(f"{path}: not valid YAML{where}: "
                          f"{getattr(e, 'problem', None) or e}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping with data, model, record, analysis, "
                          "report sections")
    for dotted in overrides or []:
        _set_dotted(data, dotted, str(path))
    section = data.get("data")
    if isinstance(section, dict) and isinstance(section.get("languages"), str):
        section["languages"] = [section["languages"]]  # languages: all
    recipe = from_mapping(Recipe, data, "recipe", str(path), RecipeError, skip=("path",))
    recipe.path = str(path)
    check_recipe(recipe)
    return recipe


# Every key (``probekit options recipe``) and every allowed-value list, from the fields' metadata
# (a list's or a mapping's: those of its items); a section's own single values are checked first.
KEYS = {key.name: key for key in describe_keys(Recipe, skip=("path",))}
ALLOWED = {name: key.choices for name, key in KEYS.items() if key.choices}
CHOICES = {name: ALLOWED[name] for name, key in KEYS.items()
           if key.choices and not key.each and name.count(".") == 1}
INTERVAL_ANALYSES = ALLOWED["analysis.intervals"]
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
            raise RecipeError(f"{where}: data.path: the {data.source} source needs a path")
        full = resolve_path(recipe, data.path)
        if not full.exists():
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
    from .languages import fleurs_config
    from .wrappers import wrapper_class
    try:
        data.languages = resolve_languages(recipe, spec)
        wrapper_class(spec.wrapper, spec.path).check_languages(spec, data.languages,
                                                               data.modalities)
        if data.source in ("fleurs", "fleurs_local"):
            for lang in data.languages:
                fleurs_config(lang)
    except ProbekitError as e:
        raise RecipeError(f"{where}: data.languages: {e}") from None
    _check_inputs(recipe, spec, where)
    a = recipe.analysis
    _check_statistics(a, where)
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


def resolve_languages(recipe: Recipe, spec: Any) -> list[str]:
    """``data.languages`` with its named groups (``all``, ``paper30``, ``family:X``, ...) as
    codes: the group's languages that the model takes on every modality of the recipe and that
    the data has (a manifest's languages, a FLEURS folder's configurations); those left out are
    logged by reason. Codes listed one by one are kept (and checked as such)."""
    import logging

    from .languages import expand_languages, is_group
    from .wrappers import wrapper_class

    d = recipe.data
    if not any(is_group(e) for e in d.languages):
        return d.languages
    listed = {e for e in d.languages if not is_group(e)}
    named = [c for c in expand_languages([e for e in d.languages if is_group(e)])
             if c not in listed]
    supported = wrapper_class(spec.wrapper, spec.path).supported_languages(spec, d.modalities)
    present = data_languages(recipe)
    unsupported = [c for c in named if supported is not None and c not in supported]
    absent = [c for c in named if present is not None and c not in present
              and c not in unsupported]
    dropped = set(unsupported) | set(absent)
    out = [c for c in expand_languages(d.languages) if c not in dropped]
    log = logging.getLogger("probekit")
    log.info("data.languages: %s -> %d languages", " ".join(d.languages), len(out))
    for reason, codes in ((f"{spec.name} does not take them as {' and '.join(d.modalities)} "
                           "input", unsupported), ("the data has none of them", absent)):
        if codes:
            log.info("data.languages: %d skipped: %s: %s", len(codes), reason, " ".join(codes))
    return out


def data_languages(recipe: Recipe) -> set[str] | None:
    """The languages a manifest or a FLEURS folder holds (``None``: not known before download)."""
    from .languages import FLEURS

    d = recipe.data
    if d.source == "fleurs" or not d.path:
        return None
    full = resolve_path(recipe, d.path)
    if not full.exists():
        return None
    if d.source == "manifest":
        from .data import read_manifest
        return {str(r["lang"]) for r in read_manifest(full)}
    root = full / "data" if (full / "data").is_dir() else full
    return {code for code, config in FLEURS.items() if (root / config).is_dir()}


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


def _check_statistics(a: AnalysisSection, where: str) -> None:
    from .analysis import MEASURES, AnalysisError, split_measure

    items = []
    for i, item in enumerate(a.measures):
        try:
            items.append(split_measure(item))
        except AnalysisError as e:
            raise RecipeError(f"{where}: analysis.measures[{i}]: {e}") from None
    names = [name for name, _ in items]
    bad = [m for m in names if m not in MEASURES]
    if bad or not names:
        hint = closest(bad[0], MEASURES) if bad else []
        raise RecipeError(f"{where}: analysis.measures: "
                          + (f"unknown measure {bad[0]!r}" + (f"; did you mean {hint[0]!r}?"
                             if hint else "") if bad else "list at least one measure")
                          + f" (measures: {', '.join(MEASURES)})")
    if len(set(names)) != len(names):
        raise RecipeError(f"{where}: analysis.measures: {names} names a measure twice")
    for i, (name, options) in enumerate(items):  # unknown option: the closest; wrong type
        MEASURES[name].configure(options, f"analysis.measures[{i}].{name}", where, RecipeError)
    if a.k is not None and a.k < 1:
        raise RecipeError(f"{where}: analysis.k: kept directions must be at least 1; got {a.k}")
    if not 0 < a.variance <= 1:
        raise RecipeError(f"{where}: analysis.variance: a fraction of variance in (0, 1]; "
                          f"got {a.variance}")
    if a.n_perm < 2:
        raise RecipeError(f"{where}: analysis.n_perm: at least 2 permutations (20 or more "
                          f"recommended): chance levels and adjusted scores need them; got "
                          f"{a.n_perm}")
    if a.n_boot != 0 and a.n_boot < 2:
        raise RecipeError(f"{where}: analysis.n_boot: 0 (no intervals) or at least 2 half-samples "
                          f"(100 or more recommended); got {a.n_boot}")
    if not 0 < a.ci < 1:
        raise RecipeError(f"{where}: analysis.ci: the interval's level, in (0, 1), e.g. 0.95; "
                          f"got {a.ci}")
    bad = [x for x in a.intervals if x not in INTERVAL_ANALYSES]
    if bad:
        raise RecipeError(f"{where}: analysis.intervals: {bad[0]!r} is not one of "
                          f"{', '.join(INTERVAL_ANALYSES)}")


def spec_of(recipe: Recipe) -> Any:
    """The recipe's model spec with its overrides; a spec given as a YAML path is relative to
    the recipe's folder, as ``data.path`` is."""
    from .wrappers import load_spec

    spec = recipe.model.spec
    if Path(spec).suffix in (".yaml", ".yml"):
        spec = str(resolve_path(recipe, spec))
    return load_spec(spec, **recipe.model.overrides)


def resolve_path(recipe: Recipe, value: str) -> Path:
    """A path from a recipe, relative to the recipe file's folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() or not recipe.path else Path(recipe.path).parent / p
