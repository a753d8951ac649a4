"""Similarity of layer representations: SVCCA and friends, chance levels, intervals, grids.

Analysis reads arrays (from a store or anywhere); it never imports the recorder or a model.
"""

from .basis import AnalysisError, Basis, ConstantViewError, decompose
from .bins import LengthBin, make_bins, sentence_lengths
from .claims import CLAIMS, claims_table
from .contrast import Contrast, benjamini_hochberg, depth_weights, holm, jackknife, paired_contrast
from .grid import OUTLIER_SHARE, Comparer, LargeKError
from .means import FAMILY_DISTANCE, family_distance_means, group_means, language_mean
from .measures import (
    Similarity,
    linear_cka,
    paired_cosine,
    pwcca,
    rbf_cka,
    retrieval_accuracy,
    svcca,
)
from .paper import (
    align_depths,
    code_switched,
    code_switching,
    cross_lingual,
    cross_modal,
    length_adaptation,
    measure_agreement,
    modality_gap,
    with_control,
)
from .plan import Comparison
from .recipe_comparer import comparer_for
from .registry import MEASURES, Measure, measure, register_measure, similarity, split_measure
from .simulate import SharedViews, SpectrumMatched
from .spectra import spectrum
from .stats import (
    ESTIMAND,
    Interval,
    Null,
    adjust,
    half_sampling,
    p_perm,
    permutation_null,
    pwcca_null,
    row_seed,
    subsample_fraction,
    svcca_null,
)
from .views import PairedViews, paired_views

__all__ = ["CLAIMS", "ESTIMAND", "OUTLIER_SHARE", "Contrast", "SharedViews", "SpectrumMatched",
           "benjamini_hochberg", "claims_table", "depth_weights", "holm", "jackknife",
           "language_mean", "p_perm", "paired_contrast", "spectrum",
           "AnalysisError", "Basis", "Comparer", "Comparison", "align_depths",
           "Measure", "comparer_for", "measure", "register_measure", "split_measure",
           "FAMILY_DISTANCE", "LengthBin", "code_switched", "code_switching",
           "family_distance_means", "make_bins", "sentence_lengths",
           "ConstantViewError", "Interval", "LargeKError",
           "MEASURES", "Null", "PairedViews", "Similarity", "adjust", "cross_lingual",
           "cross_modal", "decompose", "group_means", "half_sampling", "length_adaptation",
           "linear_cka",
           "measure_agreement", "modality_gap", "paired_cosine", "paired_views",
           "permutation_null", "pwcca", "pwcca_null", "rbf_cka", "retrieval_accuracy",
           "row_seed", "similarity", "subsample_fraction", "svcca", "svcca_null", "with_control"]
