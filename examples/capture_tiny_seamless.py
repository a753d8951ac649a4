"""Capture every encoder and decoder block of a (tiny, random) SeamlessM4T v2 into a store.

Offline and CPU-only: the model is built from a small config of the real transformers class, and
the "sentences" are parallel token sequences made up for the demo (one per language, same
sentence ids). Run it twice: the second run finds everything committed and only reopens the store.

    python examples/capture_tiny_seamless.py --out runs/demo
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from transformers import SeamlessM4Tv2Config, SeamlessM4Tv2ForTextToText

import probekit
from probekit import Recorder, StoreWriter, open_store

LANGS = ["eng", "fra", "deu", "swh"]


def tiny_model(seed=0):
    config = SeamlessM4Tv2Config(
        vocab_size=256, hidden_size=64, encoder_layers=4, decoder_layers=4, encoder_ffn_dim=128,
        decoder_ffn_dim=128, encoder_attention_heads=4, decoder_attention_heads=4,
        speech_encoder_layers=2, speech_encoder_attention_heads=2,
        speech_encoder_intermediate_size=64, t2u_vocab_size=64, char_vocab_size=64,
        t2u_encoder_layers=1, t2u_decoder_layers=1, unit_hifi_gan_vocab_size=64,
        upsample_initial_channel=32, max_position_embeddings=128, encoder_layerdrop=0.0,
        decoder_layerdrop=0.0, speech_encoder_layerdrop=0.0, pad_token_id=0)
    torch.manual_seed(seed)
    return SeamlessM4Tv2ForTextToText(config).eval()


def parallel_examples(n_sentences=48):
    """Token ids for each (sentence, language): a shared 'meaning' plus language-specific tokens."""
    out = []
    for s in range(n_sentences):
        g = torch.Generator().manual_seed(s)
        meaning = torch.randint(10, 200, (6 + s % 9,), generator=g)
        for k, lang in enumerate(LANGS):
            lang_tokens = torch.randint(200, 256, (len(meaning) // 3 + k,), generator=g)
            ids = torch.cat([torch.tensor([4 + k]), meaning, lang_tokens, torch.tensor([3])])
            out.append({"id": f"{lang}/{s}", "sentence": str(s), "lang": lang, "modality": "text",
                        "text": f"<tokens {s}>", "length": len(ids), "ids": ids})
    return out


def capture(out_dir: Path, batch_size=16, shard_size=64):
    model = tiny_model()
    examples = parallel_examples()
    provenance = {"model_id": "tiny SeamlessM4Tv2ForTextToText (random, seed 0)", "pool": "mean",
                  "dtype": "float32"}
    with StoreWriter(out_dir / "store", shard_size=shard_size, recipe_hash="demo-capture-v1",
                     provenance=provenance) as writer:
        todo = [ex for ex in examples if ex["id"] not in writer.done_ids]
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            ids = torch.nn.utils.rnn.pad_sequence([ex["ids"] for ex in batch], batch_first=True)
            lengths = torch.tensor([len(ex["ids"]) for ex in batch])
            mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long()
            with torch.no_grad(), Recorder(model,
                                           ["text_encoder.layers.*", "text_decoder.layers.*"],
                                           pool="mean") as rec:
                rec.set_mask(mask)  # teacher forcing: the decoder reads the same sentence
                model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids,
                      decoder_attention_mask=mask)
            meta = [{k: v for k, v in ex.items() if k != "ids"} for ex in batch]
            writer.add(meta, rec.collect())
    return open_store(out_dir / "store")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/demo"))
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        store = capture(args.out)
    except probekit.ProbekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(store)
    print(f"{len(store.layers)} layers x {len(store)} examples in {time.time() - t0:.1f} s")
    print(f"open it in a notebook: probekit.open_store({str(args.out / 'store')!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
