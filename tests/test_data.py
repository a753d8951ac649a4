"""Data sources, built on the fly: FLEURS' own layout (a folder, and a clone of the dataset
repository with its audio archives), JSONL manifests, and the hub source when offline."""

import csv
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

import probekit
from probekit.data import DataError, load_audio, parallel_examples, read_fleurs_local, read_manifest
from probekit.errors import ProbekitError

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"eng": "en_us", "fra": "fr_fr", "swh": "sw_ke"}
IDS = {"eng": range(1, 9), "fra": [1, 2, 3, 4, 5, 6, 7, 9], "swh": range(2, 9)}


def tone(seconds, rate, channels=1, freq=220.0):
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([wave] * channels, 1) if channels > 1 else wave


def write_fleurs(root, split="test", archive=False, rate=16000, channels=1):
    """FLEURS' layout: <config>/<split>.tsv (no header: id, file, raw transcription,
    transcription, characters, samples, gender) and the clips; sentence 2 has two speakers;
    French sentence 5 has an empty transcription."""
    for lang, config in CONFIGS.items():
        folder = root / config
        clips = folder / "audio" / split
        clips.mkdir(parents=True)
        rows = []
        for sid in IDS[lang]:
            for speaker in range(2 if sid == 2 else 1):
                name = f"{sid}{speaker}.wav"
                raw = ("" if (lang, sid) == ("fra", 5)
                       else f"Sentence {sid} in {lang}, speaker {speaker}.")
                seconds = 0.5 + 0.1 * sid
                soundfile.write(clips / name, tone(seconds, rate, channels), rate)
                rows.append([str(sid), name, raw, raw.lower(), " ".join(raw),
                             str(int(seconds * rate)), "FEMALE"])
        with open(folder / f"{split}.tsv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f, delimiter="\t", lineterminator="\n").writerows(rows)
        if archive:  # the dataset repository keeps audio/<split>.tar.gz with <split>/<file> members
            with tarfile.open(folder / "audio" / f"{split}.tar.gz", "w:gz") as tar:
                for clip in sorted(clips.iterdir()):
                    tar.add(clip, arcname=f"{split}/{clip.name}")
            for clip in clips.iterdir():
                clip.unlink()
            clips.rmdir()


def test_fleurs_folder_gives_the_parallel_set_one_recording_per_sentence(tmp_path):
    write_fleurs(tmp_path, rate=22050, channels=2)
    rows = read_fleurs_local(tmp_path, CONFIGS, "test")
    examples, report = parallel_examples(rows, list(CONFIGS), ["text", "speech"])
    sentences = sorted({ex["sentence"] for ex in examples}, key=int)
    # 5 has an empty French text, 1 is missing in Swahili, 8 in French, 9 in English/Swahili
    assert sentences == ["2", "3", "4", "6", "7"]
    assert report == {"sentences": 5, "dropped_not_in_every_language": 4, "empty_text": 1,
                      "repeated_rows": 3}  # a second recording of a sentence: the first kept
    assert len(examples) == 5 * 3 * 2
    first = next(ex for ex in examples if ex["id"] == "eng/speech/2")
    assert first["audio_path"].endswith("20.wav")
    assert first["text"] == "Sentence 2 in eng, speaker 0."
    wave = load_audio(first["audio_path"])  # stereo 22.05 kHz -> mono 16 kHz
    assert wave.ndim == 1 and abs(len(wave) - 0.7 * 16000) <= 2


def test_fleurs_repository_clone_is_unpacked_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROBEKIT_CACHE", str(tmp_path / "cache"))
    write_fleurs(tmp_path / "clone" / "data", archive=True)
    rows = read_fleurs_local(tmp_path / "clone", CONFIGS, "test")
    assert all(Path(r["audio"]).is_file() for r in rows)
    assert all(str(tmp_path / "cache" / "fleurs") in r["audio"] for r in rows)
    assert len(list((tmp_path / "cache" / "fleurs" / "fr_fr" / "audio" / "test").iterdir())) == 9
    assert read_fleurs_local(tmp_path / "clone", CONFIGS, "test") == rows


def test_fleurs_folder_errors_name_the_file(tmp_path):
    write_fleurs(tmp_path)
    with pytest.raises(DataError, match="no de_de/test.tsv for deu"):
        read_fleurs_local(tmp_path, {"deu": "de_de"}, "test")
    (tmp_path / "en_us" / "test.tsv").write_text("1\tonly two columns\n")
    with pytest.raises(DataError, match=r"en_us/test.tsv:1: 2 columns"):
        read_fleurs_local(tmp_path, CONFIGS, "test")


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "probekit.run", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


RECIPE = """name: t
data: {{source: {source}, path: {path}, languages: [eng, fra, swh], modalities: [text, speech]}}
model: {{spec: seamless_m4t_v2, variant: tiny}}
record: {{pool: mean, dtype: float32, batch_size: 4, shard_size: 8}}
"""


def test_run_on_a_fleurs_folder(tmp_path):
    write_fleurs(tmp_path / "fleurs", rate=8000)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(source="fleurs_local", path=tmp_path / "fleurs"))
    done = run(recipe, "--out", tmp_path / "out", "--stage", "extract", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "5 sentences x 3 languages x 2 modalities; 4 sentences missing" in done.stderr
    store = probekit.open_store(tmp_path / "out" / "store")
    assert store.complete and len(store) == 30 and not store.skipped
    ex = store.examples.set_index("id")
    assert ex.loc["swh/text/4", "text"] == "Sentence 4 in swh, speaker 0."
    assert ex.loc["swh/text/4", "transcription"] == "sentence 4 in swh, speaker 0."
    assert ex.loc["swh/speech/4", "gender"] == "FEMALE"
    assert ex.loc["eng/speech/2", "source"] == "fleurs/en_us/test"


def test_jsonl_manifest(tmp_path):
    for lang in ("eng", "fra"):
        (tmp_path / lang).mkdir()
    lines = []
    for sid in range(1, 7):
        for lang in ("eng", "fra"):
            soundfile.write(tmp_path / lang / f"{sid}.flac", tone(0.4 + 0.05 * sid, 16000), 16000)
            lines.append(json.dumps({"sentence": sid, "lang": lang, "text": f"{lang} number {sid}",
                                     "audio": f"{lang}/{sid}.flac"}, ensure_ascii=False))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    rows = read_manifest(manifest)
    assert rows[0]["audio"] == str(tmp_path / "eng" / "1.flac")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(source="manifest", path=manifest)
                      .replace("[eng, fra, swh]", "[eng, fra]"))
    done = run(recipe, "--out", tmp_path / "out", "--stage", "extract", "--quiet")
    assert done.returncode == 0, done.stderr
    assert len(probekit.open_store(tmp_path / "out" / "store")) == 6 * 2 * 2
    manifest.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(DataError, match=r"m.jsonl:2: not a JSON object"):
        read_manifest(manifest)


