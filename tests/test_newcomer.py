"""A newcomer's two tasks, done for real: a measure with one option and an analysis, each
defined here in one place, registered, run through a recipe and counted by the dry run."""

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probekit.analysis import MEASURES, Measure, register_measure
from probekit.analysis.plan import Comparison
from probekit.pipeline.analyses import ANALYSES, Analysis, register_analysis
from probekit.run import main
from probekit.store import open_store

PLUGINS = Path(__file__).resolve().parent / "plugins"
SPEC = """\
wrapper: toy
checkpoint: none
model_class: ToyEncoder
modalities: [text]
stacks:
  blocks: ["blocks.*"]
tiny: {seed: 0, width: 16, depth: 3}
"""


# -- (a) a measure with one option: one function, one registration ---------------------------
def mean_gap(x, y, *, scale: float = 1.0) -> float:
    """Minus the mean absolute gap between the two views' column means, times ``scale``."""
    return -scale * float(np.abs(x.mean(0) - y.mean(0)).mean())


# -- (b) an analysis: one class, one registration ----------------------------------------------
class RowNorms(Analysis):
    """The mean row norm of each language's view at the last layer of the stacks that
    ``analysis.extra.row_norms.stacks`` names, and a figure of them."""

    name = "row_norms"

    def plan(self, ctx):
        stacks = ctx.analysis.extra.get(self.name, {}).get("stacks", [])
        return [Comparison(self.name, s, layers=tuple(ctx.of[s][-1:]), modality=m)
                for s in stacks for m in ctx.modalities]

    def rows(self, c, ctx):
        views = ctx.views_of(ctx.languages, [c.modality])
        rows = [{"analysis": self.name, "stack": c.stack, "layer": c.layers[0], "lang": lang,
                 "modality": c.modality, "mean_norm": float(np.linalg.norm(
                     views((c.layers[0], lang, c.modality)).astype(np.float64), axis=1).mean())}
                for lang in ctx.languages]
        ctx.progress(1)
        return rows

    def tables(self, rows, ctx):
        return {self.name: rows[self.name]} if rows[self.name] else {}

    def figures(self, results):
        table = results.table(self.name)
        if table is not None:
            yield self.name, lambda: table.plot.bar(x="lang", y="mean_norm").figure

    def count_figures(self, comparisons, measures, ctx):
        return int(any(c.analysis == self.name for c in comparisons))


@pytest.fixture
def newcomer(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))  # the toy model family (tests/plugins)
    register_measure(Measure("mean_gap", mean_gap))
    register_analysis(RowNorms())
    yield
    del MEASURES["mean_gap"], ANALYSES["row_norms"]
    for name in [m for m in sys.modules if m.startswith("toy_plugin")]:
        del sys.modules[name]


def write_project(folder: Path, extra: str) -> Path:
    (folder / "toy.yaml").write_text(SPEC)
    rows = ["sentence\tlang\ttext"] + [f"{i}\t{lang}\t{word} number {i} in {lang}"
                                       for i in range(16)
                                       for lang, word in (("eng", "sentence"), ("fra", "phrase"))]
    (folder / "s.tsv").write_text("\n".join(rows) + "\n")
    recipe = folder / "r.yaml"
    recipe.write_text(
        "name: toy\ndata: {source: manifest, path: s.tsv, languages: [eng, fra], "
        "modalities: [text]}\nmodel: {spec: toy.yaml, variant: tiny}\n"
        "analysis: {k: 2, n_perm: 2, cross_lingual: [blocks], "
        f"measures: [svcca, {{mean_gap: {{scale: 2.0}}}}]{extra}}}\n")
    return recipe


def test_a_new_measure_and_a_new_analysis_run_through_a_recipe(newcomer, tmp_path, capsys):
    recipe = write_project(tmp_path, ", extra: {row_norms: {stacks: [blocks]}}")
    assert main([str(recipe), "--dry-run"]) == 0
    planned = int(re.search(r"time: (\d+) figures", capsys.readouterr().out).group(1))
    out = tmp_path / "out"
    assert main([str(recipe), "--out", str(out), "--quiet"]) == 0

    sims = pd.read_csv(out / "results" / "similarities.csv")
    gap = sims[sims["measure"] == "mean_gap"]
    assert len(gap) == 3 and set(gap["measure_options"]) == {"scale=2.0"}
    store = open_store(out / "store")
    for _, row in gap.iterrows():  # the measure's score, recomputed here from the store
        x, y = (store.read(row["layer_a"], ids=[f"{lang}/text/{s}" for s in range(16)])
                .astype(np.float64) for lang in ("eng", "fra"))
        assert row["score"] == pytest.approx(-2.0 * np.abs(x.mean(0) - y.mean(0)).mean(),
                                             rel=1e-9)

    norms = pd.read_csv(out / "results" / "row_norms.csv")
    assert list(norms["layer"]) == ["blocks.2", "blocks.2"]
    eng = store.read("blocks.2", ids=[f"eng/text/{s}" for s in range(16)]).astype(np.float64)
    assert norms.loc[norms["lang"] == "eng", "mean_norm"].item() == pytest.approx(
        np.linalg.norm(eng, axis=1).mean(), rel=1e-9)

    drawn = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert "row_norms" in drawn and "cross_lingual_blocks_text_last_mean_gap" in drawn
    assert planned == len(drawn)  # the dry run counts with the objects that draw


def test_an_unregistered_analysis_in_a_recipe_is_one_clear_error(newcomer, tmp_path, capsys):
    recipe = write_project(tmp_path, ", extra: {row_norm: {}}")
    assert main([str(recipe), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "analysis.extra.row_norm: no analysis of that name is registered; did you mean " \
           "'row_norms'?" in err and "Traceback" not in err
