"""How a run's languages group for the means and figures: resource level, family, genus,
script and the recipe's own groupings (:mod:`probekit.languages`)."""

from __future__ import annotations

from itertools import combinations

from ..recipe_schema import AnalysisSection


def resource_levels(langs: list[str], a: AnalysisSection) -> dict[str, str]:
    """Each language's resource level: ``analysis.resource``, else probekit's levels."""
    from ..languages import resource_level

    return {lang: a.resource.get(lang) or resource_level(lang) for lang in langs}


def groupings(langs: list[str], a: AnalysisSection) -> dict[str, dict[str, str]]:
    """The ways of grouping the run's languages for group means (``lang -> group``): resource
    level, family, genus and script and ``analysis.groups`` (which may replace them), each kept
    when the run's languages fall in at least two of its groups."""
    from ..languages import family, genus, script

    registry = {name: {lang: of(lang) for lang in langs if of(lang)}
                for name, of in (("family", family), ("genus", genus), ("script", script))}
    return {name: groups for name, groups in
            {"resource": resource_levels(langs, a), **registry, **a.groups}.items()
            if len({groups[lang] for lang in langs if lang in groups}) > 1}


def distance_classes(langs: list[str]) -> int:
    """How many family distances (same genus, same family, different families) the run's
    pairs of languages span."""
    from ..languages import family_distance

    return len({family_distance(x, y) for x, y in combinations(langs, 2)} - {None})
