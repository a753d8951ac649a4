"""Figures of the findings built on the rows: code switching, length bins, length adaptation by
resource level, the modality gap against the language gap, and agreement between measures."""

from __future__ import annotations

import numpy as np

from ..analysis.means import FEWEST_FOR_AN_INTERVAL, MEAN_CI
from .common import (
    PAGE,
    PANEL,
    axes,
    decoder_note,
    headline,
    integer_ticks,
    langs_label,
    model_name,
    panel_grid,
    paper_style,
    shared_legend,
    stack_label,
    wrap,
)


def _model(df) -> str:
    return f"{model_name(df)}: " if "model" in df else ""


def _note(df, stacks) -> str:
    note = decoder_note(df, stacks)
    return f"\n{note}" if note else ""


@paper_style
def plot_code_switching(df, title: str = "code-switched inputs vs their two languages"):
    """A ``code_switching`` table of one measure, per depth: one panel per stack and modality
    (two per row), the mixed inputs' chance-adjusted similarity to the language they start in
    (solid) and to the one they go on in (dash-dot), a colour per pair of languages; controls
    dotted in the same colour, chance (0) a thin black line."""
    panels = list(dict.fromkeys(zip(df["stack"], df["modality"], strict=True)))
    fig, axs = panel_grid(len(panels))
    r = df.iloc[0]
    headline(fig, f"{_model(df)}{title}, {r['measure']}\nchance-adjusted score; solid: to the "
                  "first language, dash-dot: to the second; dotted: random-weights control"
                  + _note(df, [stack for stack, _ in panels]))
    mixes = list(dict.fromkeys(df["mixed"]))
    for ax, (stack, modality) in zip(axs, panels, strict=True):
        part = df[(df["stack"] == stack) & (df["modality"] == modality)]
        for m, mixed in enumerate(mixes):
            sub = part[part["mixed"] == mixed].sort_values("depth")
            if not len(sub):
                continue
            first, second = sub["first"].iloc[0], sub["second"].iloc[0]
            for side, style, lang in (("first", "o-", first), ("second", "s-.", second)):
                ax.plot(sub["depth"], sub[f"to_{side}"], style, color=f"C{m}",
                        label=f"{mixed} vs {lang}")
                control = f"to_{side}_control"
                if control in sub and sub[control].notna().any():
                    ax.plot(sub["depth"], sub[control], ":", color=f"C{m}", lw=0.8)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(wrap(f"{stack_label(stack)} ({modality})", PANEL))
        ax.set_xlabel("depth (block index)")
        integer_ticks(ax)
    fig.supylabel("chance-adjusted score")
    shared_legend(fig, axs, ncol=2)
    return fig


@paper_style
def plot_length_bins(df, title: str = "cross-modal similarity by length"):
    """A ``length_bins`` table of one measure: one panel per point (the adaptation points, e.g.
    before and after the length adaptor, and the last block of each cross-modal stack; two per
    row), the length bins on x, one line per resource level with its interval over languages,
    its control dashed in the same colour, chance (0) dotted."""
    import pandas as pd

    last = df[df["analysis"] == "cross_modal"]
    last = last[last["depth"] == last.groupby("stack")["depth"].transform("max")]
    df = pd.concat([df[df["analysis"] != "cross_modal"], last])
    panels = list(dict.fromkeys(zip(df["stack"], df["point"], strict=True)))
    bins = df.drop_duplicates("bin_index").sort_values("bin_index")
    fig, axs = panel_grid(len(panels))
    r = df.iloc[0]
    headline(fig, f"{_model(df)}{title}, {r['measure']}, {int(r['n_sentences'])} sentences per "
                  f"bin\nmean chance-adjusted score, {float(r['ci_level']):.0%} {MEAN_CI}; "
                  "dashed: random-weights control; dotted: chance"
                  + _note(df, [stack for stack, _ in panels]))
    for ax, (stack, point) in zip(axs, panels, strict=True):
        part = df[(df["stack"] == stack) & (df["point"] == point)]
        for g, group in enumerate(sorted(set(part["group"]))):
            sub = part[part["group"] == group].sort_values("bin_index")
            ax.errorbar(sub["bin_index"], sub["adjusted"],
                        yerr=[sub["adjusted"] - sub["ci_low"], sub["ci_high"] - sub["adjusted"]],
                        fmt="o-", capsize=2, color=f"C{g}",
                        label=f"{group} ({langs_label(sub)})")
            if sub["control_adjusted"].notna().any():
                ax.plot(sub["bin_index"], sub["control_adjusted"], "--", color=f"C{g}", lw=0.8)
        ax.axhline(0, color="k", ls=":", lw=0.8)
        where = point if stack == "adaptation" else f"{stack_label(stack)}, {point}"
        ax.set_title(wrap(where, PANEL))
        ax.set_xticks(list(bins["bin_index"]), list(bins["length_bin"]), rotation=30,
                      ha="right")
        ax.set_xlabel(f"length bin ({bins['bin_unit'].iloc[0]})")
    fig.supylabel("chance-adjusted score")
    shared_legend(fig, axs, ncol=2)
    return fig


