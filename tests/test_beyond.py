"""Beyond the paper: the language registry and named groups, paragraphs, code switching, length
bins and family distance; each checked against values computed here, independently."""

import logging
import re
from itertools import combinations

import numpy as np
import pytest
import soundfile

from probekit import StoreWriter, open_store
from probekit.analysis import (
    Comparer,
    code_switched,
    code_switching,
    family_distance_means,
    make_bins,
    paired_views,
    sentence_lengths,
    svcca,
)
from probekit.data import DataError, load_example_audio
from probekit.languages import (
    DISTANCES,
    FLEURS,
    PAPER_LANGUAGES,
    REGISTRY,
    LanguageError,
    expand_languages,
    family,
    family_distance,
    genus,
    script,
)
from probekit.recipe import load_recipe
from probekit.transforms import (
    code_switched as mix,
    group_sentences,
    switch_point,
    switch_text,
    units,
)

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


# -- the registry ------------------------------------------------------------------------------
HAND_CHECKED = {  # code: (family (Glottolog), genus (WALS), script (ISO 15924), FLEURS config)
    "eng": ("Indo-European", "Germanic", "Latn", "en_us"),
    "cmn": ("Sino-Tibetan", "Chinese", "Hans", "cmn_hans_cn"),
    "swh": ("Atlantic-Congo", "Bantu", "Latn", "sw_ke"),
    "kor": ("Koreanic", "Korean", "Hang", "ko_kr"),
    "fin": ("Uralic", "Finnic", "Latn", "fi_fi"),
    "arb": ("Afro-Asiatic", "Semitic", "Arab", "ar_eg"),
    "tur": ("Turkic", "Turkic", "Latn", "tr_tr"),
    "hin": ("Indo-European", "Indic", "Deva", "hi_in"),
    "jpn": ("Japonic", "Japanese", "Jpan", "ja_jp"),
    "vie": ("Austroasiatic", "Vietic", "Latn", "vi_vn"),
    "kat": ("Kartvelian", "Kartvelian", "Geor", "ka_ge"),
    "yor": ("Atlantic-Congo", "Defoid", "Latn", "yo_ng"),
    "tel": ("Dravidian", "Dravidian", "Telu", "te_in"),
    "rus": ("Indo-European", "Slavic", "Cyrl", "ru_ru"),
}


def test_the_registry_holds_every_fleurs_language_with_checked_entries():
    assert len(REGISTRY) == 102 and len(set(FLEURS.values())) == 102
    assert set(PAPER_LANGUAGES) <= set(REGISTRY)
    for code, (fam, gen, scr, config) in HAND_CHECKED.items():
        assert (family(code), genus(code), script(code), FLEURS[code]) == (fam, gen, scr, config)
    for lang in REGISTRY.values():  # the NLLB code names the same script
        assert lang.nllb.endswith("_" + lang.script), lang
    assert family("xyz") == genus("xyz") == script("xyz") == ""


def test_family_distance_and_named_groups():
    assert [family_distance("eng", x) for x in ("deu", "fra", "swh")] == [0, 1, 2]
    assert family_distance("eng", "xyz") is None
    assert expand_languages(["family:Niger-Congo"]) == expand_languages(["family:Atlantic-Congo"])
    assert "swh" in expand_languages(["family:Niger-Congo"])
    assert expand_languages(["paper30"]) == PAPER_LANGUAGES
    assert expand_languages(["low_resource", "swh", "eng"])[-1] == "eng"  # each once
    assert set(expand_languages(["script:Cyrl"])) >= {"rus", "ukr", "bul", "kaz"}
    with pytest.raises(LanguageError, match="did you mean family:Indo-European"):
        expand_languages(["family:Indo-Europian"])


