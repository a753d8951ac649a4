"""The rows analysis produces, as typed records: what the Comparer returns for a pair of views
(:class:`ComparerRow`), a tidy similarity row of an analysis (:class:`SimilarityRow`, a line of
``results/similarities.csv``) and a mean over languages (:class:`GroupMeanRow`, a line of
``results/group_means.csv``). Rows stay plain dicts (tables are made from them as they are);
these types say which columns they carry."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypedDict


class Scores(TypedDict):
    """A similarity and how it was computed (every column NaN or empty where not computed)."""
    measure: str
    measure_options: str          # the measure's options where not its defaults: "sigma=0.5"
    score: float
    n: int                        # paired examples
    kx: float                     # directions kept of each view (SVCCA, PWCCA)
    ky: float
    zscore: bool | str            # views z-scored: True, False, "a only", "b only"
    dtype: str
    variance: float               # the truncation rule (basis measures)
    k: float
    chance: float                 # the permutation null's mean and standard deviation
    chance_std: float
    adjusted: float               # (score - chance) / (1 - chance)
    z: float                      # (score - chance) / chance_std: descriptive
    p_perm: float                 # (1 + #(null >= score)) / (1 + n_perm)
    ci_low: float                 # score +- z ci_sd (see stats.ESTIMAND)
    ci_high: float
    ci_sd: float
    adjusted_ci_low: float
    adjusted_ci_high: float
    ci_level: float
    ci_method: str
    n_perm: int
    n_boot: int
    seed: int
    row_seed: int                 # its chance level's permutations
    draw_seed: int                # its interval's subsets: the pair's, shared by its measures
    flags: str                    # ";"-joined: large_k, constant_view, outlier_feature


class ComparerRow(Scores):
    """A :class:`Scores` row of views ``a`` and ``b`` (their keys)."""
    a: Hashable
    b: Hashable


class _Where(TypedDict):
    analysis: str                 # cross_modal | cross_lingual | code_switched | ...
    stack: str
    depth: int
    rel_depth: float
    layer_a: str
    layer_b: str
    lang_a: str
    lang_b: str
    modality_a: str
    modality_b: str


class _Control(TypedDict, total=False):
    control: str                  # the control's name (random_init)
    control_score: float
    control_chance: float
    control_adjusted: float


class SimilarityRow(_Where, Scores, _Control):
    """One comparison of an analysis: where (analysis, stack, depth, layers, languages,
    modalities), the scores, and the control's scores when the run has one."""


class GroupMeanRow(TypedDict):
    """The mean chance-adjusted score of a group of languages, with its delete-one-language
    jackknife interval."""
    analysis: str
    stack: str
    modality: str                 # "speech", "text" or "speech~text"
    measure: str
    depth: int
    grouping: str                 # resource, family, genus, script, family_distance, ...
    group: str
    n_langs: int
    n_rows: int
    adjusted: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    score: float
    chance: float
    control_adjusted: float
