"""Tables and figures from analysis rows. Plot functions return matplotlib Figures and
:func:`paper_table`, :func:`to_markdown`, :func:`to_latex` return text; only :func:`save_figure`
(PNG and PDF) and :func:`write_table` (CSV, parquet when pyarrow is present) write files."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .analysis.paper import BETWEEN, FEWEST_FOR_AN_INTERVAL, MEAN_CI, WITHIN


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
    """How the rows of ``df`` were computed, for a figure title: model, measure, n, k or variance
    rule, chance permutations and the interval's method and level."""
    if not len(df):
        return ""
    r = df.iloc[0]
    parts = [str(r["model"])] if "model" in df else []
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


def _score_column(df) -> tuple[str, str, str, str]:
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


def plot_layer_curves(df, title: str = "", by: str = "lang_a", groups=None):
    """Chance-adjusted score per depth, one line per ``by`` value; chance (0 after adjustment)
    dotted and the random-weights control (mean over lines) dashed. Up to 5 lines each carry
    their interval band; with more (bands would merge), the languages are thin lines coloured
    by group (``groups``: lang -> group) and each group's mean is drawn thick with its interval
    over languages."""
    col, lo, hi, kind = _score_column(df)
    measure = df["measure"].iloc[0] if "measure" in df and len(df) else "score"
    names = list(dict.fromkeys(df[by]))
    many = len(names) > 5
    fig, ax = _axes(f"{title or df['analysis'].iloc[0]}\n{describe(df)}",
                    "depth (block index)", f"{kind}{measure}",
                    figsize=(9.5 if many else 7.5, 4.8 if many else 4.4))
    ax.title.set_fontsize(9)
    colours = language_colours(names, groups if many else None)
    for name, sub in df.groupby(by, sort=False):
        sub = sub.sort_values("depth")
        colour, style = colours[name]
        ax.plot(sub["depth"], sub[col], ls=style, color=colour, lw=0.9 if many else 1.5,
                marker=None if many else "o", ms=3, alpha=0.8 if many else 1, label=str(name))
        if not many and lo in sub and sub[lo].notna().any():
            ax.fill_between(sub["depth"], sub[lo], sub[hi], alpha=0.2, color=colour)
    if many and groups and kind:
        import matplotlib

        from .analysis import group_means

        means = table(group_means(df.to_dict("records"), groups))
        for g, (group, sub) in enumerate(means.groupby("group")):
            sub = sub.sort_values("depth")
            colour = matplotlib.colormaps[GROUP_MAPS[g % len(GROUP_MAPS)]](0.85)
            ax.plot(sub["depth"], sub["adjusted"], color=colour, lw=3,
                    label=f"{group} mean ({_langs(sub)})")
            _band(ax, sub, colour, 0.25)
    _chance_and_control(ax, df, col, kind)
    ax.set_ylim(min(-0.1, float(np.nanmin(df[col])) - 0.05), 1.02)
    if many:
        ax.legend(fontsize=6, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _langs(sub) -> str:
    n = int(sub["n_langs"].max())
    return f"{n} langs" + (", too few for an interval" if n < FEWEST_FOR_AN_INTERVAL else "")


def _band(ax, sub, colour, alpha: float) -> None:
    """A group's interval over languages (none for fewer than 3 languages)."""
    if int(sub["n_langs"].max()) >= FEWEST_FOR_AN_INTERVAL:
        ax.fill_between(sub["depth"], sub["ci_low"], sub["ci_high"], color=colour, alpha=alpha)


def _chance_and_control(ax, df, col: str, kind: str) -> None:
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


def plot_group_means(df, title: str = ""):
    """Group means (a ``group_means`` table of one measure and analysis) per depth: one panel
    per stack and modality, one line per group with its interval over languages, the control
    dashed in the group's colour, chance (0) dotted. Cross-lingual pairs of more than 6 pairs
    of groups are drawn as within and between groups."""
    import matplotlib.ticker
    from matplotlib.figure import Figure

    panels = list(dict.fromkeys(zip(df["stack"], df["modality"], strict=True)))
    fig = Figure(figsize=(4.2 * len(panels) + 0.6, 4.2))
    summary = {WITHIN, BETWEEN}
    groups = sorted(set(df["group"]) - summary)
    if len(groups) > 6 and summary <= set(df["group"]):  # many pairs of groups: within/between
        groups = [WITHIN, BETWEEN]
    r = df.iloc[0]
    model = f"{r['model']}: " if "model" in df else ""
    what = {"cross_modal": "speech vs text, same language",
            "cross_lingual": "across languages, same modality"}.get(r["analysis"], r["analysis"])
    fig.suptitle(f"{model}{title or what}, by {str(r['grouping']).replace('_', ' ')}, "
                 f"{r['measure']}\nmean chance-adjusted score, {float(r['ci_level']):.0%} "
                 f"{r['ci_method']}; dashed: random-weights control; dotted: chance", fontsize=9)
    for p, (stack, modality) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p + 1)
        part = df[(df["stack"] == stack) & (df["modality"] == modality)]
        for g, group in enumerate(groups):
            sub = part[part["group"] == group].sort_values("depth")
            if not len(sub):
                continue
            colour = f"C{g}"
            ax.plot(sub["depth"], sub["adjusted"], "o-", ms=3, color=colour,
                    label=f"{group} ({_langs(sub)})")
            _band(ax, sub, colour, 0.2)
            if sub["control_adjusted"].notna().any():
                ax.plot(sub["depth"], sub["control_adjusted"], "--", color=colour, lw=1)
        ax.axhline(0, color="k", ls=":", lw=1)
        on = f" ({modality})" if r["analysis"] == "cross_lingual" else ""
        ax.set_title(f"{stack_label(stack)}{on}", fontsize=8)
        ax.set_xlabel("depth (block index)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylim(min(-0.1, float(np.nanmin(part["adjusted"])) - 0.05), 1.02)
        ax.legend(fontsize=7)
    fig.axes[0].set_ylabel("chance-adjusted score")
    fig.tight_layout()
    return fig


def plot_language_matrix(df, depth: int, modality: str, title: str = "", order=None,
                         blocks=None):
    """Language-by-language heatmap of cross-lingual scores at one depth. Chance-adjusted scores
    sit on a fixed scale anchored at chance (0: white; -0.25..1), raw scores on 0..1; cells above
    chance (permutation z >= 2) carry a dot, and the random-weights control's mean is marked
    on the colour bar. ``order`` fixes the languages' order (e.g. by family, then genus);
    ``blocks`` (lang -> block, e.g. family) draws lines between consecutive blocks and names
    them on the right."""
    sub = df[(df["depth"] == depth) & (df["modality_a"] == modality)]
    col, _, _, kind = _score_column(sub)
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
    size = 0.32 * len(langs)
    fig, ax = _axes(title or f"cross-lingual similarity, {stack_label(stack)} on {modality}, "
                    f"depth {depth}\n{describe(sub)}\n(dot: above chance, z >= 2)", "", "",
                    figsize=(2.6 + size, 1.6 + size))
    ax.title.set_fontsize(8)
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
    fontsize = 7 if len(langs) <= 30 else 5
    ax.set_xticks(range(len(langs)), langs, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(len(langs)), langs, fontsize=fontsize)
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
                       rotation=30, ha="left", fontsize=fontsize)
    bar = fig.colorbar(im, ax=ax, fraction=0.046,
                       label=f"{kind}score (0 = chance)" if kind else "score")
    if kind:
        bar.ax.set_yscale("linear")  # proportional, though the colours bend at chance
    control = f"control_{col}" if kind else "control_score"
    if control in sub and sub[control].notna().any():
        level = float(sub[control].mean())
        bar.ax.axhline(level, color="k", lw=2)
        bar.ax.text(1.6, level, "control", fontsize=6, va="center",
                    transform=bar.ax.get_yaxis_transform())
    fig.tight_layout()
    return fig