def test_all_means_what_the_model_takes_and_the_data_has(caplog):
    with caplog.at_level(logging.INFO, "probekit"):
        demo = load_recipe(ROOT / "recipes/demo.yaml", ["data.languages=all"])
    assert sorted(demo.data.languages) == sorted(
        ["eng", "fra", "deu", "spa", "ita", "por", "nld", "pol", "swh", "cym"])
    assert "12 skipped: seamless_m4t_v2 does not take them as text and speech" in caplog.text
    assert "80 skipped: the data has none of them" in caplog.text
    # SONAR: speech needs one of its 57 speech encoders; the others are named as skipped
    caplog.clear()
    with caplog.at_level(logging.INFO, "probekit"):
        sonar = load_recipe(ROOT / "recipes/sonar.yaml", ["data.languages=[all]"])
    assert len(sonar.data.languages) == 57
    assert "45 skipped: sonar does not take them as text and speech input" in caplog.text
    assert "amh" in caplog.text and "amh" not in sonar.data.languages
    families = load_recipe(ROOT / "recipes/families.yaml")  # SeamlessM4T's speech and text
    seamless = [c for c, lang in REGISTRY.items() if lang.seamless_speech and lang.seamless_text]
    assert families.data.languages == seamless and len(seamless) == 90


# -- paragraphs --------------------------------------------------------------------------------
def test_paragraphs_are_consecutive_sentences_of_one_document():
    rows = [{"sentence": str(s), "lang": lang, "text": f"{lang} {s}.", "audio": f"/a/{lang}{s}"}
            for lang in ("eng", "cmn") for s in range(1, 11) if (lang, s) != ("cmn", 6)]
    documents = {str(s): "A" if s <= 5 else "B" for s in range(1, 11)}
    out, report = group_sentences(rows, ["eng", "cmn"], 2, 0.25, documents)
    # A: 1+2, 3+4 (5 left over); B: 6 missing in cmn, so 7+8, 9+10
    assert [r["sentence"] for r in out if r["lang"] == "eng"] == ["1+2", "3+4", "7+8", "9+10"]
    assert report == {"paragraphs": 4, "sentences_grouped": 8, "sentences_dropped": 1}
    eng = next(r for r in out if r["lang"] == "eng")
    cmn = next(r for r in out if r["lang"] == "cmn")
    assert eng["text"] == "eng 1. eng 2." and cmn["text"] == "cmn 1.cmn 2."  # no spaces in Hans
    assert eng["audio"] == ["/a/eng1", "/a/eng2"] and eng["audio_gap"] == 0.25
    # without documents, runs of consecutive ids
    out, _ = group_sentences(rows, ["eng", "cmn"], 3)
    assert [r["sentence"] for r in out if r["lang"] == "eng"] == ["1+2+3", "7+8+9"]


