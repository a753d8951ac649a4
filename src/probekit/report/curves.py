"""Figures of layer-wise similarity: curves over depth per language, group means with their
intervals, and the language-by-language matrix at one depth."""

from __future__ import annotations

import numpy as np

from ..analysis.means import BETWEEN, WITHIN
from .common import (
    COLUMN,
    GROUP_MAPS,
    PAGE,
    PANEL,
    axes,
    band,
    chance_and_control,
    decoder_note,
    describe,
    headline,
    integer_ticks,
    langs_label,
    language_colours,
    model_name,
    panel_grid,
    paper_style,
    score_column,
    shared_legend,
    stack_label,
    wrap,
)
from .tables import table


@paper_style
def plot_layer_curves(df, title: str = "", by: str = "lang_a", groups=None):
    """Chance-adjusted score per depth, one line per ``by`` value; chance (0 after adjustment)
    dotted and the random-weights control (mean over lines) dashed. Up to 5 lines each carry
    their interval band; with more (bands would merge), the languages are thin lines coloured
    by group (``groups``: lang -> group) and each group's mean is drawn thick with its interval
    over languages, on a page-wide figure."""
    col, lo, hi, kind = score_column(df)
    measure = df["measure"].iloc[0] if "measure" in df and len(df) else "score"
    names = list(dict.fromkeys(df[by]))
    many = len(names) > 5
    note = decoder_note(df, set(df["stack"]) if "stack" in df else ())
    fig, ax = axes("\n".join(filter(None, [title or df["analysis"].iloc[0], describe(df), note])),
                   "depth (block index)", f"{kind}{measure}", width=PAGE if many else COLUMN,
                   height=2.6 if many else 1.6)
    colours = language_colours(names, groups if many else None)
    for name, sub in df.groupby(by, sort=False):
        sub = sub.sort_values("depth")
        colour, style = colours[name]
        ax.plot(sub["depth"], sub[col], ls=style, color=colour, lw=0.8 if many else 1.2,
                marker=None if many else "o", alpha=0.8 if many else 1, label=str(name))
        if not many and lo in sub and sub[lo].notna().any():
            ax.fill_between(sub["depth"], sub[lo], sub[hi], alpha=0.2, color=colour)
    if many and groups and kind:
        import matplotlib

        from ..analysis import group_means

        means = table(group_means(df.to_dict("records"), groups))
        for g, (group, sub) in enumerate(means.groupby("group")):
            sub = sub.sort_values("depth")
            colour = matplotlib.colormaps[GROUP_MAPS[g % len(GROUP_MAPS)]](0.85)
            ax.plot(sub["depth"], sub["adjusted"], color=colour, lw=2.5,
                    label=f"{group} mean ({langs_label(sub)})")
            band(ax, sub, colour, 0.25)
    chance_and_control(ax, df, col, kind)
    ax.set_ylim(min(-0.1, float(np.nanmin(df[col])) - 0.05), 1.02)
    shared_legend(fig, [ax], ncol=5 if many else 2)
    return fig


@paper_style
def plot_group_means(df, title: str = ""):
    """Group means (a ``group_means`` table of one measure and analysis) per depth: one panel
    per stack and modality (two per row), one line per group with its interval over
    languages, the control dashed in the group's colour, chance (0) dotted. Cross-lingual pairs
    of more than 6 pairs of groups are drawn as within and between groups."""
    panels = list(dict.fromkeys(zip(df["stack"], df["modality"], strict=True)))
    fig, axs = panel_grid(len(panels))
    summary = {WITHIN, BETWEEN}
    groups = sorted(set(df["group"]) - summary)
    if len(groups) > 6 and summary <= set(df["group"]):  # many pairs of groups: within/between
        groups = [WITHIN, BETWEEN]
    r = df.iloc[0]
    model = f"{model_name(df)}: " if "model" in df else ""
    what = {"cross_modal": "speech vs text, same language",
            "cross_lingual": "across languages, same modality"}.get(r["analysis"], r["analysis"])
    note = decoder_note(df, [stack for stack, _ in panels])
    headline(fig, f"{model}{title or what}, by {str(r['grouping']).replace('_', ' ')}, "
                  f"{r['measure']}\nmean chance-adjusted score, {float(r['ci_level']):.0%} "
                  f"{r['ci_method']}; dashed: random-weights control; dotted: chance"
                  + (f"\n{note}" if note else ""))
    for ax, (stack, modality) in zip(axs, panels, strict=True):
        part = df[(df["stack"] == stack) & (df["modality"] == modality)]
        for g, group in enumerate(groups):
            sub = part[part["group"] == group].sort_values("depth")
            if not len(sub):
                continue
            colour = f"C{g}"
            ax.plot(sub["depth"], sub["adjusted"], "o-", color=colour,
                    label=f"{group} ({langs_label(sub)})")
            band(ax, sub, colour, 0.2)
            if sub["control_adjusted"].notna().any():
                ax.plot(sub["depth"], sub["control_adjusted"], "--", color=colour, lw=0.8)
        ax.axhline(0, color="k", ls=":", lw=0.8)
        on = f" ({modality})" if r["analysis"] == "cross_lingual" else ""
        ax.set_title(wrap(f"{stack_label(stack)}{on}", PANEL))
        ax.set_xlabel("depth (block index)")
        integer_ticks(ax)
        ax.set_ylim(min(-0.1, float(np.nanmin(part["adjusted"])) - 0.05), 1.02)
    fig.supylabel("chance-adjusted score")
    shared_legend(fig, axs, ncol=2)
    return fig


