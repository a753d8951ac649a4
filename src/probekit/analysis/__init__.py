"""Similarity of layer representations: SVCCA and friends, chance levels, grids.

Analysis reads arrays (from a store or anywhere); it never imports the recorder or a model.
"""

from .basis import AnalysisError, Basis, decompose
from .measures import (MEASURES, Similarity, linear_cka, paired_cosine, pwcca, rbf_cka,
                       retrieval_accuracy, similarity, svcca)
from .stats import bootstrap, permutation_null, svcca_bootstrap, svcca_null

__all__ = ["AnalysisError", "Basis", "MEASURES", "Similarity", "bootstrap", "decompose",
           "linear_cka", "paired_cosine", "permutation_null", "pwcca", "rbf_cka",
           "retrieval_accuracy", "similarity", "svcca", "svcca_bootstrap", "svcca_null"]