def _tone(path, seconds, freq):
    t = np.arange(int(seconds * 16000)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    soundfile.write(path, wave, 16000, subtype="FLOAT")
    return wave


def test_joined_and_cut_clips_are_exactly_the_parts_and_the_silence(tmp_path):
    a = _tone(tmp_path / "a.wav", 1.0, 220)
    b = _tone(tmp_path / "b.wav", 0.5, 330)
    joined = load_example_audio({"audio_path": [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")],
                                 "audio_gap": 0.3})
    np.testing.assert_array_equal(joined, np.concatenate([a, np.zeros(4800, np.float32), b]))
    cut = load_example_audio({"audio_path": [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")],
                              "audio_spans": [[0.0, 0.25], [0.125, None]]})
    np.testing.assert_array_equal(cut, np.concatenate([a[:4000], b[2000:]]))
    with pytest.raises(DataError, match="outside the clip"):
        load_example_audio({"audio_path": [str(tmp_path / "a.wav")],
                            "audio_spans": [[0.5, 2.0]]})


# -- code switching ----------------------------------------------------------------------------
def test_switch_points_at_words_clauses_and_characters():
    a, b = "one two three four five six", "un deux trois quatre cinq six"
    assert switch_point(a, "eng", b, "fra", 0.5) == (3, 3, "word")
    assert switch_text(a, "eng", b, "fra", 3, 3) == "one two three quatre cinq six"
    assert switch_point(a, "eng", b, "fra", 0.01)[:2] == (1, 1)  # at least a word of each
    # clause: the same clause in both, the boundary nearest the ratio
    a, b = "When it rains, we stay in, and read.", "Quand il pleut, nous restons, et lisons."
    assert switch_point(a, "eng", b, "fra", 0.5, "clause") == (3, 3, "clause")
    assert switch_point(a, "eng", b, "fra", 0.7, "clause") == (6, 5, "clause")
    assert switch_text(a, "eng", b, "fra", 6, 5) == "When it rains, we stay in, et lisons."
    assert switch_point("no clause here at all", "eng", b, "fra", 0.5, "clause")[2] == "word"
    # Chinese counts characters and joins them without spaces
    assert units("我们明天见", "cmn") == list("我们明天见")
    ka, kb, _ = switch_point("我们明天见", "cmn", "We meet tomorrow", "eng", 0.4)
    assert (ka, kb) == (2, 1) and switch_text("我们明天见", "cmn", "We meet tomorrow", "eng",
                                              ka, kb) == "我们 meet tomorrow"


def test_code_switched_speech_is_cut_at_the_aligned_words(tmp_path):
    clips = {lang: _tone(tmp_path / f"{lang}.wav", 2.0, f) for lang, f in (("eng", 200),
                                                                          ("fra", 300))}
    examples = [{"id": f"{lang}/{m}/1", "sentence": "1", "lang": lang, "modality": m,
                 "text": text, **({"audio_path": str(tmp_path / f"{lang}.wav")}
                                  if m == "speech" else {})}
                for lang, text in (("eng", "a b c d"), ("fra", "w x y z"))
                for m in ("text", "speech")]
    (tmp_path / "align.tsv").write_text("sentence\tlang\tword_ends\n1\teng\t0.5 1.0 1.5 2.0\n"
                                        "1\tfra\t0.25 0.75 1.25 1.75\n")
    out, made = mix(examples, [["eng", "fra"]], 0.5, "word", ["text", "speech"],
                    alignments=tmp_path / "align.tsv")
    assert made == {"pairs": 1, "text": 1, "speech": 1}
    text, speech = out
    assert text["text"] == "a b y z" and text["lang"] == "eng>fra" and text["input_lang"] == "eng"
    assert (text["switch_unit_a"], text["switch_unit_b"], text["switch_from"]) == (2, 2, "eng")
    wave = load_example_audio(speech)  # eng up to the end of "b" (1.0 s), fra from "y" (0.75 s)
    np.testing.assert_array_equal(wave, np.concatenate([clips["eng"][:16000],
                                                        clips["fra"][12000:]]))
    (tmp_path / "bad.tsv").write_text("sentence\tlang\tword_ends\n1\teng\t0.5 1.0\n"
                                      "1\tfra\t0.25 0.75 1.25 1.75\n")
    with pytest.raises(DataError, match="2 and 4 word times"):
        mix(examples, [["eng", "fra"]], 0.5, "word", ["speech"], alignments=tmp_path / "bad.tsv")


def _store(path, arrays):
    """A store of ``arrays[(lang, modality)]`` (n, d) at one layer ``enc.0``, and a duration,
    token count and text per example."""
    with StoreWriter(path, recipe_hash="synthetic", shard_size=64) as w:
        for (lang, modality), x in arrays.items():
            n = len(x)
            w.add([{"id": f"{lang}/{modality}/{s}", "sentence": str(s), "lang": lang,
                    "modality": modality, "text": "x" * (s + 1), "length": s + 1,
                    "duration": float(s) + (0.5 if lang == "eng" else 0.0)} for s in range(n)],
                  {"enc.0": x.astype(np.float32)})
    return open_store(path)


def test_code_switched_rows_compare_the_mixed_input_with_each_language(tmp_path):
    rng = np.random.default_rng(0)
    eng, fra = rng.standard_normal((60, 8)), rng.standard_normal((60, 8))
    mixed = eng + 0.05 * rng.standard_normal((60, 8))  # close to where it starts
    store = _store(tmp_path / "s", {("eng", "text"): eng, ("fra", "text"): fra,
                                    ("eng>fra", "text"): mixed})
    views = paired_views(store, ["eng", "fra", "eng>fra"], ["text"])
    rows = code_switched(Comparer(views, "svcca", k=4, n_perm=4), ["enc.0"], "eng", "fra",
                         "eng>fra", "text", stack="enc")
    by = {r["lang_b"]: r for r in rows}
    for lang, x in (("eng", eng), ("fra", fra)):  # float64 SVCCA computed here, by SVD
        def top(v):
            v = v - v.mean(0)
            u, _, _ = np.linalg.svd(v, full_matrices=False)
            return u[:, :4]
        expected = np.linalg.svd(top(mixed).T @ top(x), compute_uv=False).mean()
        assert by[lang]["score"] == pytest.approx(expected, abs=1e-5)
        assert by[lang]["score"] == pytest.approx(svcca(mixed, x, k=4).score, abs=1e-5)
    table = code_switching(rows)
    assert len(table) == 1 and table[0]["first_minus_second"] > 0.5
    assert table[0]["first_minus_second"] == pytest.approx(by["eng"]["adjusted"]
                                                           - by["fra"]["adjusted"])


# -- length bins -------------------------------------------------------------------------------
def test_length_bins_have_equal_sizes_from_median_lengths(tmp_path):
    rng = np.random.default_rng(1)
    store = _store(tmp_path / "s", {(lang, m): rng.standard_normal((30, 4))
                                    for lang in ("eng", "fra") for m in ("text", "speech")})
    seconds = sentence_lengths(store.examples, ["eng", "fra"], "seconds")
    assert seconds["7"] == pytest.approx(7.25)  # the median of 7.5 (eng) and 7.0 (fra)
    assert sentence_lengths(store.examples, ["eng", "fra"], "tokens")["7"] == 8
    paired = [str(s) for s in range(30)]
    bins = make_bins(seconds, "seconds", paired, quantiles=3, seed=0)
    assert [len(b.sentences) for b in bins] == [10, 10, 10]
    assert all(seconds[s] <= seconds[t] for s in bins[0].sentences for t in bins[1].sentences)
    uneven = make_bins(seconds, "seconds", paired, edges=[0, 5, 30], seed=3)
    assert [b.available for b in uneven] == [5, 25] and {len(b.sentences) for b in uneven} == {5}
    assert uneven[1].sentences == make_bins(seconds, "seconds", paired, edges=[0, 5, 30],
                                            seed=3)[1].sentences  # seeded
    with pytest.raises(Exception, match="each needs 8"):
        make_bins(seconds, "seconds", paired, edges=[0, 5, 30], fewest=8)


# -- family distance ---------------------------------------------------------------------------
def test_family_distance_means_against_a_float64_computation():
    langs = ["eng", "deu", "nld", "fra", "spa", "swh", "yor"]
    rng = np.random.default_rng(2)
    rows = [{"analysis": "cross_lingual", "stack": "enc", "modality_a": "text",
             "modality_b": "text", "measure": "svcca", "depth": 0, "lang_a": a, "lang_b": b,
             "adjusted": float(rng.uniform(-0.1, 0.9)), "score": 0.5, "chance": 0.2}
            for a, b in combinations(langs, 2)]
    out = family_distance_means(rows, family_distance, DISTANCES, 0.9)
    from scipy.stats import t
    for d in (0, 1, 2):
        pairs = [r for r in rows if family_distance(r["lang_a"], r["lang_b"]) == d]
        members = sorted({x for r in pairs for x in (r["lang_a"], r["lang_b"])})
        mean = np.mean([r["adjusted"] for r in pairs])  # over pairs, and a language left out
        leave = np.array([np.mean([r["adjusted"] for r in pairs  # takes every pair it is in
                                   if x not in (r["lang_a"], r["lang_b"])]) for x in members])
        se = np.sqrt((len(members) - 1) / len(members) * ((leave - leave.mean()) ** 2).sum())
        half = t.ppf(0.95, len(members) - 1) * se
        row = next(r for r in out if r["group"].startswith(f"{d}:"))
        assert row["n_langs"] == len(members) and row["n_rows"] == len(pairs)
        assert row["adjusted"] == pytest.approx(mean, abs=1e-12)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((mean - half, mean + half))


# -- recipes -----------------------------------------------------------------------------------
REFUSED = {
    "data.group_sentences=0": "data.group_sentences: 1 (sentences) or more",
    "data.group_silence=-1": "data.group_silence: seconds of silence",
    "data.documents=nowhere.tsv": "data.documents:",
    "data.code_switch.pairs=[[eng,xyz]]": "two of data.languages",
    "data.code_switch.pairs=[[eng,eng]]": "two of data.languages",
    "data.code_switch.ratio=1.5": "data.code_switch.ratio: the share",
    "data.code_switch.boundary=sentence": "data.code_switch.boundary: 'sentence' is not one of",
    "analysis.code_switched=[text_encoder]": "data.code_switch.pairs names no pair",
    "analysis.length_bins.by=words": "analysis.length_bins.by: 'words' is not one of",
    "analysis.length_bins.edges=[0,5,3]": "at least 3 increasing edges",
    "analysis.length_bins.quantiles=1": "analysis.length_bins.quantiles: at least 2",
    "analysis.length_bins.n=2": "analysis.length_bins.n: at least 5",
    "data.languages=[family:Indo-Europian]": "did you mean family:Indo-European",
}


@pytest.mark.parametrize("override", REFUSED)
def test_bad_beyond_options_are_refused_with_one_message(override):
    from probekit.recipe import RecipeError

    with pytest.raises(RecipeError, match=re.escape(REFUSED[override])):
        load_recipe(ROOT / "recipes/demo.yaml", [override])


def test_bad_stacks_for_code_switching_and_length_bins_are_refused():
    from probekit.recipe import RecipeError

    with pytest.raises(RecipeError, match="code_switched: seamless_m4t_v2 has no stack 'llm'"):
        load_recipe(ROOT / "recipes/beyond.yaml", ["analysis.code_switched=[llm]"])
    with pytest.raises(RecipeError, match="seconds measures speech"):
        load_recipe(ROOT / "recipes/beyond.yaml", ["data.modalities=[text]",
                                                   "analysis.cross_modal=[]",
                                                   "analysis.adaptation_points={}"])


# -- the two demo recipes ----------------------------------------------------------------------
@pytest.mark.reference_leg
def test_the_beyond_demo_writes_every_table_and_figure(beyond_run):
    import pandas as pd
    import yaml

    out, done = beyond_run
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["data"]["languages"] == ["fra", "ita", "por", "spa", "eng", "swh"]
    store = open_store(out / "store")
    ex = store.examples
    mixed = ex[ex["lang"].isin(["eng>fra", "swh>eng"])]
    assert len(mixed) == 2 * 2 * 48 and set(mixed["modality"]) == {"text", "speech"}
    assert (mixed["switch_unit_a"].astype(int) >= 1).all()
    assert set(mixed["switch_boundary"]) == {"word"}
    speech = ex[ex["modality"] == "speech"]
    assert (speech["duration"] > 1).all() and (ex["length"] >= 1).all()  # recorded per example
    cs = pd.read_csv(out / "results" / "code_switching.csv")
    assert len(cs) == 2 * 2 * 3  # pairs x stacks x depths
    assert {"to_first", "to_second", "first_minus_second", "to_first_control"} <= set(cs)
    bins = pd.read_csv(out / "results" / "length_bins.csv")
    assert set(bins["n_sentences"]) == {24} and bins["bin_index"].nunique() == 2
    assert {"before adaptor", "after adaptor"} <= set(bins["point"])
    assert bins["control_adjusted"].notna().all()
    binned = pd.read_csv(out / "results" / "similarities_by_length.csv")
    assert set(binned["n"]) == {24} and "code_switched" in set(binned["analysis"])
    means = pd.read_csv(out / "results" / "group_means.csv")
    assert set(means["grouping"]) == {"resource", "family", "genus", "rhythm", "family_distance"}
    assert "0: same genus" in set(means["group"])
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"code_switching.png", "length_bins.png", "group_means_cross_modal_by_rhythm.png",
            "group_means_cross_lingual_by_family_distance.png"} <= figures
    # random weights both: each chance-adjusted score sits near its control's
    sims = pd.read_csv(out / "results" / "similarities.csv")
    assert (sims["adjusted"] - sims["control_adjusted"]).abs().mean() < 0.1


@pytest.mark.reference_leg
def test_the_paragraphs_demo_joins_two_sentences_in_text_and_speech(paragraphs_run):
    import pandas as pd

    out, _ = paragraphs_run
    ex = open_store(out / "store").examples
    assert len(ex) == 50 * 3 * 2 and set(ex["sentence"]) == {f"{i}+{i + 1}"
                                                             for i in range(1, 101, 2)}
    manifest = pd.read_csv(ROOT / "data/demo/manifest.tsv", sep="\t", dtype=str)
    clip = {(r.lang, r.sentence): r for r in manifest.itertuples()}
    row = ex[(ex["lang"] == "fra") & (ex["modality"] == "speech") & (ex["sentence"] == "5+6")]
    one, two = clip[("fra", "5")], clip[("fra", "6")]
    seconds = sum(len(soundfile.read(ROOT / "data/demo" / c.audio)[0]) for c in (one, two))
    assert float(row["duration"].iloc[0]) == pytest.approx(seconds / 16000 + 0.3, abs=1e-6)
    assert row["text"].iloc[0] == f"{one.text} {two.text}"
    assert row["audio_path"].iloc[0] == "audio/fra/5.ogg|audio/fra/6.ogg"  # from the data root
    bins = pd.read_csv(out / "results" / "length_bins.csv")
    sizes = bins.drop_duplicates("bin_index")["sentences_in_bin"]
    assert sizes.sum() == 50 and set(bins["n_sentences"]) == {sizes.min()}  # the smallest's n
    assert set(bins["bin_unit"]) == {"tokens"}
    assert (out / "figures" / "length_bins.png").exists()


def test_heatmaps_are_blocked_by_family():
    from probekit.report import plot_language_matrix

    langs = ["eng", "deu", "fra", "swh", "yor"]
    rows = [{"analysis": "cross_lingual", "stack": "enc", "depth": 0, "modality_a": "text",
             "lang_a": a, "lang_b": b, "measure": "svcca", "adjusted": 0.1, "z": 3.0}
            for a, b in combinations(langs, 2)]
    import pandas as pd

    fig = plot_language_matrix(pd.DataFrame(rows), 0, "text", order=langs,
                               blocks={lang: family(lang) for lang in langs})
    ax = fig.axes[0]
    top = next(a for a in ax.child_axes)
    assert [t.get_text() for t in top.get_xticklabels()] == ["Indo-European", "Atlantic-Congo"]
    assert [round(line.get_xdata()[0], 1) for line in ax.lines if line.get_linestyle() == "-"
            and len(set(line.get_xdata())) == 1] == [2.5]  # one line between the families


def test_a_code_switched_example_is_given_to_the_model_in_its_first_language():
    import torch

    from probekit import load_model
    from probekit.batch import capture

    wrapper = load_model("seamless_m4t_v2", variant="tiny")
    text = "The bread is still chaud du four."
    mixed = {"id": "m", "sentence": "1", "lang": "eng>fra", "input_lang": "eng",
             "modality": "text", "text": text, "target_lang": "eng", "target_text": "The bread."}
    plain = dict(mixed, lang="eng", input_lang=None)
    other = dict(mixed, lang="fra", input_lang=None)
    with torch.no_grad():
        got = capture(wrapper, [mixed], pool="mean")[0].collect()
        same = capture(wrapper, [plain], pool="mean")[0].collect()
        told_french = capture(wrapper, [other], pool="mean")[0].collect()
    layer = "text_encoder.layers.0"
    np.testing.assert_array_equal(got[layer], same[layer])
    assert not np.allclose(got[layer], told_french[layer])  # the language token matters