@paper_style
def plot_language_matrix(df, depth: int, modality: str, title: str = "", order=None,
                         blocks=None):
    """Language-by-language heatmap of cross-lingual scores at one depth (a column wide up to
    16 languages, page wide beyond). Chance-adjusted scores sit on a fixed scale anchored at
    chance (0: white; -0.25..1), raw scores on 0..1; cells above chance (permutation z >= 2)
    carry a dot, and the random-weights control's mean is a black line on the colour bar.
    ``order`` fixes the languages' order (e.g. by family, then genus); ``blocks`` (lang ->
    block, e.g. family) draws lines between consecutive blocks and names them on top."""
    sub = df[(df["depth"] == depth) & (df["modality_a"] == modality)]
    col, _, _, kind = score_column(sub)
    langs = list(order) if order else list(dict.fromkeys([*sub["lang_a"], *sub["lang_b"]]))
    langs = [lang for lang in langs if lang in set(sub["lang_a"]) | set(sub["lang_b"])]
    idx = {lang: i for i, lang in enumerate(langs)}
    mat = np.full((len(langs), len(langs)), np.nan)  # the diagonal (1 by definition) stays blank
    above = []
    for _, r in sub.iterrows():
        i, j = idx[r["lang_a"]], idx[r["lang_b"]]
        mat[i, j] = mat[j, i] = r[col]
        if "z" in r and r["z"] >= 2:
            above += [(i, j), (j, i)]
    stack = sub["stack"].iloc[0] if len(sub) else ""
    width = COLUMN if len(langs) <= 16 else PAGE
    note = decoder_note(sub, [stack])
    fig, ax = axes("", "", "", width=width, height=None, integer_x=False)
    headline(fig, "\n".join(filter(None, [
        title or f"cross-lingual similarity, {stack_label(stack)} on {modality}, depth {depth}",
        describe(sub), "(dot: above chance, z >= 2)", note])))
    import matplotlib
    from matplotlib.colors import Normalize

    norm: Normalize
    if kind:  # anchored at chance: white at 0, red above, blue below (clipped at -0.25)
        cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="lightgrey")
        norm = matplotlib.colors.TwoSlopeNorm(vmin=-0.25, vcenter=0.0, vmax=1.0)
    else:
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
        norm = matplotlib.colors.Normalize(vmin=0.0, vmax=1.0)
    im = ax.imshow(np.ma.masked_invalid(mat), norm=norm, cmap=cmap)
    for i, j in above:
        ax.plot(j, i, "k.", ms=max(1.5, 5 - len(langs) / 10))
    ax.set_xticks(range(len(langs)), langs, rotation=90)
    ax.set_yticks(range(len(langs)), langs)
    if blocks:
        runs: list[list[int]] = []
        for i, lang in enumerate(langs):
            if runs and blocks.get(lang) == blocks.get(langs[runs[-1][0]]):
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs[1:]:
            ax.axhline(run[0] - 0.5, color="k", lw=0.8)
            ax.axvline(run[0] - 0.5, color="k", lw=0.8)
        top = ax.secondary_xaxis("top")  # each block's name above its columns
        top.set_xticks([(run[0] + run[-1]) / 2 for run in runs],
                       [str(blocks.get(langs[run[0]], "?")) for run in runs],
                       rotation=90)
    control = f"control_{col}" if kind else "control_score"
    has_control = control in sub and sub[control].notna().any()
    label = (f"{kind}score (0 = chance)" if kind else "score") + (
        "\nline: the control's mean" if has_control else "")
    bar = fig.colorbar(im, ax=ax, label=wrap(label, 0.5 * width))
    if kind:
        bar.ax.set_yscale("linear")  # proportional, though the colours bend at chance
    if has_control:
        bar.ax.axhline(float(sub[control].mean()), color="k", lw=2)
    return fig