def plot_code_switching(df, title: str = "code-switched inputs vs their two languages"):
    """A ``code_switching`` table of one measure, per depth: one panel per stack and modality,
    the mixed inputs' chance-adjusted similarity to the language they start in (solid) and to
    the one they go on in (dash-dot), a colour per pair of languages; controls dotted in the
    same colour, chance (0) a thin black line."""
    import matplotlib.ticker
    from matplotlib.figure import Figure

    panels = list(dict.fromkeys(zip(df["stack"], df["modality"], strict=True)))
    fig = Figure(figsize=(4.2 * len(panels) + 0.6, 4.2))
    r = df.iloc[0]
    model = f"{r['model']}: " if "model" in df else ""
    fig.suptitle(f"{model}{title}, {r['measure']}\nchance-adjusted score; solid: to the first "
                 "language, dash-dot: to the second; dotted: random-weights control", fontsize=9)
    mixes = list(dict.fromkeys(df["mixed"]))
    for p, (stack, modality) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p + 1)
        part = df[(df["stack"] == stack) & (df["modality"] == modality)]
        for m, mixed in enumerate(mixes):
            sub = part[part["mixed"] == mixed].sort_values("depth")
            if not len(sub):
                continue
            first, second = sub["first"].iloc[0], sub["second"].iloc[0]
            for side, style, lang in (("first", "o-", first), ("second", "s-.", second)):
                ax.plot(sub["depth"], sub[f"to_{side}"], style, ms=3, color=f"C{m}",
                        label=f"{mixed} vs {lang}")
                control = f"to_{side}_control"
                if control in sub and sub[control].notna().any():
                    ax.plot(sub["depth"], sub[control], ":", color=f"C{m}", lw=1)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"{stack_label(stack)} ({modality})", fontsize=8)
        ax.set_xlabel("depth (block index)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    fig.axes[0].set_ylabel("chance-adjusted score")
    fig.tight_layout()
    return fig


def plot_length_bins(df, title: str = "cross-modal similarity by length"):
    """A ``length_bins`` table of one measure: one panel per point (the adaptation points, e.g.
    before and after the length adaptor, and the last block of each cross-modal stack), the
    length bins on x, one line per resource level with its interval over languages, its
    control dashed in the same colour, chance (0) dotted."""
    import pandas as pd
    from matplotlib.figure import Figure

    last = df[df["analysis"] == "cross_modal"]
    last = last[last["depth"] == last.groupby("stack")["depth"].transform("max")]
    df = pd.concat([df[df["analysis"] != "cross_modal"], last])
    panels = list(dict.fromkeys(zip(df["stack"], df["point"], strict=True)))
    bins = df.drop_duplicates("bin_index").sort_values("bin_index")
    fig = Figure(figsize=(3.8 * len(panels) + 0.6, 4.2))
    r = df.iloc[0]
    model = f"{r['model']}: " if "model" in df else ""
    fig.suptitle(f"{model}{title}, {r['measure']}, {int(r['n_sentences'])} sentences per bin\n"
                 f"mean chance-adjusted score, {float(r['ci_level']):.0%} {MEAN_CI}; dashed: "
                 "random-weights control; dotted: chance", fontsize=9)
    for p, (stack, point) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p + 1)
        part = df[(df["stack"] == stack) & (df["point"] == point)]
        for g, group in enumerate(sorted(set(part["group"]))):
            sub = part[part["group"] == group].sort_values("bin_index")
            ax.errorbar(sub["bin_index"], sub["adjusted"],
                        yerr=[sub["adjusted"] - sub["ci_low"], sub["ci_high"] - sub["adjusted"]],
                        fmt="o-", ms=4, capsize=3, color=f"C{g}",
                        label=f"{group} ({_langs(sub)})")
            if sub["control_adjusted"].notna().any():
                ax.plot(sub["bin_index"], sub["control_adjusted"], "--", color=f"C{g}", lw=1)
        ax.axhline(0, color="k", ls=":", lw=1)
        where = point if stack == "adaptation" else f"{stack_label(stack)}, {point}"
        ax.set_title(where, fontsize=8)
        ax.set_xticks(list(bins["bin_index"]), list(bins["length_bin"]), fontsize=7)
        ax.set_xlabel(f"length bin ({bins['bin_unit'].iloc[0]})")
        ax.legend(fontsize=7)
    fig.axes[0].set_ylabel("chance-adjusted score")
    fig.tight_layout()
    return fig


