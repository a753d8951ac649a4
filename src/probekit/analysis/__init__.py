"""Similarity of layer representations: SVCCA and friends, chance levels, grids.

Analysis reads arrays (from a store or anywhere); it never imports the recorder or a model.
"""

from .basis import AnalysisError, Basis, decompose
from .measures import (MEASURES, Similarity, linear_cka, paired_cosine, pwcca, rbf_cka,
                       retrieval_accuracy, similarity, svcca)
from .grid import Comparer
from .paper import cross_lingual, cross_modal, length_adaptation, modality_gap
from .stats import bootstrap, permutation_null, svcca_bootstrap, svcca_null
from .views import PairedViews, paired_views

__all__ = ["AnalysisError", "Basis", "Comparer", "MEASURES", "PairedViews", "Similarity",
           "bootstrap", "cross_lingual", "cross_modal", "decompose", "length_adaptation",
           "linear_cka", "modality_gap", "paired_cosine", "paired_views", "permutation_null",
           "pwcca", "rbf_cka", "retrieval_accuracy", "similarity", "svcca", "svcca_bootstrap",
           "svcca_null"]
