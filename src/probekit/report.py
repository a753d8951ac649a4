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


def describe(df) -> str:
    """How the rows of ``df`` were computed, for a figure title: measure, n, k or variance rule,
    chance permutations and the interval's method and level."""
    if not len(df):
        return ""
    r = df.iloc[0]
    parts = [str(r.get("measure", "score"))]
    if "n" in df and np.isfinite(r.get("n", np.nan)):
        parts.append(f"n={int(r['n'])}")
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


def _score_column(df) -> tuple[str, str, str, str]:
    """The adjusted score and its interval when the rows have a chance level, else raw."""
    if "adjusted" in df and df["adjusted"].notna().any():
        return "adjusted", "adjusted_ci_low", "adjusted_ci_high", "chance-adjusted "
    return "score", "ci_low", "ci_high", ""


def plot_layer_curves(df, title: str = "", by: str = "lang_a"):
    """Chance-adjusted score per depth, one line per ``by`` value, with interval bands; chance
    (0 after adjustment) dotted and the random-weights control (mean over lines) dashed."""
    col, lo, hi, kind = _score_column(df)
    measure = df["measure"].iloc[0] if "measure" in df and len(df) else "score"
    fig, ax = _axes(f"{title or df['analysis'].iloc[0]}\n{describe(df)}",
                    "depth (block index)", f"{kind}{measure}", figsize=(7.5, 4.4))
    ax.title.set_fontsize(9)
    for name, sub in df.groupby(by):
        sub = sub.sort_values("depth")
        line, = ax.plot(sub["depth"], sub[col], marker="o", ms=3, label=str(name))
        if lo in sub and sub[lo].notna().any():
            ax.fill_between(sub["depth"], sub[lo], sub[hi], alpha=0.2, color=line.get_color())
    if kind:
        ax.axhline(0, color="k", ls=":", lw=1, label="chance (permutation)")
    elif "chance" in df and df["chance"].notna().any():
        chance = df.groupby("depth")["chance"].mean()
        ax.plot(chance.index, chance.values, "k:", lw=1, label="chance (permutation)")
    control = f"control_{col}" if col == "adjusted" else "control_score"
    if control in df and df[control].notna().any():
        mean = df.groupby("depth")[control].mean()
        ax.plot(mean.index, mean.values, color="grey", ls="--", lw=2,
                label=f"control: {df['control'].iloc[0]} (mean)")
    ax.set_ylim(min(-0.1, float(np.nanmin(df[col])) - 0.05), 1.02)
    ax.legend(fontsize=7, ncol=2 if df[by].nunique() > 8 else 1)
    fig.tight_layout()
    return fig


def plot_language_matrix(df, depth: int, modality: str, title: str = ""):
    """Language-by-language heatmap of chance-adjusted cross-lingual scores at one depth, on a
    fixed 0..1 scale (0 = chance), cells not above chance (z < 2) marked with a dot."""
    sub = df[(df["depth"] == depth) & (df["modality_a"] == modality)]
    col, _, _, kind = _score_column(sub)
    langs = list(dict.fromkeys([*sub["lang_a"], *sub["lang_b"]]))  # the analysis' order
    idx = {lang: i for i, lang in enumerate(langs)}
    mat = np.full((len(langs), len(langs)), np.nan)  # the diagonal (1 by definition) stays blank
    weak = []
    for _, r in sub.iterrows():
        i, j = idx[r["lang_a"]], idx[r["lang_b"]]
        mat[i, j] = mat[j, i] = r[col]
        if "z" in r and not r["z"] >= 2:
            weak += [(i, j), (j, i)]
    control = ""
    if "control_adjusted" in sub and sub["control_adjusted"].notna().any():
        control = f"; control mean {sub['control_adjusted'].mean():.2f}"
    fig, ax = _axes(title or f"cross-lingual {modality}, depth {depth}: {kind}score\n"
                    f"{describe(sub)}{control}\n(dot: not above chance, z < 2)", "", "",
                    figsize=(2.2 + 0.35 * len(langs), 1.4 + 0.35 * len(langs)))
    ax.title.set_fontsize(8)
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].copy()
    cmap.set_bad("lightgrey")
    vmin, vmax = (0.0, 1.0) if kind else (float(np.nanmin(mat)), float(np.nanmax(mat)))
    im = ax.imshow(np.ma.masked_invalid(mat), vmin=vmin, vmax=vmax, cmap=cmap)
    for i, j in weak:
        ax.plot(j, i, "w.", ms=4)
    ax.set_xticks(range(len(langs)), langs, rotation=90, fontsize=7)
    ax.set_yticks(range(len(langs)), langs, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046, label=f"{kind}score (0 = chance)" if kind else "")
    fig.tight_layout()
    return fig