def plot_adaptation_bars(df, title: str = "cross-modal similarity by resource level"):
    """Bars per point (e.g. before / after the length adaptor), grouped by resource level: the
    mean chance-adjusted score over languages with its interval, the control as a grey diamond."""
    points = list(dict.fromkeys(df["point"]))
    levels = sorted(df["resource"].unique())
    measure = df["measure"].iloc[0] if "measure" in df else "score"
    model = f"{df['model'].iloc[0]}: " if "model" in df else ""
    fig, ax = _axes(f"{model}{title} ({measure})\nmean over languages, 95% {MEAN_CI}; "
                    "diamond: random-weights control; dotted: chance", "",
                    f"chance-adjusted {measure}")
    ax.title.set_fontsize(9)
    width = 0.8 / max(len(levels), 1)
    for j, level in enumerate(levels):
        sub = df[df["resource"] == level].set_index("point").reindex(points)
        x = np.arange(len(points)) + (j - (len(levels) - 1) / 2) * width
        err = np.vstack([sub["adjusted"] - sub["ci_low"], sub["ci_high"] - sub["adjusted"]])
        if "n_langs" in sub and sub["n_langs"].max() < FEWEST_FOR_AN_INTERVAL:
            err[:] = 0  # the table keeps the interval; drawn, it would say nothing
        n = f" ({_langs(sub)})" if "n_langs" in sub else ""
        ax.bar(x, sub["adjusted"], width, yerr=np.nan_to_num(err), capsize=3,
               label=f"{level}-resource{n}")
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
    """One panel per cross-modal stack pair, per depth: chance-adjusted cross-modal similarity
    (same language, speech vs text) against cross-lingual similarity on each side (same
    modality, language pairs), each with its interval over languages and its random-weights
    control (dashed, same colour); chance (0) dotted."""
    import matplotlib.ticker
    from matplotlib.figure import Figure

    stacks = list(dict.fromkeys(df["stack"]))
    fig = Figure(figsize=(4.6 * len(stacks) + 0.6, 4.4))
    r = df.iloc[0]
    model = f"{r['model']}: " if "model" in df else ""
    level = f"{float(r['ci_level']):.0%} {r['ci_method']}" if "ci_method" in df else "intervals"
    fig.suptitle(f"{model}{title}, {r['measure']}\nmean chance-adjusted score, {level}; "
                 "dashed: random-weights control; dotted: chance", fontsize=9)
    for p, stack in enumerate(stacks):
        ax = fig.add_subplot(1, len(stacks), p + 1)
        sub = df[df["stack"] == stack].sort_values("depth")
        speech, _, text = str(stack).partition("~")
        text = text or speech
        for col, colour, label in (
                ("cross_modal", "C0", "speech vs text, same language"),
                ("cross_lingual_speech", "C1", f"across languages, speech ({stack_label(speech)})"),
                ("cross_lingual_text", "C2", f"across languages, text ({stack_label(text)})")):
            if col not in sub or sub[col].isna().all():
                continue
            ax.plot(sub["depth"], sub[col], "o-", ms=3, color=colour, label=label)
            ax.fill_between(sub["depth"], sub[f"{col}_ci_low"], sub[f"{col}_ci_high"],
                            alpha=0.2, color=colour)
            control = f"{col}_control"
            if control in sub and sub[control].notna().any():
                ax.plot(sub["depth"], sub[control], "--", color=colour, lw=1)
        ax.axhline(0, color="k", ls=":", lw=1)
        ax.set_title(stack_label(stack), fontsize=8)
        ax.set_xlabel("depth (block index)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        values = sub[[c for c in ("cross_modal", "cross_lingual_speech", "cross_lingual_text")
                      if c in sub]].values
        ax.set_ylim(min(-0.1, float(np.nanmin(values)) - 0.05), 1.02)
        ax.legend(fontsize=6)
    fig.axes[0].set_ylabel("chance-adjusted score")
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


