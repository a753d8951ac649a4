"""The :class:`Analysis` contract: what one analysis asks of a store (its comparisons), the
similarity rows of each comparison, the tables made from every analysis's rows, and the figures
drawn from the tables. The dry run plans, costs and counts figures with the same objects that
compute and draw them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from ...analysis.plan import Comparison
from ...recipe_schema import AnalysisSection

Row = Mapping[str, Any]              # a table's row: a SimilarityRow, a GroupMeanRow, ...
Rows = Mapping[str, Sequence[Row]]   # analysis name -> its similarity rows
Tables = dict[str, Sequence[Row]]    # table name -> rows (results/NAME.csv)
Figure = tuple[str, Callable[[], Any]]  # file stem in figures/, a function making the figure


@dataclass(frozen=True)
class PlanContext:
    """What a plan reads: the analysis section, each stack's recorded layers (``of``), the
    recipe's modalities and the modalities recorded at a layer."""
    analysis: AnalysisSection
    of: dict[str, list[str]]
    modalities: Sequence[str]
    recorded: Callable[[str], set[str]]
    code_switch_pairs: Sequence[Sequence[str]] = ()


@dataclass
class RowContext:
    """What rows are computed with, for one store: the run's languages, the views of given
    languages and modalities (``views_of``), a Comparer for an analysis on views
    (``comparer``), and ``progress`` (called once per layer done)."""
    languages: list[str]
    views_of: Callable[[list[str], list[str]], Any]
    comparer: Callable[..., Any]
    progress: Callable[[int], None]
    code_switch_pairs: Sequence[Sequence[str]] = ()
    present: set[tuple[str, str]] = field(default_factory=set)  # (lang, modality) stored


@dataclass
class TableContext:
    """What tables are made with: the analysis section, the run's languages and modalities,
    each language's resource level, the groupings with at least two groups among the languages
    (name -> lang -> group), whether pairs of languages span several family distances, the
    store, ``rows_in(sentences, label)``: every analysis's rows again on a subset of
    sentences, ``recompute(settings, synthetic, label)``: the claims' analyses (cross_modal,
    cross_lingual, adaptation) again with other Comparer settings (e.g. ``{"k": 10}``) or on
    spectrum-matched views, without the control, and ``comparer(settings, control)``: a
    Comparer (no null, no intervals; ``settings`` replacing its arguments) on the run's paired
    views, or on the control's."""
    analysis: AnalysisSection
    languages: list[str]
    modalities: Sequence[str]
    resource: dict[str, str]
    groupings: dict[str, dict[str, str]]
    family_distances: bool
    store: Any = None
    rows_in: Callable[[Any, str], Rows] | None = None
    recompute: Callable[[dict[str, Any], bool, str], Rows] | None = None
    comparer: Callable[[dict[str, Any], bool], Any] | None = None


@dataclass
class Results:
    """The result tables of a run's ``results/`` folder, read on demand, and what figures
    share: which measure's figures carry no suffix, each language's resource level, the
    languages' order and families."""
    folder: Path
    resource: dict[str, str]
    order: list[str]
    families: dict[str, str] | None
    first_measure: str = ""
    _cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.first_measure and self.table("similarities") is not None:
            self.first_measure = str(self.table("similarities")["measure"].iloc[0])

    def table(self, name: str) -> Any:
        """``results/NAME.csv`` as a DataFrame (None when the run did not make it)."""
        if name not in self._cache:
            import pandas as pd

            path = self.folder / f"{name}.csv"
            self._cache[name] = pd.read_csv(path) if path.exists() else None
        return self._cache[name]

    def similarities_of(self, analysis: str) -> Iterator[tuple[str, str, Any]]:
        """``(measure, stack, rows)`` of ``analysis`` in ``similarities.csv``."""
        df = self.table("similarities")
        if df is None:
            return
        for (measure, stack), sub in df[df["analysis"] == analysis].groupby(["measure", "stack"]):
            yield str(measure), str(stack), sub

    def suffix(self, measure: str) -> str:
        """The file name suffix of a measure's figures (none for the recipe's first)."""
        return "" if measure == self.first_measure else f"_{measure}"


class Analysis:
    """One analysis. Subclasses set :attr:`name` and override what they do:

    - :meth:`plan`: the comparisons it asks of a store (none for a table-only analysis);
    - :meth:`rows`: the similarity rows of one of its comparisons;
    - :meth:`tables`: tables made from every analysis's rows (``Rows``);
    - :meth:`figures` and :meth:`count_figures`: what the report stage draws, and how many.

    Register an instance with :func:`probekit.pipeline.analyses.register_analysis`."""

    name: ClassVar[str] = ""
    similarities: ClassVar[bool] = False  # its rows go into results/similarities.csv
    intervals: ClassVar[bool] = False     # its rows may take half-sampling intervals

    def plan(self, ctx: PlanContext) -> list[Comparison]:
        return []

    def rows(self, c: Comparison, ctx: RowContext) -> Sequence[Row]:
        raise NotImplementedError(f"analysis {self.name!r} plans comparisons but computes no "
                                  "rows")

    @property
    def interval_name(self) -> str:
        """The name ``analysis.intervals`` gives this analysis's rows intervals by."""
        return self.name

    def cost(self, c: Comparison, languages: int, pairs: int) -> tuple[int, int]:
        """Rows to compute and views to decompose for one comparison over ``languages``
        languages and ``pairs`` code-switched pairs (for the dry run's estimate)."""
        return 0, 0

    def layers_done(self, c: Comparison, ctx: RowContext) -> int:
        """Progress units of a comparison (layers compared)."""
        return c.depths

    def tables(self, rows: Rows, ctx: TableContext) -> Tables:
        return {}

    def figures(self, results: Results) -> Iterator[Figure]:
        return iter(())

    def count_figures(self, comparisons: list[Comparison], measures: int,
                      ctx: TableContext) -> int:
        """Figures :meth:`figures` draws for a run planning ``comparisons`` (of every
        analysis) with ``measures`` measures."""
        return 0


def per_measure(table: Any, stem: str, plot: Callable[[Any], Any],
                results: Results) -> Iterator[Figure]:
    """One figure of ``table`` per measure, named ``stem`` plus the measure's suffix."""
    if table is None:
        return
    for measure, sub in table.groupby("measure"):
        yield f"{stem}{results.suffix(measure)}", partial(plot, sub)
