"""What can be known before extraction, checked before it starts (and by the dry run): the
sentences the data gives against what the analysis needs (at least 5; 4k for a fixed
``analysis.k``), and the audio files a manifest names."""

from __future__ import annotations

import os

from .context import Run
from .inputs import Example, examples_for

SHOWN = 3  # missing files named in a message


def sentences_for_k(k: int) -> int:
    """The fewest sentences a fixed ``k`` needs: kx + ky <= n / 2 with kx = ky = k."""
    return 4 * k


def analysis_problem(run: Run, sentences: int) -> str | None:
    """Why the analysis cannot run on ``sentences`` sentences per language (None: it can): too
    few for any similarity, or a fixed ``analysis.k`` they cannot carry."""
    from ..analysis.basis import MIN_EXAMPLES, AnalysisError
    from ..analysis.recipe_comparer import analysis_device

    a = run.recipe.analysis
    try:
        analysis_device(a.device)
    except AnalysisError as e:
        return f"{run.recipe.path}: {e}"
    if sentences and sentences < MIN_EXAMPLES:
        return (f"{run.recipe.path}: the data gives {sentences} sentences in every language and "
                f"modality; a similarity needs at least {MIN_EXAMPLES} (and hundreds for a "
                "meaningful one): add sentences (data.max_sentences) or choose other languages")
    if not a.k or a.allow_large_k or not sentences or sentences >= sentences_for_k(a.k):
        return None
    return (f"{run.recipe.path}: analysis.k={a.k} needs at least {sentences_for_k(a.k)} "
            f"sentences (kx + ky <= n/2, with kx = ky = k) and the data gives {sentences}: set "
            f"analysis.k to at most {max(1, sentences // 4)}, use more sentences, or set "
            "analysis.allow_large_k: true to go on with such rows flagged large_k")


def missing_audio(examples: list[Example]) -> list[str]:
    """The audio files that speech examples name and that are not regular files here."""
    missing: list[str] = []
    for ex in examples:
        if ex["modality"] != "speech" or "audio_path" not in ex:
            continue
        paths = ex["audio_path"]
        for path in [paths] if isinstance(paths, str) else paths:
            if not os.path.isfile(path) and path not in missing:
                missing.append(path)
    return missing


def audio_problem(examples: list[Example]) -> str | None:
    """The missing audio files in words (None: every file is here)."""
    missing = missing_audio(examples)
    if not missing:
        return None
    return (f"{len(missing)} audio file(s) named by the data are missing, e.g. "
            f"{', '.join(missing[:SHOWN])}; their examples would be skipped: restore the files "
            "or fix the paths (relative to the manifest's folder)")


def preflight(run: Run, analysis_follows: bool) -> None:
    """Before extraction: refuse a fixed ``analysis.k`` the data cannot carry when the analysis
    follows (warn when only extracting: the analysis section may change before it runs); warn
    of missing audio files (their examples are skipped, each with its reason)."""
    import logging

    from ..errors import RecipeError

    log = logging.getLogger("probekit")
    examples, report = examples_for(run.data)
    problem = analysis_problem(run, report["sentences"])
    if problem and analysis_follows:
        raise RecipeError(problem)
    for warning in (problem, audio_problem(examples)):
        if warning:
            log.warning("%s", warning)