def paper_table(df):
    """A ``group_means`` table laid out for a paper: one row per analysis, stack, modality,
    measure and depth, one column per group holding "mean [low, high]" (chance-adjusted, with
    the interval over languages), and the control's mean beside them."""
    import pandas as pd

    keys = ["analysis", "stack", "modality", "measure", "depth"]
    out = []
    for key, sub in df.groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True))
        row["stack"] = stack_label(row["stack"])
        for _, r in sub.iterrows():
            row[f"{r['group']} (n={int(r['n_langs'])})"] = (
                f"{r['adjusted']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
                if np.isfinite(r["ci_low"]) else f"{r['adjusted']:.2f}")
        control = sub["control_adjusted"].mean()
        row["control"] = f"{control:.2f}" if np.isfinite(control) else "-"
        out.append(row)
    return pd.DataFrame(out).fillna("-")


def to_markdown(df) -> str:
    """``df`` as a GitHub-flavoured markdown table."""
    head = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def to_latex(df, caption: str = "") -> str:
    """``df`` as a LaTeX ``table`` with booktabs rules (``\\usepackage{booktabs}``)."""
    def tex(v) -> str:
        text = str(v)
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                     ("#", r"\#"), ("~", r"\textasciitilde{}")):
            text = text.replace(a, b)
        return text
    cols = "l" * 4 + "r" * (len(df.columns) - 4)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{cols}}}",
             r"\toprule", " & ".join(tex(c) for c in df.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(tex(v) for v in row) + r" \\" for row in df.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{tex(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
