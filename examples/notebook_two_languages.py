"""Notebook-style: open a store, pick two languages, compare them layer by layer, plot.

    python examples/notebook_two_languages.py runs/demo/store --png runs/demo/eng_fra.png

Per layer it shows the mean cosine similarity of paired sentences (the same sentence in both
languages) next to that of mismatched pairs, which is the chance level for this measure.
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import probekit  # noqa: E402


def paired(store, layer, a, b):
    """Rows of languages a and b for the sentences both have, in the same sentence order."""
    ex = store.examples
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
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args(argv)

    store = probekit.open_store(args.store)
    print(store)
    a, b = args.langs
    layers = store.layers
    same, other = [], []
    for layer in layers:
        sims = cosine_rows(*paired(store, layer, a, b))
        same.append(np.mean(np.diag(sims)))
        other.append(np.mean(sims[~np.eye(len(sims), dtype=bool)]))
        print(f"{layer:28s} paired {same[-1]:+.3f}   mismatched {other[-1]:+.3f}")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(layers))
    ax.plot(x, same, "o-", label=f"{a}-{b}, same sentence")
    ax.plot(x, other, "s--", color="grey", label="different sentences (chance)")
    ax.set_xticks(x, [name.replace("layers.", "") for name in layers], rotation=45, ha="right")
    ax.set_ylabel("mean centred cosine")
    ax.set_title(f"{a} vs {b}, layer by layer")
    ax.legend()
    fig.tight_layout()
    png = args.png or args.store.parent / f"{a}_{b}.png"
    fig.savefig(png, dpi=120)
    print(f"figure: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
