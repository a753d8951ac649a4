"""The report stage: figures of the result tables (PNG and PDF), and the closing summary."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ProbekitError
from .context import Run
from .groups import resource_levels
from .publish import published

log = logging.getLogger("probekit")


def figure_makers(run: Run) -> list[tuple[str, Callable[[], Any]]]:
    """``(stem, make)`` for every figure of every analysis (:mod:`.analyses`) of the tables in
    ``run.out/results``; ``make()`` draws one (a matplotlib Figure)."""
    from ..languages import family, genus
    from .analyses import Results, registered

    folder = run.out / "results"
    langs = run.data.languages
    if not (folder / "similarities.csv").exists():
        raise ProbekitError(f"no results in {folder}; run the analyze stage first")
    resource = resource_levels(langs, run.recipe.analysis)
    families = {lang: family(lang) or "unknown family" for lang in langs}
    by_family = len(set(families.values())) > 1
    order = sorted(langs, key=lambda lang: (
        (families[lang], genus(lang)) if by_family else (), resource[lang], lang))
    # the first measure's figures have no suffix
    results = Results(folder, resource, order, families if by_family else None)
    return [figure for analysis in registered() for figure in analysis.figures(results)]


def write_figures(run: Run, quiet: bool = False) -> list[Path]:
    """The figures of :func:`figure_makers` into ``run.out/figures``, published whole
    (:mod:`.publish`), with a progress bar (unless ``quiet``) and their count and time in the
    log."""
    import time

    from tqdm import tqdm

    from .. import report as R

    written: list[Path] = []
    t0 = time.time()
    todo = figure_makers(run)
    with published(run.out / "figures") as staged:  # the whole set, or the previous one
        for stem, make in tqdm(todo, desc="report", unit="figure", disable=quiet):
            written += [run.out / "figures" / p.relative_to(staged)
                        for p in R.save_figure(make(), staged / stem)]
    log.info("report: %d figures (PNG and PDF) in %.0f s", len(todo), time.time() - t0)
    return written


def summary(out: Path) -> str:
    """The closing summary: mean scores over languages per measure, analysis, stack, modality
    (speech and text apart) and depth."""
    import pandas as pd

    sims = out / "results" / "similarities.csv"
    if not sims.exists():
        return ""
    df = pd.read_csv(sims)
    columns = [c for c in ("adjusted", "control_adjusted", "score", "chance") if c in df]
    df["modality"] = df["modality_a"].where(df["modality_a"] == df["modality_b"],
                                            df["modality_a"] + "~" + df["modality_b"])
    table = df.groupby(["measure", "analysis", "stack", "modality", "depth"])[columns].mean()
    control = ("; control: the same recipe on random weights" if "control_adjusted" in columns
               else "")
    return ("mean over languages, each modality apart (adjusted = (score - chance) / "
            f"(1 - chance){control})\n" + table.round(3).to_string())
