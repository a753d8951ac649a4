"""A recipe's sections as documented dataclasses: every key with its type, default, allowed
values and a one-line doc (``probekit options recipe`` prints them; recipes/README.md's table is
generated from them), and what a recipe's hash leaves out.

:mod:`probekit.recipe` reads, overrides and checks recipes into these classes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .choices import ALIGNMENTS, BACKENDS, CONTRAST_KINDS, DTYPES, POOLS
from .config import describe_keys
from .errors import RecipeError
from .provenance import stable_hash


def _doc(text: str, choices: tuple[Any, ...] = ()) -> dict[str, Any]:
    """A field's metadata: its one-line doc and, if listed, its allowed values."""
    return {"doc": text, "choices": choices} if choices else {"doc": text}




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
class HFSection:
    """``data.hf``: a Hugging Face dataset (``data.source: hf``; ``data.path`` is its hub id or a
    folder written by ``save_to_disk``)."""

    config: str | None = field(default=None, metadata=_doc(
        "The dataset's configuration; one per language with {lang} (ISO 639-3) or {fleurs} "
        "(FLEURS' name, e.g. en_us) in it."))
    columns: dict[str, str] = field(default_factory=dict, metadata=_doc(
        "probekit's names (sentence, lang, text, audio) -> the dataset's columns; default "
        "id, lang, text, audio."))
    revision: str | None = field(default=None, metadata=_doc(
        "The dataset's revision on the hub (a branch, tag or commit)."))


@dataclass
class DataSection:
    """``data``: the sentences, their languages and modalities."""

    source: str = field(default="manifest", metadata=_doc(
        "Where the data comes from: a manifest (TSV or JSONL), a local copy of FLEURS, "
        "FLEURS from the Hugging Face hub, or any Hugging Face dataset (data.hf).",
        ("manifest", "fleurs_local", "fleurs", "hf")))
    path: str | None = field(default=None, metadata=_doc(
        "The manifest file or FLEURS folder, relative to the recipe; demo: the shipped demo "
        "set (source manifest); hf: a hub id or a save_to_disk folder."))
    languages: list[str] = field(default_factory=list, metadata=_doc(
        "ISO 639-3 codes, or named groups: all, paper30, family:X, genus:X, script:X, ..."))
    modalities: list[str] = field(default_factory=lambda: ["text", "speech"], metadata=_doc(
        "The inputs to record.", ("text", "speech")))
    split: str = field(default="test", metadata=_doc(
        "The split to read (FLEURS, or a Hugging Face dataset)."))
    hf: HFSection = field(default_factory=HFSection)
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
    checkpoint: str | None = field(default=None, metadata=_doc(
        "Your own checkpoint in place of the spec's: a hub id or a local folder (of the spec's "
        "format: transformers, or a CTranslate2 folder for ctranslate2 specs)."))
    check: bool | None = field(default=None, metadata=_doc(
        "Check before extraction that an example's layers are the same alone and in a padded "
        "batch (default: the spec's check, true); false skips it (recorded in provenance)."))
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
        "token.", POOLS))
    dtype: str = field(default="float16", metadata=_doc("The stored activations' dtype.", DTYPES))
    backend: str = field(default="hdf5", metadata=_doc(
        "The store's file format.", BACKENDS))
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
class ClaimsSection:
    """``analysis.claims``: the paper's four findings as contrasts (results/claims.csv)."""

    enabled: bool = field(default=True, metadata=_doc(
        "Build the claims table when the rows allow it (cross_modal; cross_lingual on both "
        "stacks of a pair; two adaptation points)."))
    score: str = field(default="score", metadata=_doc(
        "The rows' column the claims compare: the raw score or the chance-adjusted score.",
        ("score", "adjusted")))
    robust_k: list[int] = field(default_factory=lambda: [10, 20, 40], metadata=_doc(
        "SVCCA at each fixed k (those with 2k <= n/2) for the robust column."))
    robust_zscored_cka: bool = field(default=True, metadata=_doc(
        "Also z-scored linear CKA for the robust column."))
    spectrum_null: bool = field(default=True, metadata=_doc(
        "Each claim again on spectrum-matched Gaussian views (spectrum_effect)."))


@dataclass
class ContrastSpec:
    """One item of ``analysis.contrasts`` (results/contrasts.csv)."""

    name: str = field(default="", metadata=_doc("The contrast's label in the table."))
    kind: str = field(default="difference", metadata=_doc(
        "difference: cross-modal at depths[0] minus depths[1]; trend: cross-modal slope over "
        "relative depth; gap: cross-lingual minus cross-modal at depths[0]; spread: "
        "cross-lingual text minus speech at depths[0]; did: (last minus first adaptation "
        "point), high- minus low-resource languages.", CONTRAST_KINDS))
    stack: str = field(default="", metadata=_doc(
        "A cross_modal pair as 'speech_stack~text_stack' (default: the first)."))
    depths: list[int] = field(default_factory=lambda: [-1, 0], metadata=_doc(
        "Depth indices (negative: from the last)."))
    lang: str | None = field(default=None, metadata=_doc(
        "One language: paired subsampling over its sentences; null: the mean over languages "
        "with a delete-one-language jackknife."))


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
    device: str = field(default="auto", metadata=_doc(
        "Where the analysis computes: auto (the GPU when there is one), cpu, cuda or cuda:N."))
    dtype: str = field(default="float64", metadata=_doc(
        "float64, or float32 (faster; scores within 1e-5 of float64, see docs/scale.md).",
        ("float64", "float32")))
    workers: int = field(default=1, metadata=_doc(
        "Processes that compute the rows (one per CPU core; under torchrun every process "
        "takes a share instead); the tables are the same as with one."))
    depth_alignment: str = field(default="same_index", metadata=_doc(
        "How stacks of unequal depth are paired: refused (same_index), or by relative depth.",
        ALIGNMENTS))
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
    claims: ClaimsSection = field(default_factory=lambda: ClaimsSection())
    contrasts: list[ContrastSpec] = field(default_factory=list, metadata=_doc(
        "Paired contrasts of the rows (kind, stack, depths, lang), Holm-adjusted together."))
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
        for section, keys in PLACES.items():  # where it computes, not what it computes
            for key in keys:
                content.get(section, {}).pop(key, None)
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
             "code_switch": dataclasses.asdict(CodeSwitchSection()),
             "hf": dataclasses.asdict(HFSection())},
    "analysis": {"code_switched": [], "length_bins": dataclasses.asdict(LengthBinsSection()),
                 "extra": {}, "dtype": "float64"},
    "model": {"quantize": None, "checkpoint": None, "check": None},
    "record": {"max_batch_tokens": None, "max_batch_seconds": None, "sort_window": 1000,
               "token_stride": 1, "max_positions": None}}
PLACEMENT = ("device", "device_map")
PLACES = {"model": PLACEMENT, "analysis": ("device", "workers")}


# Every key (``probekit options recipe``) and every allowed-value list, from the fields' metadata
# (a list's or a mapping's: those of its items); a section's own single values are checked first.
KEYS = {key.name: key for key in describe_keys(Recipe, skip=("path",))}
ALLOWED = {name: key.choices for name, key in KEYS.items() if key.choices}
CHOICES = {name: ALLOWED[name] for name, key in KEYS.items()
           if key.choices and not key.each and name.count(".") == 1}
INTERVAL_ANALYSES = ALLOWED["analysis.intervals"]
