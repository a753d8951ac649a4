"""Tables and figures from analysis rows. Plot functions return matplotlib Figures; only
:func:`write_report` writes files (CSV, parquet when pyarrow is present, PNG and PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np


def table(rows: Iterable[Mapping[str, Any]]):
    """Rows as a tidy pandas DataFrame."""
    import pandas as pd
    return pd.DataFrame(list(rows))


def _axes(title: str, xlabel: str, ylabel: str, figsize=(7.5, 4)):
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


def plot_layer_curves(df, title: str = "", by: str = "lang_a"):
    """Score per depth, one line per ``by`` value, with CI bands and the chance level dashed."""
    measure = df["measure"].iloc[0] if "measure" in df and len(df) else "score"
    fig, ax = _axes(title or f"{df['analysis'].iloc[0]} ({measure})", "depth (block index)",
                    measure)
    for name, sub in df.groupby(by):
        sub = sub.sort_values("depth")
        line, = ax.plot(sub["depth"], sub["score"], marker="o", ms=3, label=str(name))
        if sub["ci_low"].notna().any():
            ax.fill_between(sub["depth"], sub["ci_low"], sub["ci_high"], alpha=0.2,
                            color=line.get_color())
        if sub["chance"].notna().any():
            ax.plot(sub["depth"], sub["chance"], ls="--", lw=1, color=line.get_color(),
                    alpha=0.7)
    ax.plot([], [], ls="--", color="grey", label="chance (permutation)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, ncol=2 if df[by].nunique() > 8 else 1)
    fig.tight_layout()
    return fig


def plot_language_matrix(df, depth: int, modality: str, title: str = ""):
    """Language-by-language heatmap of cross-lingual scores at one depth."""
    sub = df[(df["depth"] == depth) & (df["modality_a"] == modality)]
    langs = list(dict.fromkeys([*sub["lang_a"], *sub["lang_b"]]))  # the analysis' order
    idx = {lang: i for i, lang in enumerate(langs)}
    mat = np.full((len(langs), len(langs)), np.nan)  # the diagonal (1 by definition) stays blank
    for _, r in sub.iterrows():
        mat[idx[r["lang_a"]], idx[r["lang_b"]]] = mat[idx[r["lang_b"]], idx[r["lang_a"]]] = r["score"]
    chance = f", chance {sub['chance'].mean():.2f}" if "chance" in sub and sub["chance"].notna().any() \
        else ""
    fig, ax = _axes(title or f"cross-lingual {modality}, depth {depth}{chance}", "", "",
                    figsize=(1.2 + 0.35 * len(langs), 0.8 + 0.35 * len(langs)))
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].copy()
    cmap.set_bad("lightgrey")
    im = ax.imshow(np.ma.masked_invalid(mat), vmin=float(np.nanmin(mat)), vmax=float(np.nanmax(mat)),
                   cmap=cmap)
    ax.set_xticks(range(len(langs)), langs, rotation=90, fontsize=7)
    ax.set_yticks(range(len(langs)), langs, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_adaptation_bars(df, title: str = "cross-modal similarity by resource level"):
    """Bars per point (e.g. before / after the length adaptor), grouped by resource level."""
    points = list(dict.fromkeys(df["point"]))
    levels = sorted(df["resource"].unique())
    fig, ax = _axes(title, "", df.get("measure", ["score"])[0] if "measure" in df else "score")
    width = 0.8 / max(len(levels), 1)
    for j, level in enumerate(levels):
        sub = df[df["resource"] == level].set_index("point").reindex(points)
        x = np.arange(len(points)) + (j - (len(levels) - 1) / 2) * width
        err = np.vstack([sub["score"] - sub["ci_low"], sub["ci_high"] - sub["score"]])
        ax.bar(x, sub["score"], width, yerr=np.nan_to_num(err), capsize=3, label=f"{level}-resource")
        ax.scatter(x, sub["chance"], marker="_", s=200, color="k", zorder=3)
    ax.scatter([], [], marker="_", s=200, color="k", label="chance")
    ax.set_xticks(range(len(points)), points)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_modality_gap(df, title: str = "modality gap vs language gap"):
    """Per depth: cross-modal (same language) vs cross-lingual (same modality) similarity."""
    fig, ax = _axes(title, "depth (block index)", "similarity")
    for stack, sub in df.groupby("stack"):
        sub = sub.sort_values("depth")
        ax.plot(sub["depth"], sub["cross_modal"], "o-", label=f"{stack} cross-modal")
        ax.plot(sub["depth"], sub["cross_lingual_speech"], "s--", label=f"{stack} cross-lingual speech")
        ax.plot(sub["depth"], sub["cross_lingual_text"], "^--", label=f"{stack} cross-lingual text")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_figure(fig, path: Path) -> list[Path]:
    """Write ``path`` as PNG and PDF (the suffix of ``path`` is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix in (".png", ".pdf"):
        target = path.with_suffix(suffix)
        fig.savefig(target, dpi=150)
        out.append(target)
    return out


def write_table(df, path: Path) -> list[Path]:
    """Write ``df`` as CSV, and as parquet when pyarrow is installed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".csv")]
    df.to_csv(out[0], index=False)
    try:
        import pyarrow  # noqa: F401
        out.append(path.with_suffix(".parquet"))
        df.to_parquet(out[1], index=False)
    except ImportError:
        pass
    return out
