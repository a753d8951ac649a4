"""Regenerate the demo set's speech: espeak-ng reads every sentence of sentences.tsv; the audio is
resampled to 16 kHz and stored as Ogg/Opus (small), and manifest.tsv lists it.

    apt-get install espeak-ng && python data/demo/make_audio.py
"""

import csv
import subprocess
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

HERE = Path(__file__).resolve().parent
VOICES = {"eng": "en", "fra": "fr", "deu": "de", "spa": "es", "ita": "it", "por": "pt", "nld": "nl",
          "pol": "pl", "swh": "sw", "cym": "cy"}


def main():
    rows = list(csv.DictReader(open(HERE / "sentences.tsv", encoding="utf-8"), delimiter="\t"))
    out = []
    for row in rows:
        target = HERE / "audio" / row["lang"] / f"{row['sentence']}.ogg"
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
            subprocess.run(["espeak-ng", "-v", VOICES[row["lang"]], "-w", wav.name, row["text"]],
                           check=True)
            audio, rate = soundfile.read(wav.name, dtype="float32")
        g = gcd(rate, 16000)
        audio = resample_poly(audio, 16000 // g, rate // g).astype(np.float32)
        soundfile.write(target, audio, 16000, format="OGG", subtype="OPUS",
                        compression_level=0.95)  # about 20 kbit/s: the set stays under 10 MB
        out.append({**row, "audio": str(target.relative_to(HERE))})
    with open(HERE / "manifest.tsv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["sentence", "lang", "text", "audio"], delimiter="\t")
        writer.writeheader()
        writer.writerows(out)
    print(f"{len(out)} clips, {sum(p.stat().st_size for p in (HERE / 'audio').rglob('*.ogg')) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