@paper_style
def plot_adaptation_bars(df, title: str = "cross-modal similarity by resource level"):
    """Bars per point (e.g. before / after the length adaptor), grouped by resource level: the
    mean chance-adjusted score over languages with its interval, the control as a grey diamond."""
    points = list(dict.fromkeys(df["point"]))
    levels = sorted(df["resource"].unique())
    measure = df["measure"].iloc[0] if "measure" in df else "score"
    fig, ax = axes(f"{_model(df)}{title} ({measure})\nmean over languages, 95% {MEAN_CI}; "
                   "diamond: random-weights control; dotted: chance", "",
                   f"chance-adjusted {measure}", integer_x=False)
    width = 0.8 / max(len(levels), 1)
    for j, level in enumerate(levels):
        sub = df[df["resource"] == level].set_index("point").reindex(points)
        x = np.arange(len(points)) + (j - (len(levels) - 1) / 2) * width
        err = np.vstack([sub["adjusted"] - sub["ci_low"], sub["ci_high"] - sub["adjusted"]])
        if "n_langs" in sub and sub["n_langs"].max() < FEWEST_FOR_AN_INTERVAL:
            err[:] = 0  # the table keeps the interval; drawn, it would say nothing
        n = f" ({langs_label(sub)})" if "n_langs" in sub else ""
        ax.bar(x, sub["adjusted"], width, yerr=np.nan_to_num(err), capsize=2,
               label=f"{level}-resource{n}")
        if "control_adjusted" in sub:
            ax.scatter(x, sub["control_adjusted"], marker="D", s=12, color="0.3", zorder=3)
    if "control_adjusted" in df and df["control_adjusted"].notna().any():
        ax.scatter([], [], marker="D", s=12, color="0.3", label="random-weights control")
    ax.axhline(0, color="k", ls=":", lw=0.8)
    ax.set_xticks(range(len(points)), points)
    ax.set_ylim(min(-0.1, float(np.nanmin(df["adjusted"])) - 0.05), 1.02)
    shared_legend(fig, [ax])
    return fig


@paper_style
def plot_modality_gap(df, title: str = "modality gap vs language gap"):
    """One panel per cross-modal stack pair (two per row), per depth: chance-adjusted
    cross-modal similarity (same language, speech vs text) against cross-lingual similarity on
    each side (same modality, language pairs), each with its interval over languages and its
    random-weights control (dashed, same colour); chance (0) dotted."""
    stacks = list(dict.fromkeys(df["stack"]))
    fig, axs = panel_grid(len(stacks))
    r = df.iloc[0]
    level = f"{float(r['ci_level']):.0%} {r['ci_method']}" if "ci_method" in df else "intervals"
    headline(fig, f"{_model(df)}{title}, {r['measure']}\nmean chance-adjusted score, {level}; "
                  "dashed: random-weights control; dotted: chance" + _note(df, stacks))
    for ax, stack in zip(axs, stacks, strict=True):
        sub = df[df["stack"] == stack].sort_values("depth")
        for col, colour, label in (  # speech on the pair's first stack, text on its second
                ("cross_modal", "C0", "speech vs text, same language"),
                ("cross_lingual_speech", "C1", "across languages, speech"),
                ("cross_lingual_text", "C2", "across languages, text")):
            if col not in sub or sub[col].isna().all():
                continue
            ax.plot(sub["depth"], sub[col], "o-", color=colour, label=label)
            ax.fill_between(sub["depth"], sub[f"{col}_ci_low"], sub[f"{col}_ci_high"],
                            alpha=0.2, color=colour)
            control = f"{col}_control"
            if control in sub and sub[control].notna().any():
                ax.plot(sub["depth"], sub[control], "--", color=colour, lw=0.8)
        ax.axhline(0, color="k", ls=":", lw=0.8)
        ax.set_title(wrap(stack_label(stack), PANEL))
        ax.set_xlabel("depth (block index)")
        integer_ticks(ax)
        values = sub[[c for c in ("cross_modal", "cross_lingual_speech", "cross_lingual_text")
                      if c in sub]].values
        ax.set_ylim(min(-0.1, float(np.nanmin(values)) - 0.05), 1.02)
    fig.supylabel("chance-adjusted score")
    shared_legend(fig, axs)
    return fig


