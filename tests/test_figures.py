"""Paper-grade figures and tables at the paper's scale (30 languages): group means with
intervals checked against a float64 t-interval computed here, colours that stay distinct, a
heatmap on a fixed chance-anchored scale with the cells above chance marked, text tables, and
every figure of the demo laid out for a paper (print size, fonts, nothing clipped or
overprinted, at most two panels per row)."""

import itertools
import os
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from scipy.stats import t as student_t

from probekit.analysis import group_means
from probekit.languages import PAPER_LANGUAGES, resource_level
from probekit.report import (
    language_colours,
    paper_table,
    plot_group_means,
    plot_language_matrix,
    plot_layer_curves,
    plot_modality_gap,
    save_figure,
    table,
    to_latex,
    to_markdown,
)

DEPTHS = 4
ROOT = Path(__file__).resolve().parent.parent
GROUPS = {lang: resource_level(lang) for lang in PAPER_LANGUAGES}


@pytest.fixture(scope="module")
def rows():
    """Cross-modal rows per language and depth, cross-lingual rows per pair and depth: high
    resource languages score higher; a few pairs sit at chance (z < 2)."""
    rng = np.random.default_rng(0)
    out = []
    base = {"model": "toy-30", "measure": "svcca", "n": 1000, "k": 50, "n_perm": 100}
    for depth in range(DEPTHS):
        for lang in PAPER_LANGUAGES:
            a = 0.2 + 0.15 * depth + (0.2 if GROUPS[lang] == "high" else 0) + rng.normal(0, .03)
            out.append({**base, "analysis": "cross_modal", "stack": "speech~text",
                        "depth": depth, "lang_a": lang, "lang_b": lang, "modality_a": "speech",
                        "modality_b": "text", "adjusted": a, "score": 0.3 + 0.7 * a,
                        "chance": 0.3, "z": 10.0, "adjusted_ci_low": a - .05,
                        "adjusted_ci_high": a + .05, "control_adjusted": rng.normal(0, .01)})
        for la, lb in itertools.combinations(PAPER_LANGUAGES, 2):
            a = 0.5 + 0.1 * (GROUPS[la] == GROUPS[lb] == "high") + rng.normal(0, 0.05)
            z = 1.0 if (la, lb) in {("eng", "deu"), ("swh", "cym")} else 5.0
            out.append({**base, "analysis": "cross_lingual", "stack": "text", "depth": depth,
                        "lang_a": la, "lang_b": lb, "modality_a": "text", "modality_b": "text",
                        "adjusted": a, "score": 0.3 + 0.7 * a, "chance": 0.3, "z": z,
                        "control_adjusted": rng.normal(0.02, .01)})
    return out


def t_interval(values, level=0.95):
    v = np.asarray(values, dtype=np.float64)
    half = student_t.ppf(0.5 + level / 2, len(v) - 1) * np.sqrt(
        np.sum((v - v.mean()) ** 2) / (len(v) - 1) / len(v))
    return v.mean(), v.mean() - half, v.mean() + half


def pair_jackknife(pairs, level):
    """The mean of pair values and its delete-one-language jackknife t-interval."""
    langs = sorted({x for a, b, _ in pairs for x in (a, b)})
    mean = np.mean([v for _, _, v in pairs])
    leave = np.array([np.mean([v for a, b, v in pairs if lang not in (a, b)]) for lang in langs])
    se = np.sqrt((len(langs) - 1) / len(langs) * np.sum((leave - leave.mean()) ** 2))
    half = student_t.ppf(0.5 + level / 2, len(langs) - 1) * se
    return mean, mean - half, mean + half


