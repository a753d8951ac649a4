"""Point probekit at another model with YAML alone: a spec for Whisper through the generic
transformers wrapper, and a recipe that runs it on the demo set as speech and as text, with a
cross-modal analysis of Whisper's decoder (speech: encoder + teacher-forced decoder; text: the
same decoder tokens through the decoder alone, as WhisperForCausalLM reads them).

    python examples/new_model_recipe.py --out runs/whisper_demo

The spec below is saved next to the recipe (a spec path is relative to the recipe, as data paths
are; a name looks in models/); without `variant: tiny` in the
recipe the real `openai/whisper-large-v2` is loaded instead of a tiny random model.
"""

import argparse
import sys
from pathlib import Path

from probekit.run import main as run

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
wrapper: hf                              # generic transformers wrapper: no Python needed
checkpoint: openai/whisper-large-v2
model_class: WhisperModel
dtype: float16
modalities:                              # the stacks each modality runs through
  speech: [encoder, decoder]
  text: [decoder]
stacks:
  encoder: ["encoder.layers.*"]
  decoder: ["decoder.layers.*"]
options:
  routes:                                # how each modality enters the model
    # speech: audio -> encoder; decoder teacher-forced on the transcript
    speech: encoder+decoder
    text: decoder                        # the transcript through the decoder alone
  feature_extractor: WhisperFeatureExtractor
  text_format: whisper                   # <|startoftranscript|><|xx|><|transcribe|><|notimestamps|>
  language_codes: whisper
  counts: {encoder: encoder_layers, decoder: decoder_layers}
  lengths:
    encoder: {rule: input, stride: 2, fills: false}   # 30 s padding is not valid
    decoder: {rule: decoder}
tiny:
  config: {vocab_size: 128, num_mel_bins: 80, d_model: 32, encoder_layers: 3, decoder_layers: 2,
           encoder_attention_heads: 2, decoder_attention_heads: 2, encoder_ffn_dim: 64,
           decoder_ffn_dim: 64, max_source_positions: 1500, max_target_positions: 256,
           pad_token_id: 0, bos_token_id: 1, eos_token_id: 3, decoder_start_token_id: 3}
"""

RECIPE = """\
name: whisper_demo
data:
  source: manifest
  path: {manifest}
  languages: [eng, fra, deu, spa]
  modalities: [speech, text]
  max_sentences: {sentences}
model:
  spec: my_whisper.yaml                  # next to this recipe (a path is relative to the recipe)
  variant: tiny
record: {{pool: mean, dtype: float32, shard_size: 32, batch_size: 8}}
analysis:
  k: 10                                  # fixed directions: 2k well under n/2 at 100 sentences
  n_perm: 5
  cross_modal:
    - [decoder, decoder]                 # the decoder on speech vs the decoder on text
  cross_lingual: [encoder, decoder]
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/whisper_demo"))
    ap.add_argument("--sentences", type=int, default=100, help="sentences per language")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    spec = args.out / "my_whisper.yaml"
    spec.write_text(SPEC)
    recipe = args.out / "whisper_demo.yaml"
    recipe.write_text(RECIPE.format(manifest=ROOT / "data" / "demo" / "manifest.tsv",
                                    sentences=args.sentences))
    return run([str(recipe), "--out", str(args.out / "run"), "--quiet"])


if __name__ == "__main__":
    sys.exit(main())
