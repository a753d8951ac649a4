"""Notebook-style: open a store, pick two languages, compare them layer by layer, plot.

    python examples/notebook_two_languages.py runs/demo/store --png runs/demo/eng_fra.png

Per layer it computes SVCCA between the two languages' representations of the same sentences,
next to its permutation chance level (SVCCA of independent views is far from 0 with few
examples), and the mean cosine of paired sentences against mismatched ones.
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import probekit  # noqa: E402
from probekit import analysis  # noqa: E402


def cosine_rows(x, y):
    x = x - x.mean(0)
    y = y - y.mean(0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return x @ y.T


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--langs", nargs=2, default=["eng", "fra"])
    ap.add_argument("--modality", default="text")
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args(argv)

    store = probekit.open_store(args.store)
    print(store)
    a, b = args.langs
    layers = [layer for layer in store.layers
              if args.modality in set(store.recorded(layer)["modality"])]
    same, other, cca, chance = [], [], [], []
    for layer in layers:  # row i of xa and xb: the same sentence in languages a and b
        xa, xb, _ = store.paired(layer, layer, lang=a, lang_b=b, modality=args.modality)
        sims = cosine_rows(xa, xb)
        same.append(np.mean(np.diag(sims)))
        other.append(np.mean(sims[~np.eye(len(sims), dtype=bool)]))
        result = analysis.svcca(xa, xb)
        cca.append(result.score)
        chance.append(analysis.permutation_null(lambda x, y: analysis.svcca(x, y).score,
                                                xa, xb, n_perm=20).mean)
        print(f"{layer:28s} svcca {cca[-1]:.3f} (chance {chance[-1]:.3f}, k={result.k})   "
              f"cosine paired {same[-1]:+.3f} mismatched {other[-1]:+.3f}")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(layers))
    ax.plot(x, cca, "o-", label=f"SVCCA {a}-{b}")
    ax.plot(x, chance, "o--", color="C0", alpha=0.6, label="SVCCA chance (permutation)")
    ax.plot(x, same, "s-", color="C1", label="cosine, same sentence")
    ax.plot(x, other, "s--", color="C1", alpha=0.6, label="cosine, different sentences")
    ax.set_xticks(x, [name.replace("layers.", "") for name in layers], rotation=45, ha="right")
    ax.set_ylabel("similarity")
    ax.set_title(f"{a} vs {b}, layer by layer")
    ax.legend()
    fig.tight_layout()
    png = args.png or args.store.parent / f"{a}_{b}.png"
    fig.savefig(png, dpi=120)
    print(f"figure: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