def test_group_means_are_jackknife_intervals_over_languages(rows):
    means = table(group_means(rows, GROUPS, "resource", 0.9))
    cm = means[(means["analysis"] == "cross_modal") & (means["depth"] == 2)]
    for _, g in cm.iterrows():
        values = [r["adjusted"] for r in rows if r["analysis"] == "cross_modal"
                  and r["depth"] == 2 and GROUPS[r["lang_a"]] == g["group"]]
        assert g["n_langs"] == len(values) == 15
        np.testing.assert_allclose([g["adjusted"], g["ci_low"], g["ci_high"]],
                                   t_interval(values, 0.9), rtol=1e-12)
    # cross-lingual: the mean over pairs, and a delete-one-language jackknife (a language left
    # out takes every pair it is in)
    cl = means[(means["analysis"] == "cross_lingual") & (means["depth"] == 0)]
    assert set(cl["group"]) == {"high~high", "high~low", "low~low", "(within)", "(between)"}
    between = cl[cl["group"] == "high~low"].iloc[0]
    pairs = [(r["lang_a"], r["lang_b"], r["adjusted"]) for r in rows
             if r["analysis"] == "cross_lingual" and r["depth"] == 0
             and GROUPS[r["lang_a"]] != GROUPS[r["lang_b"]]]
    np.testing.assert_allclose([between["adjusted"], between["ci_low"], between["ci_high"]],
                               pair_jackknife(pairs, 0.9), rtol=1e-12)
    assert between["n_rows"] == 15 * 15 and between["n_langs"] == 30
    pd_between = cl[cl["group"] == "(between)"].iloc[0]  # two groups: between is high~low
    assert pd_between["adjusted"] == between["adjusted"]
    within = cl[cl["group"] == "(within)"].iloc[0]
    pairs = [(r["lang_a"], r["lang_b"], r["adjusted"]) for r in rows
             if r["analysis"] == "cross_lingual" and r["depth"] == 0
             and GROUPS[r["lang_a"]] == GROUPS[r["lang_b"]]]
    np.testing.assert_allclose([within["adjusted"], within["ci_low"], within["ci_high"]],
                               pair_jackknife(pairs, 0.9), rtol=1e-12)
    # fewer than 3 languages: a mean, no interval (2 would span 12.7 standard errors)
    few = table(group_means(rows, {"eng": "a", "fra": "a", "deu": "b", "spa": "b", "ita": "b"}))
    pair = few[(few["analysis"] == "cross_modal") & (few["group"] == "a")]
    assert pair["adjusted"].notna().all() and pair["ci_low"].isna().all()
    assert few[(few["analysis"] == "cross_modal") & (few["group"] == "b")]["ci_low"].notna().all()


def test_thirty_languages_get_thirty_distinct_colours():
    colours = language_colours(PAPER_LANGUAGES, GROUPS)
    assert len(set(map(str, colours.values()))) == 30
    few = language_colours(["eng", "fra", "deu"])
    assert [c for c, _ in few.values()] == ["C0", "C1", "C2"]


def figure_folder(tmp_path) -> Path:
    """$PROBEKIT_FIGURES keeps the figures for a look; else the test's temporary folder."""
    return Path(os.environ.get("PROBEKIT_FIGURES", tmp_path))


