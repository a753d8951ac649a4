"""Tables and figures from analysis rows. Plot functions return matplotlib Figures and
:func:`paper_table`, :func:`to_markdown`, :func:`to_latex` return text; only :func:`save_figure`
(PNG and PDF) and :func:`write_table` (CSV, parquet when pyarrow is present) write files."""

from .common import GROUP_MAPS, describe, language_colours, save_figure, stack_label
from .curves import plot_group_means, plot_language_matrix, plot_layer_curves
from .findings import (
    plot_adaptation_bars,
    plot_claims,
    plot_code_switching,
    plot_length_bins,
    plot_measure_agreement,
    plot_modality_gap,
    plot_spectra,
)
from .tables import claims_paper_table, paper_table, table, to_latex, to_markdown, write_table

__all__ = ["GROUP_MAPS", "claims_paper_table", "describe", "language_colours", "paper_table",
           "plot_adaptation_bars",
           "plot_code_switching", "plot_group_means", "plot_language_matrix", "plot_layer_curves",
           "plot_claims", "plot_length_bins", "plot_measure_agreement", "plot_modality_gap",
           "plot_spectra", "save_figure",
           "stack_label", "table", "to_latex", "to_markdown", "write_table"]
