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


def paired(store, layer, a, b, modality):
    """Rows of languages a and b for the sentences both have, in the same sentence order."""
    ex = store.recorded(layer)
    ex = ex[ex.modality == modality]
    ta = ex[ex.lang == a].set_index("sentence")
    tb = ex[ex.lang == b].set_index("sentence")
    common = sorted(set(ta.index) & set(tb.index), key=str)
    return (store.read(layer, ids=list(ta.loc[common, "id"])),
            store.read(layer, ids=list(tb.loc[common, "id"])))


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
    for layer in layers:
        xa, xb = paired(store, layer, a, b, args.modality)
        sims = cosine_rows(xa, xb)
        same.append(np.mean(np.diag(sims)))
        other.append(np.mean(sims[~np.eye(len(sims), dtype=bool)]))
        ba, bb = analysis.decompose(analysis.basis.as_matrix(xa)), \
            analysis.decompose(analysis.basis.as_matrix(xb))
        k = (ba.keep(0.99), bb.keep(0.99))
        cca.append(analysis.svcca(xa, xb).score)
        chance.append(analysis.svcca_null(ba, bb, *k, n_perm=20).mean)
        print(f"{layer:28s} svcca {cca[-1]:.3f} (chance {chance[-1]:.3f}, k={k})   "
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
