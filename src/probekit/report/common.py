"""What the figures share: their print size and fonts, panels in a grid of at most two per
row, wrapped titles, one legend below the panels, colours by language group, interval bands,
the chance and control lines, and saving as PNG and PDF."""

from __future__ import annotations

import functools
import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.means import FEWEST_FOR_AN_INTERVAL

COLUMN = 6.6 / 2  # inches: a figure drawn at the width of one column of a two-column paper
PAGE = 6.9        # inches: the full text width, for figures too dense for a column
PANEL = 1.2       # inches: what a panel's title may take in a column's row of two panels
FONT = 7          # points: every text, at print size (the figure's own size)
STYLE: dict[str, Any] = {"font.size": FONT, "axes.titlesize": FONT, "axes.labelsize": FONT,
         "xtick.labelsize": FONT, "ytick.labelsize": FONT, "legend.fontsize": FONT,
         "figure.titlesize": FONT, "figure.labelsize": FONT, "legend.frameon": False,
         "legend.handlelength": 1.6,
         "lines.linewidth": 1.0, "lines.markersize": 3, "axes.linewidth": 0.6,
         "xtick.major.width": 0.6, "ytick.major.width": 0.6, "savefig.dpi": 300,
         "pdf.fonttype": 42, "ps.fonttype": 42}


ROW = "_probekit_row_height"  # panel_grid's row height, kept on its figure for fit()


def paper_style(plot):
    """Draw ``plot``'s figure in :data:`STYLE` (fonts of :data:`FONT` points), then :func:`fit`
    its height."""
    @functools.wraps(plot)
    def styled(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
            return fit(plot(*args, **kwargs))
    return styled


def wrap(text: str, width: float, size: float = FONT) -> str:
    """``text`` broken into lines that fit ``width`` inches at ``size`` points (each of its own
    lines apart)."""
    chars = max(20, int(width * 72 / (0.58 * size)))
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False, break_long_words=False)
                     for line in str(text).split("\n"))


