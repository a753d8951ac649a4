"""Paired views from a store: the same sentences, in the same order, for every language and
modality, so that any two views can be compared row by row."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .basis import AnalysisError

log = logging.getLogger("probekit.analysis")


@dataclass
class PairedViews:
    """Example ids per (lang, modality), aligned on one sentence order."""
    store: Any
    sentences: list[str]
    ids: dict[tuple[str, str], list[str]]
    dropped: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def langs(self) -> list[str]:
        return sorted({lang for lang, _ in self.ids})

    @property
    def modalities(self) -> list[str]:
        return sorted({mod for _, mod in self.ids})

    def subset(self, sentences: Sequence[str]) -> PairedViews:
        """The same views on ``sentences`` only (in their order here)."""
        keep = set(sentences)
        index = [i for i, s in enumerate(self.sentences) if s in keep]
        return PairedViews(self.store, [self.sentences[i] for i in index],
                           {key: [ids[i] for i in index] for key, ids in self.ids.items()},
                           dropped=len(self.sentences) - len(index))

    def digest(self, key: tuple[str, str, str]) -> str | None:
        """What view ``key`` is, named from the store's checksums without reading it
        (:meth:`~probekit.store.Store.content_digest`); None: the view's data must be hashed."""
        layer, lang, modality = key
        if ("digest", key) not in self._cache:
            named = getattr(self.store, "content_digest", None)
            ids = self.ids.get((lang, modality))
            self._cache[("digest", key)] = named(layer, ids) if named and ids else None
        return self._cache[("digest", key)]

    def __call__(self, key: tuple[str, str, str]) -> np.ndarray:
        """The ``(n, d)`` array of view ``(layer, lang, modality)``."""
        layer, lang, modality = key
        if (lang, modality) not in self.ids:
            raise AnalysisError(f"no examples for lang {lang!r} and modality {modality!r}; "
                                f"the paired set has {sorted(self.ids)}")
        return self.store.read(layer, ids=self.ids[(lang, modality)])


def paired_views(store: Any, langs: Sequence[str] | None = None,
                 modalities: Sequence[str] | None = None,
                 drop_nonfinite: bool = True) -> PairedViews:
    """Keep the sentences present in every chosen language and modality (one example each),
    ordered by sentence id; report how many were dropped."""
    ex = store.examples
    if drop_nonfinite:
        ex = ex[ex["nonfinite"].astype(str) == ""]
    langs = list(langs) if langs else sorted(ex["lang"].astype(str).unique())
    modalities = list(modalities) if modalities else sorted(ex["modality"].astype(str).unique())
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for lang in langs:
        for mod in modalities:
            sub = ex[(ex["lang"] == lang) & (ex["modality"] == mod)]
            if sub.empty:
                raise AnalysisError(f"the store has no {mod} examples in {lang!r}")
            sub = sub.drop_duplicates("sentence")  # one recording per sentence
            groups[(lang, mod)] = dict(zip(sub["sentence"].astype(str), sub["id"].astype(str),
                                           strict=True))
    common = set.intersection(*(set(g) for g in groups.values()))
    union = set.union(*(set(g) for g in groups.values()))
    sentences = sorted(common, key=lambda s: (len(s), s))
    if len(sentences) < 5:
        raise AnalysisError(f"only {len(sentences)} sentences are present in every language and "
                            "modality chosen; choose fewer languages or add data")
    if len(union) > len(common):
        log.info("%d sentences missing in some language or modality were dropped from all",
                 len(union) - len(common))
    ids = {key: [g[s] for s in sentences] for key, g in groups.items()}
    return PairedViews(store, sentences, ids, dropped=len(union) - len(common))