def plot_adaptation_bars(df, title: str = "cross-modal similarity by resource level"):
    """Bars per point (e.g. before / after the length adaptor), grouped by resource level: the
    mean chance-adjusted score over languages with its interval, the control as a grey diamond."""
    points = list(dict.fromkeys(df["point"]))
    levels = sorted(df["resource"].unique())
    measure = df["measure"].iloc[0] if "measure" in df else "score"
    fig, ax = _axes(f"{title} ({measure})", "", f"chance-adjusted {measure}")
    width = 0.8 / max(len(levels), 1)
    for j, level in enumerate(levels):
        sub = df[df["resource"] == level].set_index("point").reindex(points)
        x = np.arange(len(points)) + (j - (len(levels) - 1) / 2) * width
        err = np.vstack([sub["adjusted"] - sub["ci_low"], sub["ci_high"] - sub["adjusted"]])
        ax.bar(x, sub["adjusted"], width, yerr=np.nan_to_num(err), capsize=3,
               label=f"{level}-resource")
        if "control_adjusted" in sub:
            ax.scatter(x, sub["control_adjusted"], marker="D", s=30, color="0.3", zorder=3)
    if "control_adjusted" in df and df["control_adjusted"].notna().any():
        ax.scatter([], [], marker="D", s=30, color="0.3", label="random-weights control")
    ax.axhline(0, color="k", ls=":", lw=1)
    ax.set_xticks(range(len(points)), points)
    ax.set_ylim(min(-0.1, float(np.nanmin(df["adjusted"])) - 0.05), 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_modality_gap(df, title: str = "modality gap vs language gap"):
    """Per depth: chance-adjusted cross-modal (same language) vs cross-lingual (same modality)
    similarity, 95% intervals over languages, and the control's cross-modal curve."""
    measure = df["measure"].iloc[0] if "measure" in df else "score"
    fig, ax = _axes(f"{title} ({measure})", "depth (block index)", f"chance-adjusted {measure}")
    for stack, sub in df.groupby("stack"):
        sub = sub.sort_values("depth")
        for col, style, label in (("cross_modal", "o-", "cross-modal (speech vs text)"),
                                  ("cross_lingual_speech", "s--", "cross-lingual, speech"),
                                  ("cross_lingual_text", "^--", "cross-lingual, text")):
            if sub[col].isna().all():
                continue
            line, = ax.plot(sub["depth"], sub[col], style, ms=4, label=f"{stack}: {label}")
            ax.fill_between(sub["depth"], sub[f"{col}_ci_low"], sub[f"{col}_ci_high"],
                            alpha=0.15, color=line.get_color())
            if col == "cross_modal" and "cross_modal_control" in sub \
                    and sub["cross_modal_control"].notna().any():
                ax.plot(sub["depth"], sub["cross_modal_control"], color=line.get_color(), ls=":",
                        lw=2, label=f"{stack}: cross-modal, random-weights control")
    ax.axhline(0, color="k", ls=":", lw=1)
    ax.set_ylim(min(-0.1, float(np.nanmin(df[["cross_modal"]].values)) - 0.05), 1.02)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_measure_agreement(df, title: str = "agreement between measures"):
    """Mean Spearman correlation between measures, of layer-wise curves and of
    language-by-language matrices (1: the measures rank layers / language pairs alike)."""
    measures = list(dict.fromkeys([*df["measure_a"], *df["measure_b"]]))
    kinds = list(dict.fromkeys(df["kind"]))
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(kinds) + 0.8, 3.8))
    for i, kind in enumerate(kinds):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        mat = np.eye(len(measures))
        for _, r in df[df["kind"] == kind].iterrows():
            a, b = measures.index(r["measure_a"]), measures.index(r["measure_b"])
            mat[a, b] = mat[b, a] = r["spearman_mean"]
        im = ax.imshow(mat, vmin=-1, vmax=1, cmap="RdBu_r")
        for a in range(len(measures)):
            for b in range(len(measures)):
                ax.text(b, a, f"{mat[a, b]:.2f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(measures)), measures, rotation=45, fontsize=7)
        ax.set_yticks(range(len(measures)), measures, fontsize=7)
        ax.set_title(f"{kind}: Spearman", fontsize=9)
    fig.subplots_adjust(left=0.12, wspace=0.45, bottom=0.2)
    fig.colorbar(im, ax=fig.axes, fraction=0.03)
    fig.suptitle(title, fontsize=10)
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
