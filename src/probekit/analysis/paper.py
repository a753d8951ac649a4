"""The four analyses of "How do Multimodal Foundation Models Encode Text and Speech?".

Each returns tidy rows (dicts): one per comparison, with the measure, its parameters (variance or
k, kx, ky, n, dtype), the chance level and the confidence interval.

1. cross_modal: per language and depth, speech vs text of the same sentences.
2. cross_lingual: per modality and layer, every language vs every other.
3. length_adaptation: cross-modal similarity at chosen points (e.g. before/after the length
   adaptor), grouped by resource level.
4. modality_gap: per depth, same-language cross-modal vs same-modality cross-lingual similarity.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .grid import Comparer


def cross_modal(comparer: Comparer, layer_pairs: Sequence[tuple[str, str]],
                langs: Sequence[str], stack: str = "",
                progress: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
    """``layer_pairs[i] = (speech_layer, text_layer)`` at depth i; the same name twice for a
    stack that both modalities run through (a shared decoder or LLM). ``progress()`` is called
    after each depth."""
    rows = []
    for depth, (speech_layer, text_layer) in enumerate(layer_pairs):
        for lang in langs:
            row = comparer.compare((speech_layer, lang, "speech"), (text_layer, lang, "text"))
            rows.append(_tidy(row, "cross_modal", stack, depth, speech_layer, text_layer,
                              lang, lang, "speech", "text"))
        comparer.forget()
        if progress:
            progress()
    return rows


def cross_lingual(comparer: Comparer, layers: Sequence[str], langs: Sequence[str],
                  modality: str, stack: str = "", against: str | None = None,
                  progress: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
    """Every pair of languages (or every language against ``against``) at each layer;
    ``progress()`` is called after each layer."""
    rows = []
    for depth, layer in enumerate(layers):
        if against is None:
            todo = {a: [b for b in langs if b > a] for a in langs}
        else:
            todo = {against: [b for b in langs if b != against]}
        for a, bs in todo.items():
            found = comparer.compare_many((layer, a, modality), [(layer, b, modality) for b in bs])
            for b, row in zip(bs, found):
                rows.append(_tidy(row, "cross_lingual", stack, depth, layer, layer, a, b,
                                  modality, modality))
        comparer.forget()
        if progress:
            progress()
    return rows


def length_adaptation(cross_modal_rows: Sequence[Mapping[str, Any]],
                      points: Mapping[str, str], resource: Mapping[str, str]
                      ) -> list[dict[str, Any]]:
    """Mean cross-modal score per point (``label -> speech-side layer``) and resource level."""
    out = []
    for label, layer in points.items():
        for level in sorted(set(resource.values())):
            scores = [r["score"] for r in cross_modal_rows
                      if r["layer_a"] == layer and resource.get(r["lang_a"]) == level]
            chance = [r["chance"] for r in cross_modal_rows
                      if r["layer_a"] == layer and resource.get(r["lang_a"]) == level]
            if not scores:
                continue
            sem = np.std(scores, ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else np.nan
            out.append({"analysis": "length_adaptation", "point": label, "layer_a": layer,
                        "resource": level, "score": float(np.mean(scores)),
                        "ci_low": float(np.mean(scores) - 1.96 * sem),
                        "ci_high": float(np.mean(scores) + 1.96 * sem),
                        "chance": float(np.nanmean(chance)) if chance else np.nan,
                        "n_langs": len(scores)})
    return out


def modality_gap(cross_modal_rows: Sequence[Mapping[str, Any]],
                 cross_lingual_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per stack and depth: mean cross-modal (same language) vs mean cross-lingual (same
    modality) score. A positive ``gap`` means languages are closer than modalities."""
    out = []
    keys = sorted({(r["stack"], r["depth"]) for r in cross_modal_rows})
    for stack, depth in keys:
        here = [r for r in cross_modal_rows if (r["stack"], r["depth"]) == (stack, depth)]
        layers = {"speech": here[0]["layer_a"], "text": here[0]["layer_b"]}
        row = {"analysis": "modality_gap", "stack": stack, "depth": depth,
               "layer_speech": layers["speech"], "layer_text": layers["text"],
               "cross_modal": float(np.mean([r["score"] for r in here]))}
        for m, layer in layers.items():
            scores = [r["score"] for r in cross_lingual_rows
                      if r["modality_a"] == m and r["layer_a"] == layer]
            row[f"cross_lingual_{m}"] = float(np.mean(scores)) if scores else np.nan
        lingual = [row["cross_lingual_speech"], row["cross_lingual_text"]]
        row["gap"] = (float(np.nanmean(lingual)) if not np.isnan(lingual).all() else np.nan) \
            - row["cross_modal"]
        out.append(row)
    return out


def _tidy(row: dict[str, Any], analysis: str, stack: str, depth: int, layer_a: str,
          layer_b: str, lang_a: str, lang_b: str, mod_a: str, mod_b: str) -> dict[str, Any]:
    row = {k: v for k, v in row.items() if k not in ("a", "b")}
    return {"analysis": analysis, "stack": stack, "depth": depth, "layer_a": layer_a,
            "layer_b": layer_b, "lang_a": lang_a, "lang_b": lang_b, "modality_a": mod_a,
            "modality_b": mod_b, **row}

