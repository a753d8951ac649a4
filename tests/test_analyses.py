"""The paper's four analyses on a real store of synthetic activations with a known structure."""

import numpy as np
import pytest

from probekit import StoreWriter, open_store
from probekit.analysis import svcca
from probekit.analysis.grid import Comparer
from probekit.analysis.paper import cross_lingual, cross_modal, length_adaptation, modality_gap
from probekit.analysis.views import paired_views
from probekit.report import (
    plot_adaptation_bars,
    plot_language_matrix,
    plot_layer_curves,
    plot_modality_gap,
    save_figure,
    table,
    write_table,
)

LANGS = ["eng", "fra", "swh", "yor"]
DEPTH = 4
N = 120


def synthetic_store(path):
    """Speech and text share a sentence meaning; each modality adds a component shared by its
    languages; example noise shrinks with depth, is larger for speech and for two 'low-resource'
    languages; speech also has a length 'adaptor' point, less noisy for high-resource ones."""
    rng = np.random.default_rng(0)
    meaning = rng.standard_normal((N, 12))
    proj = [rng.standard_normal((12, 24)) for _ in range(DEPTH)]
    # a per-modality component shared by all languages: the modality gap exceeds the language gap
    modal = {m: rng.standard_normal((N, 6)) @ rng.standard_normal((6, 24))
             for m in ("speech", "text")}
    with StoreWriter(path, recipe_hash="synthetic", shard_size=64) as w:
        for mod in ("speech", "text"):
            for li, lang in enumerate(LANGS):
                layers = {}
                for d in range(DEPTH):
                    noise_scale = (2.0 if mod == "speech" else 1.0) * (1.0 - d / DEPTH) + 0.2
                    noise_scale *= 1.5 if lang in ("swh", "yor") else 1.0
                    noise = rng.standard_normal((N, 24)) * noise_scale * 2
                    layers[f"{mod}_enc.{d}"] = (meaning @ proj[d] + modal[mod] + noise
                                                ).astype(np.float32)
                if mod == "speech":
                    layers["adaptor"] = (meaning @ proj[-1] + rng.standard_normal((N, 24))
                                         * (1.0 if li < 2 else 3.0)).astype(np.float32)
                meta = [{"id": f"{lang}/{mod}/{s}", "sentence": str(s), "lang": lang,
                         "modality": mod} for s in range(N)]
                w.add(meta, layers)
    return open_store(path)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis")
    store = synthetic_store(out / "store")
    views = paired_views(store, LANGS, ["speech", "text"])
    comparer = Comparer(views, "svcca", variance=0.99, n_perm=8, n_boot=20, seed=0)
    pairs = [(f"speech_enc.{d}", f"text_enc.{d}") for d in range(DEPTH)]
    cm = cross_modal(comparer, pairs, LANGS, stack="encoder")
    cl = cross_lingual(comparer, [f"speech_enc.{d}" for d in range(DEPTH)], LANGS, "speech",
                       stack="speech_encoder")
    cl += cross_lingual(comparer, [f"text_enc.{d}" for d in range(DEPTH)], LANGS, "text",
                        stack="text_encoder")
    adapt_rows = cross_modal(comparer, [("speech_enc.3", "text_enc.3"), ("adaptor", "text_enc.3")],
                             LANGS, stack="adaptor")
    la = length_adaptation(adapt_rows,
                           {"before adaptor": "speech_enc.3", "after adaptor": "adaptor"},
                           {"eng": "high", "fra": "high", "swh": "low", "yor": "low"})
    gap = modality_gap(cm, cl)
    return out, views, cm, cl, la, gap


def test_rows_equal_direct_svcca_and_carry_their_parameters(analysed):
    _, views, cm, cl, _, _ = analysed
    assert len(cm) == DEPTH * len(LANGS)
    assert len(cl) == 2 * DEPTH * len(LANGS) * (len(LANGS) - 1) // 2
    for row in cm[:6] + cl[:6]:
        direct = svcca(views((row["layer_a"], row["lang_a"], row["modality_a"])),
                       views((row["layer_b"], row["lang_b"], row["modality_b"])))
        assert abs(row["score"] - direct.score) < 1e-9
        assert (row["kx"], row["ky"]) == direct.k and row["n"] == N
        assert row["variance"] == 0.99 and row["dtype"] == "float64"
        assert row["chance"] < row["score"] and row["ci_low"] <= row["ci_high"]


def test_the_synthetic_structure_is_recovered(analysed):
    _, _, cm, cl, la, gap = analysed
    df = table(cm)
    by_depth = df.groupby("depth")["score"].mean()
    assert by_depth.is_monotonic_increasing  # cross-modal convergence over depth
    la = table(la).set_index(["point", "resource"])["score"]
    assert la[("after adaptor", "high")] > la[("before adaptor", "high")]
    assert la[("after adaptor", "high")] > la[("after adaptor", "low")]
    g = table(gap)
    assert (g["gap"] > 0).all()  # modalities differ more than languages here
    lingual = table(cl).groupby("modality_a")["score"].mean()
    assert lingual["speech"] < lingual["text"]  # speech differs more across languages


def test_tables_and_figures_are_written(analysed):
    out, _, cm, cl, la, gap = analysed
    files = write_table(table(cm + cl), out / "results" / "similarities")
    header = files[0].read_text().splitlines()[0]
    assert header.startswith("analysis,stack,depth,rel_depth,layer_a")
    assert {"adjusted", "z", "ci_method", "ci_level", "flags", "row_seed"} <= set(header.split(","))
    figs = [plot_layer_curves(table(cm)), plot_language_matrix(table(cl), 3, "speech"),
            plot_adaptation_bars(table(la)), plot_modality_gap(table(gap))]
    for i, fig in enumerate(figs):
        for path in save_figure(fig, out / "figures" / f"fig{i}"):
            assert path.stat().st_size > 5_000
