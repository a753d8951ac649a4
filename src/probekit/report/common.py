"""What the figures share: axes, labels, colours by language group, interval bands, the
chance and control lines, and saving as PNG and PDF."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.means import FEWEST_FOR_AN_INTERVAL


def axes(title: str, xlabel: str, ylabel: str, figsize=(7.5, 4)):
    import matplotlib
    import matplotlib.ticker
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


RANDOM = "random weights"  # the tables' revision stamp of a random or tiny variant


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
    return textwrap.fill(", ".join(parts), 100)


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
        ax.axhline(0, color="k", ls=":", lw=1, label="chance (permutation; 0 after adjustment)")
    elif "chance" in df and df["chance"].notna().any():
        chance = df.groupby("depth")["chance"].mean()
        ax.plot(chance.index, chance.values, "k:", lw=1, label="chance (permutation)")
    control = f"control_{col}" if col == "adjusted" else "control_score"
    if control in df and df[control].notna().any():
        mean = df.groupby("depth")[control].mean()
        ax.plot(mean.index, mean.values, color="grey", ls="--", lw=2,
                label=f"control: {df['control'].iloc[0] if 'control' in df else 'random'} (mean)")


def save_figure(fig, path: Path) -> list[Path]:
    """Write ``path`` as PNG and PDF (the suffix of ``path`` is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix in (".png", ".pdf"):
        target = path.with_suffix(suffix)
        fig.savefig(target, dpi=150)
        out.append(target)
    return out
