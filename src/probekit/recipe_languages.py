"""A recipe's ``data.languages`` as the run's codes: listed codes checked (ISO 639-1 codes,
unknown codes and codes the data lacks each told apart), named groups (``all``, ``paper30``,
``family:X``, ...) resolved against what the model takes and what the data holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .recipe_schema import DataSection, Recipe


def languages_of_run(recipe: Recipe, spec: Any, present: set[str] | None) -> list[str]:
    """The run's language codes (see the module docstring); ``present``: the languages the data
    holds, where known. Raises :class:`~probekit.languages.LanguageError` saying why not."""
    from .languages import LanguageError, fleurs_config, is_group, unusable_codes
    from .wrappers import wrapper_class

    data = recipe.data
    listed = [e for e in data.languages if not is_group(e)]
    why = unusable_codes(listed, present, lacking=False)  # codes nobody knows
    if why:
        raise LanguageError(why)
    languages = resolve_languages(recipe, spec, present)
    wrapper_class(spec.wrapper, spec.path).check_languages(spec, languages, data.modalities)
    why = unusable_codes(listed, present)  # then codes the data lacks
    if why:
        raise LanguageError(why)
    if data.source in ("fleurs", "fleurs_local") or "{fleurs}" in str(data.hf.config or ""):
        for lang in languages:
            fleurs_config(lang)
    return languages


def resolve_languages(recipe: Recipe, spec: Any, present: set[str] | None) -> list[str]:
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
    unsupported = [c for c in named if supported is not None and c not in supported]
    absent = [c for c in named if present is not None and c not in present
              and c not in unsupported]
    dropped = set(unsupported) | set(absent)
    out = [c for c in expand_languages(d.languages) if c not in dropped]
    if not out:
        from .languages import LanguageError
        raise LanguageError(
            f"{' '.join(d.languages)} selects no language of this run: "
            + "; ".join(f"{reason}: {' '.join(codes)}" for reason, codes in (
                (f"{spec.name} does not take", unsupported), ("the data has none of", absent))
                if codes)
            + (f" (the data has {' '.join(sorted(present))})" if present else ""))
    log = logging.getLogger("probekit")
    log.info("data.languages: %s -> %d languages", " ".join(d.languages), len(out))
    for reason, codes in ((f"{spec.name} does not take them as {' and '.join(d.modalities)} "
                           "input", unsupported), ("the data has none of them", absent)):
        if codes:
            log.info("data.languages: %d skipped: %s: %s", len(codes), reason, " ".join(codes))
    return out


def data_languages(d: DataSection, full: Path | None) -> set[str] | None:
    """The languages a manifest or a FLEURS folder (``d.path``, resolved as ``full``) holds
    (``None``: not known before download)."""
    from .languages import FLEURS

    if d.source in ("fleurs", "hf") or full is None or not full.exists():
        return None  # known once read (a hub dataset once downloaded)
    if d.source == "manifest":
        from .data import read_manifest
        return {str(r["lang"]) for r in read_manifest(full)}
    root = full / "data" if (full / "data").is_dir() else full
    return {code for code, config in FLEURS.items() if (root / config).is_dir()}