@paper_style
def plot_measure_agreement(df, title: str = "agreement between measures"):
    """Mean Spearman correlation between measures, of layer-wise curves and of
    language-by-language matrices (1: the measures rank layers / language pairs alike), one
    panel per kind; marked "not meaningful" where the curves have fewer than 5 points."""
    measures = list(dict.fromkeys([*df["measure_a"], *df["measure_b"]]))
    kinds = list(dict.fromkeys(df["kind"]))
    fig, axs = panel_grid(len(kinds), height=None)
    for ax, kind in zip(axs, kinds, strict=True):
        mat = np.eye(len(measures))
        for _, r in df[df["kind"] == kind].iterrows():
            a, b = measures.index(r["measure_a"]), measures.index(r["measure_b"])
            mat[a, b] = mat[b, a] = r["spearman_mean"]
        im = ax.imshow(mat, vmin=-1, vmax=1, cmap="RdBu_r")
        for a in range(len(measures)):
            for b in range(len(measures)):
                ax.text(b, a, f"{mat[a, b]:.2f}", ha="center", va="center")
        ax.set_xticks(range(len(measures)), measures, rotation=90)
        ax.set_yticks(range(len(measures)), measures if ax is axs[0] else [])
        ax.set_title(wrap(f"{kind}: Spearman", PANEL))
    fig.colorbar(im, ax=axs, shrink=0.8)
    few = df[~df["meaningful"].astype(bool)] if "meaningful" in df else df.iloc[:0]
    points = few["points"].dropna() if "points" in few else few.iloc[:0]
    note = "" if few.empty else (
        f"\nnot meaningful: {', '.join(dict.fromkeys(few['kind']))} of "
        + (f"{int(points.min())} points" if len(points) else "too few points")
        + " (a rank correlation needs at least 5)")
    headline(fig, f"{_model(df)}{title}{note}")
    return fig


@paper_style
def plot_claims(df, title: str = "the paper's findings as contrasts"):
    """One row per claim (and stack pair, measure), page wide: the effect with its interval
    over languages, the random-weights control's effect (x) and the effect of spectrum-matched
    Gaussian views (+: what the spectra alone give); 0 dotted. Right of 0 supports the claim."""
    df = df.reset_index(drop=True)
    r0 = df.iloc[0]
    fig, ax = axes(f"{_model(df)}{title}: {float(r0['ci_level']):.0%} {r0['ci_method']}\n"
                   "x: random-weights control; +: spectrum-matched views; "
                   "*: supported (effect > 0, Holm-adjusted p < 0.05)"
                   + _note(df, set(df["stack"])),
                   f"effect ({r0['score']}; > 0 supports the finding)", "", width=PAGE,
                   height=0.16 * len(df) + 0.3, integer_x=False)
    y = np.arange(len(df))[::-1]
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(df["measure"]))}
    for yi, (_, r) in zip(y, df.iterrows(), strict=True):
        colour = colours[r["measure"]]
        ax.plot([r["ci_low"], r["ci_high"]], [yi, yi], color=colour, lw=1.5)
        ax.plot(r["effect"], yi, "o", color=colour)
        if "control_effect" in df and np.isfinite(r["control_effect"]):
            ax.plot(r["control_effect"], yi, "x", color="k", ms=4)
        if "spectrum_effect" in df and np.isfinite(r["spectrum_effect"]):
            ax.plot(r["spectrum_effect"], yi, "+", color="grey", ms=5)
    labels = [f"{r['claim']}, {stack_label(r['stack'])} ({r['measure']})"
              + (" *" if bool(r.get("supported", False)) else "") for _, r in df.iterrows()]
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(df) - 0.3)
    ax.axvline(0, color="k", ls=":", lw=0.8)
    return fig


@paper_style
def plot_spectra(df, title: str = "spectra of the compared views"):
    """Per stack and modality, over depth: the participation ratio (effective number of
    directions) and the share of variance held by the largest single feature, the mean over
    languages; the outlier-feature threshold dashed."""
    fig, (left, right) = panel_grid(2)
    for i, ((stack, modality), sub) in enumerate(df.groupby(["stack", "modality"], sort=False)):
        mean = sub.groupby("depth")[["participation_ratio", "largest_feature_share"]].mean()
        label = f"{stack_label(stack)}, {modality}"
        left.plot(mean.index, mean["participation_ratio"], "o-", color=f"C{i}", label=label)
        right.plot(mean.index, mean["largest_feature_share"], "o-", color=f"C{i}")
    if "outlier_share" in df:
        right.axhline(float(df["outlier_share"].iloc[0]), color="k", ls="--", lw=0.8)
    left.set_title("participation ratio")
    right.set_title(wrap("largest feature's share of variance", PANEL))
    for ax in (left, right):
        ax.set_xlabel("depth (block index)")
        integer_ticks(ax)
    headline(fig, f"{_model(df)}{title} (mean over languages; dashed: outlier_feature "
                  "threshold)")
    shared_legend(fig, [left], ncol=2)
    return fig
