"""Tables from analysis rows: a tidy DataFrame, CSV (and parquet) files, and the group means laid
out for a paper as Markdown and LaTeX."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .common import stack_label


def table(rows: Iterable[Mapping[str, Any]]):
    """Rows as a tidy pandas DataFrame."""
    import pandas as pd
    return pd.DataFrame(list(rows))


def write_table(df, path: Path) -> list[Path]:
    """Write ``df`` as CSV, and as parquet when pyarrow is installed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".csv")]
    df.to_csv(out[0], index=False)
    try:
        import pyarrow  # noqa: F401
        out.append(path.with_suffix(".parquet"))
        df.to_parquet(out[1], index=False)
    except ImportError:
        pass
    return out


GROUP_COLUMNS = (
    "Each group's column holds its mean [interval]; n counts the languages whose rows are "
    "averaged. A cross-lingual column averages language pairs: A~B the pairs of a language of "
    "group A with one of group B, (within) the pairs inside one group, (between) the pairs "
    "across two; n counts the languages on both sides. control: the random-weights control's "
    "mean.")


def paper_table(df):
    """A ``group_means`` table laid out for a paper: one row per analysis, stack, modality,
    measure and depth, one column per group holding "mean [low, high]" (chance-adjusted, with
    the interval over languages), and the control's mean beside them."""
    import pandas as pd

    keys = ["analysis", "stack", "modality", "measure", "depth"]
    out = []
    for key, sub in df.groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True))
        row["stack"] = stack_label(row["stack"])
        for _, r in sub.iterrows():
            row[f"{r['group']} (n={int(r['n_langs'])})"] = (
                f"{r['adjusted']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
                if np.isfinite(r["ci_low"]) else f"{r['adjusted']:.2f}")
        control = sub["control_adjusted"].mean()
        row["control"] = f"{control:.2f}" if np.isfinite(control) else "-"
        out.append(row)
    return pd.DataFrame(out).fillna("-")


def claims_paper_table(df):
    """A ``claims`` table for a paper: the finding, where, the measure, the effect with its
    interval, the Holm-adjusted p-value, the control's and the spectra's effects, robust."""
    def num(v: Any) -> str:
        return "" if v is None or v != v else f"{float(v):+.3f}"

    out = df[["finding", "stack", "measure"]].copy()
    out["effect [interval]"] = [f"{num(r.effect)} [{num(r.ci_low)}, {num(r.ci_high)}]"
                                for r in df.itertuples()]
    out["p (Holm)"] = [f"{float(p):.2g}" for p in df["p_adjusted"]]
    for column, label in (("control_effect", "control"), ("spectrum_effect", "spectra only")):
        if column in df:
            out[label] = [num(v) for v in df[column]]
    if "robust" in df:
        out["robust"] = df["robust"].map({True: "yes", False: "no"}).fillna("")
    return out


def to_markdown(df) -> str:
    """``df`` as a GitHub-flavoured markdown table."""
    head = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def to_latex(df, caption: str = "") -> str:
    """``df`` as a LaTeX ``table`` with booktabs rules (``\\usepackage{booktabs}``)."""
    def tex(v) -> str:
        text = str(v)
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                     ("#", r"\#"), ("~", r"\textasciitilde{}")):
            text = text.replace(a, b)
        return text
    cols = "l" * 4 + "r" * (len(df.columns) - 4)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{cols}}}",
             r"\toprule", " & ".join(tex(c) for c in df.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(tex(v) for v in row) + r" \\" for row in df.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{tex(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