def panel_grid(n: int, width: float = COLUMN, height: float | None = 1.45):
    """A figure ``width`` inches wide of ``n`` panels, at most two per row (a grid for more),
    laid out by matplotlib's constrained layout (titles, legends and colour bars kept inside
    the canvas); :func:`fit` later makes each row ``height`` inches high (None: square)."""
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    cols = min(max(n, 1), 2)
    rows = math.ceil(max(n, 1) / cols)
    fig = Figure(figsize=(width, 1 + rows * (height or width / cols)),  # rows apart by inches:
                 layout=ConstrainedLayoutEngine(hspace=0, wspace=0.02))  # not by a fraction
    setattr(fig, ROW, height)  # noqa: B010 (for fit)
    grid = fig.add_gridspec(rows, cols)
    return fig, [fig.add_subplot(grid[i // cols, i % cols]) for i in range(n)]


def fit(fig):
    """``fig`` made as high as its titles, labels and legends take, plus its panel rows at the
    height :func:`panel_grid` was given (square panels for None)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    row = getattr(fig, ROW, False)
    if row is False:
        return fig
    FigureCanvasAgg(fig)
    panels = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is None]
    if row is None:  # square boxes, filled: an image's fixed aspect would hide its decorations
        for ax in panels:
            ax.set_aspect("auto")
    tall = 40.0  # room for everything: the layout's decorations take fixed inches
    fig.set_figheight(tall)
    fig.draw_without_rendering()
    boxes = [ax.get_position(original=True) for ax in panels]
    rows = {round(box.y0, 4): box.height * tall for box in boxes}
    row = row or max(box.width for box in boxes) * fig.get_figwidth()
    fig.set_figheight(tall - sum(rows.values()) + row * len(rows))
    return fig


def integer_ticks(ax) -> None:
    """Whole-number ticks on the x axis (blocks, bins)."""
    import matplotlib.ticker

    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def axes(title: str, xlabel: str, ylabel: str, width: float = COLUMN,
         height: float | None = 1.6, integer_x: bool = True):
    """A figure of one panel ``width`` inches wide, ``height`` high (None: square), with a
    title wrapped to the figure's width; whole-number x ticks unless ``integer_x`` is false."""
    fig, (ax,) = panel_grid(1, width, height)
    if title:
        headline(fig, title)
    if integer_x:
        integer_ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


def headline(fig, text: str) -> None:
    """The figure's title, wrapped to its width."""
    fig.suptitle(wrap(text, fig.get_figwidth()))


def shared_legend(fig, axs, ncol: int = 2) -> None:
    """One legend below the panels, of every labelled line of ``axs`` (each label once), in up
    to ``ncol`` columns: as many as the longest label lets fit the figure's width."""
    seen: dict[str, Any] = {}
    for ax in axs:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if not seen:
        return
    widest = max(len(label) for label in seen) * 0.6 * FONT + 3.4 * FONT  # points: text, handle
    fits = int((fig.get_figwidth() * 72 - 2 * FONT) // widest)
    fig.legend(list(seen.values()), list(seen), loc="outside lower center",
               ncol=max(1, min(ncol, fits)))


RANDOM = "random weights"  # the tables' revision stamp of a random or tiny variant
OWN_TARGET = "own language"  # their decoder_target stamp when each example decodes its own


def model_name(df) -> str:
    """The model as titles name it, from a table's stamp columns: its label, with "(random
    weights)" for a random or tiny variant ("" for a table without stamps)."""
    if "model" not in df or not len(df):
        return ""
    r = df.iloc[0]
    return f"{r['model']} ({RANDOM})" if str(r.get("revision", "")) == RANDOM else str(r["model"])


def describe(df) -> str:
    """How the rows of ``df`` were computed, for a figure title: model, measure, n, k or variance
    rule, chance permutations and the interval's method and level."""
    if not len(df):
        return ""
    r = df.iloc[0]
    parts = [model_name(df)] if "model" in df else []
    parts.append(str(r.get("measure", "score")))
    if "n" in df and np.isfinite(r.get("n", np.nan)):
        parts.append(f"n={int(r['n'])} sentences")
    k, variance = r.get("k", np.nan), r.get("variance", np.nan)
    if isinstance(k, (int, float)) and np.isfinite(k):
        parts.append(f"k={int(k)}")
    elif isinstance(variance, (int, float)) and np.isfinite(variance):
        parts.append(f"{variance:g} variance")
    if "n_perm" in df and r.get("n_perm"):
        parts.append(f"chance: {int(r['n_perm'])} permutations")
    method = r.get("ci_method")
    if isinstance(method, str) and method:
        parts.append(f"{float(r['ci_level']):.0%} CI: {method}")
    return ", ".join(parts)


def decoder_note(df, stacks) -> str:
    """A caption line for the panels of a decoder (a stack named ``*decoder*``) when every
    example fed it one language's target sentence (the tables' ``decoder_target`` stamp, from
    ``data.target_language``); "" otherwise."""
    if "decoder_target" not in df or not any("decoder" in str(s) for s in stacks):
        return ""
    targets = [str(t) for t in df["decoder_target"].dropna().unique()]
    if len(targets) != 1 or targets[0] == OWN_TARGET:
        return ""
    return (f"note: the decoder reads the {targets[0]} sentence for every example (teacher "
            "forcing): its panels compare one shared target, not each language's own")


def stack_label(stack: str) -> str:
    """A stack name for a reader: ``speech_encoder~text_encoder`` -> "speech encoder vs text
    encoder", ``text_decoder~text_decoder`` -> "text decoder, on speech vs on text"."""
    parts = [part.replace("_", " ") for part in str(stack).split("~")]
    if len(parts) == 2 and parts[0] == parts[1]:
        return f"{parts[0]}, on speech vs on text"
    return " vs ".join(parts)


def score_column(df) -> tuple[str, str, str, str]:
    """The adjusted score and its interval when the rows have a chance level, else raw."""
    if "adjusted" in df and df["adjusted"].notna().any():
        return "adjusted", "adjusted_ci_low", "adjusted_ci_high", "chance-adjusted "
    return "score", "ci_low", "ci_high", ""


GROUP_MAPS = ("Blues", "Oranges", "Greens", "Purples", "Reds", "Greys")


def language_colours(langs, groups=None) -> dict[str, tuple[Any, str]]:
    """``lang -> (colour, line style)`` that stays distinct for 30+ languages: each group of
    ``groups`` (lang -> group, e.g. resource level) gets its own colour map, sampled across its
    languages, with line styles alternating between neighbouring shades; up to 10 languages
    without groups take the 10 qualitative colours."""
    import matplotlib

    langs = list(langs)
    if not groups and len(langs) <= 10:
        return {lang: (f"C{i}", "-") for i, lang in enumerate(langs)}
    groups = groups or {}
    by_group: dict[str, list[str]] = {}
    for lang in langs:
        by_group.setdefault(str(groups.get(lang, "other")), []).append(lang)
    out = {}
    for g, (_, members) in enumerate(sorted(by_group.items())):
        cmap = matplotlib.colormaps[GROUP_MAPS[g % len(GROUP_MAPS)]]
        shades = np.linspace(0.45, 0.95, max(len(members), 2))
        for i, lang in enumerate(members):
            out[lang] = (cmap(shades[i]), ("-", "--", "-.", ":")[i % 4])
    return out


def langs_label(sub) -> str:
    n = int(sub["n_langs"].max())
    return f"{n} langs" + (", too few for an interval" if n < FEWEST_FOR_AN_INTERVAL else "")


def band(ax, sub, colour, alpha: float) -> None:
    """A group's interval over languages (none for fewer than 3 languages)."""
    if int(sub["n_langs"].max()) >= FEWEST_FOR_AN_INTERVAL:
        ax.fill_between(sub["depth"], sub["ci_low"], sub["ci_high"], color=colour, alpha=alpha)


def chance_and_control(ax, df, col: str, kind: str) -> None:
    """Chance (0 after adjustment, else the permutation mean per depth) dotted, the control's
    mean per depth dashed grey."""
    if kind:
        ax.axhline(0, color="k", ls=":", lw=0.8, label="chance (0 adjusted)")
    elif "chance" in df and df["chance"].notna().any():
        chance = df.groupby("depth")["chance"].mean()
        ax.plot(chance.index, chance.values, "k:", lw=0.8, label="chance (permutation)")
    control = f"control_{col}" if col == "adjusted" else "control_score"
    if control in df and df[control].notna().any():
        mean = df.groupby("depth")[control].mean()
        ax.plot(mean.index, mean.values, color="grey", ls="--", lw=1.5,
                label=f"control: {df['control'].iloc[0] if 'control' in df else 'random'}")


def save_figure(fig, path: Path) -> list[Path]:
    """Write ``path`` as PNG and PDF (the suffix of ``path`` is replaced), laid out once: the
    PDF has the PNG's layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix in (".png", ".pdf"):
        target = path.with_suffix(suffix)
        fig.savefig(target, dpi=300)
        if fig.get_layout_engine() is not None:  # laid out for the PNG: the PDF keeps it
            fig.set_layout_engine("none")
        out.append(target)
    return out