def test_the_thirty_language_heatmap_is_anchored_at_chance_and_marks_cells_above_it(
        rows, tmp_path):
    import matplotlib.image

    sims = table(rows)
    fig = plot_language_matrix(sims[sims["analysis"] == "cross_lingual"], 3, "text",
                               order=sorted(PAPER_LANGUAGES, key=lambda g: (GROUPS[g], g)))
    ax = fig.axes[0]
    image = next(c for c in ax.get_children() if isinstance(c, matplotlib.image.AxesImage))
    assert (image.norm.vmin, image.norm.vcenter, image.norm.vmax) == (-0.25, 0.0, 1.0)
    dots = sum(len(line.get_xdata()) for line in ax.get_lines() if line.get_marker() == ".")
    assert dots == 2 * (30 * 29 // 2 - 2)  # every cell above chance, both triangles
    assert "toy-30" in figure_texts(fig) and "n=1000" in figure_texts(fig)
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["arb", "ces"]  # high first
    assert_paper_ready(fig, "heatmap_30")
    save_figure(fig, figure_folder(tmp_path) / "heatmap_30")


def test_layer_curves_of_thirty_languages_draw_group_means_chance_and_control(rows, tmp_path):
    sims = table(rows)
    fig = plot_layer_curves(sims[sims["analysis"] == "cross_modal"], "speech vs text",
                            groups=GROUPS)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "high mean (15 langs)" in labels and "low mean (15 langs)" in labels
    assert any(label.startswith("chance") for label in labels)
    assert any(label.startswith("control") for label in labels)
    assert_paper_ready(fig, "curves_30")
    save_figure(fig, figure_folder(tmp_path) / "curves_30")
    means = table(group_means(rows, GROUPS))
    means["model"] = "toy-30"
    fig = plot_group_means(means[means["analysis"] == "cross_modal"])
    assert len(fig.axes[0].collections) == 2  # an interval band per group
    assert_paper_ready(fig, "group_means_30")
    save_figure(fig, figure_folder(tmp_path) / "group_means_30")


def test_modality_gap_figure_labels_each_curve_with_its_side(tmp_path):
    from probekit.analysis import modality_gap

    rng = np.random.default_rng(1)
    cm, cl = [], []
    for depth, lang in itertools.product(range(3), ["eng", "fra", "deu"]):
        cm.append({"analysis": "cross_modal", "stack": "speech_encoder~text_encoder",
                   "depth": depth, "measure": "svcca", "layer_a": f"s{depth}",
                   "layer_b": f"t{depth}", "lang_a": lang, "adjusted": rng.uniform(),
                   "score": 0.5, "control_adjusted": 0.0})
    for depth, (la, lb), (m, prefix) in itertools.product(
            range(3), itertools.combinations(["eng", "fra", "deu"], 2),
            [("speech", "s"), ("text", "t")]):
        cl.append({"analysis": "cross_lingual", "modality_a": m, "layer_a": f"{prefix}{depth}",
                   "measure": "svcca", "adjusted": rng.uniform(), "score": 0.5,
                   "control_adjusted": 0.01, "lang_a": la, "lang_b": lb})
    gap = table(modality_gap(cm, cl))
    fig = plot_modality_gap(gap)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert {"speech vs text, same language", "across languages, speech",
            "across languages, text"} <= set(labels)
    assert fig.axes[0].get_title().split() == ["speech", "encoder", "vs", "text", "encoder"]
    assert len(fig.axes[0].collections) == 3  # three interval bands
    assert gap["cross_lingual_speech_control"].notna().all()
    assert_paper_ready(fig, "modality_gap")


def test_paper_table_as_markdown_and_latex(rows):
    means = table(group_means(rows, GROUPS))
    wide = paper_table(means)
    assert len(wide) == 2 * DEPTHS  # cross-modal and cross-lingual rows, per depth
    cell = wide[wide["analysis"] == "cross_modal"].iloc[0]["high (n=15)"]
    low, high = map(float, cell.split("[")[1].rstrip("]").split(","))
    assert low < float(cell.split()[0]) < high
    md = to_markdown(wide).splitlines()
    assert len(md) == 2 + len(wide) and md[1].count("---") == len(wide.columns)
    tex = to_latex(wide, "SVCCA by resource_level")
    assert r"\toprule" in tex and r"resource\_level" in tex
    assert tex.count(r" \\") == 1 + len(wide)


def figure_texts(fig):
    """Every title and text of a figure."""
    texts = [t.get_text() for t in fig.texts] + [ax.get_title() for ax in fig.axes]
    return " | ".join(texts + ([fig._suptitle.get_text()] if fig._suptitle else []))


def test_titles_say_random_weights_and_agreement_of_few_points_is_not_meaningful(rows):
    """A random or tiny variant's figures say "(random weights)" (its tables' revision stamp);
    a Spearman over curves of 3 points is marked as not meaningful."""
    from probekit.analysis import measure_agreement
    from probekit.report import plot_measure_agreement

    random = table([{**r, "revision": "random weights"} for r in rows])
    real = table([{**r, "revision": "main"} for r in rows])
    curves = random[random["analysis"] == "cross_modal"]
    assert "toy-30 (random weights)" in figure_texts(plot_layer_curves(curves, "x"))
    assert "(random weights)" not in figure_texts(
        plot_layer_curves(real[real["analysis"] == "cross_modal"], "x"))
    matrix = plot_language_matrix(random[random["analysis"] == "cross_lingual"], 1, "text")
    assert "toy-30 (random weights)" in figure_texts(matrix)
    means = table(group_means(rows, GROUPS))
    means["model"], means["revision"] = "toy-30", "random weights"
    assert "toy-30 (random weights): " in figure_texts(
        plot_group_means(means[means["analysis"] == "cross_modal"]))
    two = [{**r, "measure": m, "adjusted": r["adjusted"] + (0.01 * r["depth"] if m == "b" else 0)}
           for r in rows if r["depth"] < 3 for m in ("a", "b")]
    agreement = table(measure_agreement(two))
    assert (agreement.loc[agreement["kind"] == "layer curves", "points"] == 3).all()
    assert not agreement.loc[agreement["kind"] == "layer curves", "meaningful"].any()
    assert agreement.loc[agreement["kind"] == "language matrices", "meaningful"].all()
    agreement["model"], agreement["revision"] = "toy-30", "random weights"
    text = figure_texts(plot_measure_agreement(agreement))
    assert "toy-30 (random weights): " in text and "not meaningful: layer curves of 3" in text


def drawn_texts(fig):
    """Every text matplotlib draws for ``fig`` (the tick labels of the ticks in view, legend
    entries, titles), with its extent in pixels."""
    import matplotlib.text
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn, draw = [], matplotlib.text.Text.draw

    def record(self, renderer):
        draw(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    with mock.patch.object(matplotlib.text.Text, "draw", record):
        FigureCanvasAgg(fig).draw()
    return drawn


def assert_paper_ready(fig, name):
    """Drawn at a column's (3.3 in) or the page's (6.9 in) width; every text at least 7 pt at
    that size, inside the canvas and clear of every other text; at most two panels per row."""
    width = fig.get_figwidth()
    assert np.isclose(width, 3.3) or np.isclose(width, 6.9), (name, width)
    texts = drawn_texts(fig)
    assert texts, name
    canvas = fig.bbox
    for text, box in texts:
        what = (name, text.get_text()[:60])
        assert text.get_fontsize() >= 7, what
        assert (box.x0 >= -0.5 and box.y0 >= -0.5 and box.x1 <= canvas.x1 + 0.5
                and box.y1 <= canvas.y1 + 0.5), (*what, "clipped", box.bounds, canvas.bounds)
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        dx = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        dy = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert dx <= 1 or dy <= 1, (name, "overprinted", a.get_text()[:60], b.get_text()[:60])
    panels = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is None]
    rows = Counter(round(ax.get_position().y0, 3) for ax in panels)
    assert max(rows.values()) <= 2, (name, rows)


@pytest.mark.reference_leg  # matplotlib is pinned alike in both locks
def test_every_figure_of_the_demo_is_laid_out_for_a_paper(demo_run):
    """Each of the demo's figures, drawn again from its tables: paper-ready, integer block ticks,
    and a caption line on the decoder's panels, whose examples all read one English target."""
    from probekit.pipeline.context import resolve_run
    from probekit.pipeline.figures import figure_makers
    from probekit.recipe import load_recipe

    out, _ = demo_run
    makers = figure_makers(resolve_run(load_recipe(ROOT / "recipes" / "demo.yaml"), out))
    assert len(makers) >= 20
    note = "note: the decoder reads the eng sentence for every example"
    noted = 0
    for stem, make in makers:
        fig = make()
        assert_paper_ready(fig, stem)
        for ax in fig.axes:
            if "depth" in ax.get_xlabel():
                ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
                assert np.allclose(ticks, np.round(ticks)), (stem, ticks)
        title = " ".join(" ".join(t.get_text() for t in [fig._suptitle] if t)
                         .split() + " ".join(ax.get_title() for ax in fig.axes).split())
        if "decoder" in stem:
            assert note in title, (stem, title)
            noted += 1
        elif "encoder" in stem:
            assert "note: the decoder" not in title, stem
    assert noted >= 3


@pytest.mark.reference_leg  # beyond.yaml runs in the reference leg only
def test_every_figure_of_the_beyond_recipe_is_laid_out_for_a_paper(beyond_run):
    from probekit.pipeline.context import resolve_run
    from probekit.pipeline.figures import figure_makers
    from probekit.recipe import load_recipe

    out, _ = beyond_run
    makers = figure_makers(resolve_run(load_recipe(ROOT / "recipes" / "beyond.yaml"), out))
    assert any("code_switching" in stem for stem, _ in makers)
    assert any("length" in stem for stem, _ in makers)
    for stem, make in makers:
        assert_paper_ready(make(), stem)