def test_fleurs_from_the_hub_offline_names_what_to_download(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(source="fleurs", path="null"))
    done = run(recipe, "--out", tmp_path / "out", "--quiet",
               env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
                    "PROBEKIT_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot get google/fleurs file data/en_us/test.tsv (eng, split test)" in done.stderr
    assert "data.source: fleurs_local" in done.stderr


def test_the_shipped_demo_set_is_found_by_name_from_any_folder(tmp_path, monkeypatch):
    """``probekit.demo_manifest()`` and ``data.path: demo``: the shipped demo set without a
    checkout's relative paths (a recipe written anywhere, run from anywhere)."""
    import probekit
    from probekit.pipeline.inputs import resolved_data
    from probekit.recipe import load_recipe

    manifest = probekit.demo_manifest()
    assert manifest.is_file() and len(read_manifest(manifest)) == 100 * 10
    recipe = tmp_path / "elsewhere" / "mine.yaml"
    recipe.parent.mkdir()
    recipe.write_text("data: {source: manifest, path: demo, languages: [eng, fra]}\n"
                      "model: {spec: seamless_m4t_v2, variant: tiny}\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_recipe(recipe)
    assert Path(resolved_data(loaded).path) == manifest
    assert loaded.data.languages == ["eng", "fra"]


def test_a_hugging_face_dataset_is_read_like_a_manifest_with_its_audio(tmp_path, monkeypatch):
    """``data.source: hf``: a dataset saved with ``save_to_disk`` (an Audio column of FLAC
    clips, embedded; the originals deleted), its columns mapped to probekit's names, read into
    examples whose clips equal the originals; a ``datasets.Dataset`` passed to the Python API;
    a column that is not there named with the fix."""
    datasets = pytest.importorskip("datasets")
    from probekit.hf_source import read_dataset
    from probekit.pipeline.inputs import examples_for, resolved_data
    from probekit.recipe import load_recipe

    monkeypatch.setenv("PROBEKIT_CACHE", str(tmp_path / "cache"))
    waves, rows = {}, {"id": [], "language": [], "transcription": [], "audio": []}
    for lang in ("eng", "fra"):
        for i in range(3):
            wave = 0.1 * np.sin(2 * np.pi * (200 + 70 * i) * np.arange(8000 + 800 * i) / 16000)
            path = tmp_path / f"{lang}{i}.flac"
            soundfile.write(path, wave.astype(np.float32), 16000)
            waves[(lang, str(i))] = wave
            rows["id"].append(i)
            rows["language"].append(lang)
            rows["transcription"].append(f"sentence {i} in {lang}")
            rows["audio"].append(str(path))
    dataset = datasets.Dataset.from_dict(rows).cast_column(
        "audio", datasets.Audio(sampling_rate=16000))
    dataset.save_to_disk(tmp_path / "saved")
    for path in rows["audio"]:
        os.remove(path)
    recipe = tmp_path / "hf.yaml"
    recipe.write_text("data: {source: hf, path: saved, languages: [eng, fra], hf: {columns: "
                      "{sentence: id, lang: language, text: transcription}}}\n"
                      "model: {spec: seamless_m4t_v2, variant: tiny}\n")
    examples, report = examples_for(resolved_data(load_recipe(recipe)))
    assert report["sentences"] == 3 and len(examples) == 3 * 2 * 2
    for ex in examples:
        assert ex["text"] == f"sentence {ex['sentence']} in {ex['lang']}"
        if ex["modality"] == "speech":
            path = Path(ex["audio_path"])
            assert path.is_relative_to(tmp_path / "cache" / "hf")
            np.testing.assert_allclose(load_audio(str(path)), waves[(ex["lang"], ex["sentence"])],
                                       atol=1e-4)
    one = read_dataset(datasets.load_from_disk(str(tmp_path / "saved")).select(range(3)),
                       {"text": "transcription"}, lang="eng", root=tmp_path / "clips")
    assert [r["lang"] for r in one] == ["eng"] * 3 and one[0]["language"] == "eng"
    assert all(Path(r["audio"]).parent == tmp_path / "clips" / "eng" for r in one)
    with pytest.raises(DataError, match=r"no column 'text' .* data.hf.columns"):
        read_dataset(dataset, {"lang": "language"})
    recipe.write_text(recipe.read_text().replace("sentence: id", "sentense: id"))
    with pytest.raises(ProbekitError, match="'sentense' is not one of sentence, lang"):
        load_recipe(recipe)
