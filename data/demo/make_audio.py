"""Regenerate the demo set's speech: espeak-ng reads every sentence of sentences.tsv; the audio is
resampled to 16 kHz and stored as Ogg/Opus (small), and manifest.tsv lists it. Then the
code-switched set: for each pair of CODE_SWITCHED, every sentence switched from the first
language to the second at half its words by probekit's own transform (the text a run builds),
read by the first language's voice up to the switch and by the second's after it;
code_switched.tsv lists them.

    apt-get install espeak-ng && python data/demo/make_audio.py [--code-switched-only]
"""

import csv
import subprocess
import sys
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

HERE = Path(__file__).resolve().parent
VOICES = {"eng": "en", "fra": "fr", "deu": "de", "spa": "es", "ita": "it", "por": "pt", "nld": "nl",
          "pol": "pl", "swh": "sw", "cym": "cy"}


CODE_SWITCHED = [("eng", "fra"), ("swh", "eng")]  # (first language, second language)
RATIO = 0.5


def speak(lang: str, text: str) -> np.ndarray:
    """espeak-ng's reading of ``text`` in ``lang``'s voice, at 16 kHz."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", VOICES[lang], "-w", wav.name, text], check=True)
        audio, rate = soundfile.read(wav.name, dtype="float32")
    g = gcd(rate, 16000)
    return resample_poly(audio, 16000 // g, rate // g).astype(np.float32)


def save(audio: np.ndarray, target: Path) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(target, audio, 16000, format="OGG", subtype="OPUS",
                    compression_level=0.95)  # about 20 kbit/s: the set stays under 10 MB
    return str(target.relative_to(HERE))


def main():
    rows = list(csv.DictReader(open(HERE / "sentences.tsv", encoding="utf-8"), delimiter="\t"))
    out = []
    for row in rows if "--code-switched-only" not in sys.argv else []:
        target = HERE / "audio" / row["lang"] / f"{row['sentence']}.ogg"
        out.append({**row, "audio": save(speak(row["lang"], row["text"]), target)})
    if out:
        write(HERE / "manifest.tsv", out)
    mixed = code_switched(rows)
    write(HERE / "code_switched.tsv", mixed)
    size = sum(p.stat().st_size for p in (HERE / "audio").rglob("*.ogg")) / 1e6
    print(f"{len(out)} clips, {len(mixed)} code-switched clips, {size:.2f} MB")


def code_switched(rows):
    """The code-switched recordings: text from probekit.transforms (as a run builds it)."""
    sys.path.insert(0, str(HERE.parents[1] / "src"))  # a checkout without probekit installed
    from probekit.transforms import joiner, pair_name, switch_point, units

    text = {(r["lang"], r["sentence"]): r["text"] for r in rows}
    out = []
    for a, b in CODE_SWITCHED:
        for s in sorted({r["sentence"] for r in rows}, key=int):
            ka, kb, used = switch_point(text[(a, s)], a, text[(b, s)], b, RATIO)
            head = joiner(a).join(units(text[(a, s)], a)[:ka])
            tail = joiner(b).join(units(text[(b, s)], b)[kb:])
            audio = np.concatenate([speak(a, head), speak(b, tail)])
            target = HERE / "audio" / f"{a}-{b}" / f"{s}.ogg"
            out.append({"sentence": s, "lang": pair_name(a, b), "text": f"{head} {tail}",
                        "audio": save(audio, target), "switch_unit_a": ka, "switch_unit_b": kb,
                        "switch_boundary": used})
    return out


def write(path: Path, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
