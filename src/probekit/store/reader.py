"""Open an activation store in a notebook: ``store = probekit.open_store(path)``.

Opening reads only the JSON metadata; arrays are read from shard files when asked for::

    store.layers                                # canonical layer names, in recording order
    store.examples                              # DataFrame: id, sentence, lang, modality, text, ...
    x = store.read("text_encoder.layers.3", lang="fra", modality="text")   # (N, D) numpy
    store.tokens("speech_encoder.encoder.layers.0", "fra/speech/12")      # (T, D)
    store.paired(layer_a, layer_b, lang="fra", modality="speech", modality_b="text")
    store.to_xarray(stack="text_decoder", lang=["eng", "fra"])  # DataArray (example, layer, dim)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from ..errors import LayerSelectionError, StoreError, closest
from . import layout
from .integrity import REPAIR, Damage, damaged_shards
from .shards import ShardReader


def open_store(path: str | os.PathLike, verify: bool = False) -> Store:
    """Open the store at ``path`` for reading (lazy: reads metadata only). ``verify`` also checks
    every shard's SHA-256 (reads every byte once) and refuses a damaged store."""
    return Store(path, verify=verify)



@overload
def _as_list(v: None) -> None: ...
@overload
def _as_list(v: Any) -> list[Any]: ...
def _as_list(v: Any) -> list[Any] | None:
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
        return [v]
    return list(v)


class Store:
    """A read-only view of an activation store (all writer ranks together). Opening refuses a
    store with a missing or resized shard (``check``), and with ``verify`` one whose shards fail
    their checksums."""

    def __init__(self, path: str | os.PathLike, verify: bool = False, check: bool = True):
        import pandas as pd

        self.root = Path(path)
        meta_path = layout.store_json(self.root)
        if not meta_path.exists():
            hint = ""
            if (self.root / "store" / "store.json").exists():
                hint = f"; did you mean {self.root / 'store'}?"
            raise StoreError(f"{self.root} is not a probekit store (no store.json){hint}")
        self.meta = layout.read_json(meta_path)
        if self.meta.get("format") != layout.FORMAT or self.meta.get("version", 0) > layout.VERSION:
            raise StoreError(f"{self.root}: store format {self.meta.get('format')} version "
                             f"{self.meta.get('version')} is not readable by this probekit")
        self.backend: str = self.meta["backend"]
        self.schema: dict[str, dict[str, Any]] = {}
        self.skipped: list[dict[str, str]] = []
        self.complete = True
        self._shards: list[ShardReader] = []
        self._shard_layers: list[set[str]] = []
        frames = []
        self._entries: list[dict[str, Any]] = []
        manifests = layout.manifests(self.root)
        world, ranks = 1, set()
        for m in manifests:
            data = layout.read_manifest(m)
            world = max(world, int(data.get("world", 1)))
            ranks.add(int(m.stem.removeprefix("manifest-r")))
            self.complete &= bool(data.get("complete"))
            self.skipped += data.get("skipped", [])
            for name, info in (data.get("layers") or {}).items():
                if self.schema.get(name, info) != info:
                    raise StoreError(f"{m.name} records layer {name!r} differently from another "
                                     "rank")
                self.schema[name] = info
            for entry in data["shards"]:
                shard_no = len(self._shards)
                self._entries.append(entry)
                outside = layout.shard_file_problem(self.root, entry.get("file"))
                self._shards.append(ShardReader(self.root / str(entry.get("file")),
                                                self.backend, self.schema, refused=outside,
                                                n=entry["n"]))
                self._shard_layers.append(set(entry.get("layers", data.get("layers") or {})))
                frame = pd.DataFrame(entry["examples"])
                frame["shard"] = shard_no
                frame["row"] = np.arange(entry["n"])
                frames.append(frame)
        self.complete &= bool(manifests)
        # writer ranks the run had (its manifests say how many) whose manifest is not here
        self.missing_ranks = sorted(set(range(world)) - ranks) if manifests else []
        self.complete &= not self.missing_ranks
        if frames:
            table = pd.concat(frames, ignore_index=True)
        else:
            table = pd.DataFrame({c: [] for c in layout.EXAMPLE_COLUMNS + ("shard", "row")})
        if table["id"].duplicated().any():
            dup = table.loc[table["id"].duplicated(), "id"].iloc[0]
            raise StoreError(f"{self.root}: example id {dup!r} appears in two shards "
                             "(two writers given overlapping examples?)")
        self._table = table
        self._position = {i: k for k, i in enumerate(table["id"])}
        if check:
            self.check(checksum=verify)

    @property
    def shards(self) -> list[dict[str, Any]]:
        """The committed shards' manifest entries: file, n, bytes, sha256, layers, examples."""
        return list(self._entries)

    def check(self, checksum: bool = True) -> None:
        """Refuse (:class:`StoreError`, naming them) damaged shards: see :meth:`verify`."""
        damage = self.verify(checksum)
        if damage:
            raise StoreError(f"store {self.root} has {len(damage)} damaged shard(s): "
                             + "; ".join(d.describe() for d in damage[:3])
                             + ("; ..." if len(damage) > 3 else "") + f". To repair it, {REPAIR}")

    def verify(self, checksum: bool = True) -> list[Damage]:
        """The damaged shards: outside the store, missing, of the wrong size or (``checksum``)
        failing their SHA-256 or holding arrays of other dtypes or widths than the manifest
        records; each with the ids of the examples it held."""
        damage = damaged_shards(self.root, self._entries, checksum)
        if checksum:
            known = {d.file for d in damage}
            for entry, shard in zip(self._entries, self._shards, strict=True):
                if str(entry.get("file"))[:80] in known:
                    continue
                problem = shard.structure_problem()
                shard.close()
                if problem:
                    damage.append(Damage(entry["file"], problem,
                                         [str(i) for i in entry["examples"]["id"]]))
        return damage

    # -- metadata ----------------------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        """Canonical layer names (module paths), in recording order."""
        return list(self.schema)

    @property
    def examples(self):
        """One row per stored example: id, sentence, lang, modality, text, source, length,
        duration, nonfinite (layers with NaN/inf, comma-separated), and any extra columns."""
        return self._table.drop(columns=["shard", "row"])

    @property
    def stacks(self) -> dict[str, list[str]]:
        """The layers of each stack, in recording order: the stacks the recording spec named
        (kept in the provenance); any other layer by its name less the block index
        (``text_encoder.layers.3`` in ``text_encoder.layers``), or alone."""
        out: dict[str, list[str]] = {}
        claimed: set[str] = set()
        for stack, patterns in (self.provenance.get("stacks") or {}).items():
            from ..blocks import stack_layers

            names = [n for n in stack_layers(patterns, self.layers) if n not in claimed]
            if names:
                out[stack] = names
                claimed.update(names)
        for name in self.layers:
            if name not in claimed:
                block = re.fullmatch(r"(.+)\.\d+", name)
                out.setdefault(block.group(1) if block else name, []).append(name)
        return out

    def depth(self, layer: str) -> tuple[str, int]:
        """``(stack, depth)`` of a layer: its stack and its index there (0: the first block)."""
        self._layer(layer)
        return next((stack, names.index(layer)) for stack, names in self.stacks.items()
                    if layer in names)

    @property
    def provenance(self) -> dict[str, Any]:
        return self.meta.get("provenance", {})

    @property
    def recipe_hash(self) -> str | None:
        return self.meta.get("recipe_hash")

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        langs = sorted(self._table["lang"].astype(str).unique()) if len(self._table) else []
        mods = sorted(self._table["modality"].astype(str).unique()) if len(self._table) else []
        return (f"<probekit Store {self.root}: {len(self)} examples, {len(self.layers)} layers, "
                f"langs={langs[:8]}{'...' if len(langs) > 8 else ''}, modalities={mods}, "
                f"backend={self.backend}{'' if self.complete else ', INCOMPLETE'}>")

    def select(self, lang: Any = None, modality: Any = None, ids: Sequence[str] | None = None,
               drop_nonfinite: bool = False):
        """The rows of :attr:`examples` selected (``ids`` keeps the order given)."""
        t = self._table
        if ids is not None:
            ids = [str(i) for i in _as_list(ids)]
            missing = [i for i in ids if i not in self._position]
            if missing:
                raise StoreError(f"{len(missing)} id(s) not in the store, e.g. {missing[0]!r}")
            t = t.iloc[[self._position[i] for i in ids]]
        for col, want in (("lang", lang), ("modality", modality)):
            values = _as_list(want)
            if values is not None:
                have = set(self._table[col].astype(str))
                unknown = [v for v in values if v not in have]
                if unknown:
                    raise StoreError(f"no example has {col} {unknown[0]!r}; the store has "
                                     f"{', '.join(sorted(have))}")
                t = t[t[col].isin(values)]
        if drop_nonfinite:
            t = t[t["nonfinite"].astype(str) == ""]
        return t

    def _layer(self, layer: str, kind: str | None = None) -> dict[str, Any]:
        if layer not in self.schema:
            hint = closest(layer, self.schema)
            raise LayerSelectionError(
                f"layer {layer!r} is not in store {self.root}"
                + (f"; closest: {', '.join(hint)}" if hint
                   else f"; it has {len(self.schema)} layers"))
        info = self.schema[layer]
        if kind and info["kind"] != kind:
            other = "read_tokens()/tokens()" if info["kind"] == "tokens" else "read()"
            raise StoreError(f"layer {layer!r} is stored as {info['kind']}; use {other}")
        return info

    # -- arrays ------------------------------------------------------------------------------
    def read(self, layer: str, lang: Any = None, modality: Any = None,
             ids: Sequence[str] | None = None, drop_nonfinite: bool = False) -> np.ndarray:
        """Pooled ``(N, D)`` array of ``layer`` for the selected examples, in selection order.

        A token-level layer is mean-pooled over its valid positions."""
        info = self._layer(layer)
        rows = self._holding([layer], self.select(lang, modality, ids, drop_nonfinite),
                             ids is None and modality is None)
        dtype = np.float32 if info["dtype"] == "bfloat16" else np.dtype(info["dtype"])
        out = np.empty((len(rows), info["dim"]), dtype=dtype)
        shard_of = rows["shard"].to_numpy()
        row_of = rows["row"].to_numpy()
        self._check_recorded(layer, rows)
        for s in np.unique(shard_of):
            where = np.flatnonzero(shard_of == s)
            reader = self._shards[int(s)]
            if info["kind"] == "pooled":
                out[where] = reader.pooled(layer, row_of[where])
            else:
                for w in where:
                    out[w] = reader.tokens(layer, int(row_of[w])).mean(axis=0, dtype=np.float64)
        return out

    def content_digest(self, layer: str, ids: Sequence[str]) -> str | None:
        """A digest naming what :meth:`read` gives for ``layer`` and ``ids``: the layer, the
        ids, each one's shard and row, and the SHA-256 of every shard holding them (no data
        read). None when one of those shards has no checksum (stores written before them)."""
        import hashlib

        rows = self.select(ids=ids)
        shards = rows["shard"].to_numpy()
        sums = {int(s): self._entries[int(s)].get("sha256") for s in np.unique(shards)}
        if not all(sums.values()):
            return None
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((layer, list(rows["id"].astype(str)), sorted(sums.items()))).encode(
            "utf-8", "backslashreplace"))
        h.update(shards.astype(np.int64).tobytes() + rows["row"].to_numpy(np.int64).tobytes())
        return h.hexdigest()

    def _check_recorded(self, layer: str, rows: Any) -> None:
        missing = [k for k, s in enumerate(rows["shard"]) if layer not in self._shard_layers[s]]
        if missing:
            first = rows.iloc[missing[0]]
            raise StoreError(
                f"layer {layer!r} was not recorded for {len(missing)} of the selected examples "
                f"(e.g. {first['id']!r}, modality {first['modality']!r}); select examples that "
                "pass through it, e.g. modality=...")

    def _holding(self, layers: Sequence[str], rows: Any, default: bool) -> Any:
        """``rows`` that hold every one of ``layers``: with no explicit ids or modality, the
        examples that do not pass through a layer's stack are left out (a speech-encoder layer
        selects the speech examples); an explicit selection is checked instead."""
        if not default:
            for layer in layers:
                self._check_recorded(layer, rows)
            return rows
        keep = [all(n in self._shard_layers[s] for n in layers) for s in rows["shard"]]
        if len(rows) and not any(keep):
            raise StoreError(f"no selected example holds {'all of ' if len(layers) > 1 else ''}"
                             f"{', '.join(layers[:3])}{', ...' if len(layers) > 3 else ''}; "
                             "layers of different modalities' stacks never share an example")
        return rows[keep]

    def recorded(self, layer: str):
        """The rows of :attr:`examples` for which ``layer`` was recorded."""
        self._layer(layer)
        keep = [layer in self._shard_layers[s] for s in self._table["shard"]]
        return self._table[keep].drop(columns=["shard", "row"])

    def tokens(self, layer: str, example_id: str) -> np.ndarray:
        """Token-level ``(T, D)`` array of one example (valid positions only)."""
        self._layer(layer, "tokens")
        rows = self.select(ids=[example_id])
        self._check_recorded(layer, rows)
        row = rows.iloc[0]
        return self._shards[int(row["shard"])].tokens(layer, int(row["row"]))

    def read_tokens(self, layer: str, lang: Any = None, modality: Any = None,
                    ids: Sequence[str] | None = None) -> list[np.ndarray]:
        """Token-level arrays of the selected examples, one ``(T_i, D)`` per example."""
        self._layer(layer, "tokens")
        rows = self._holding([layer], self.select(lang, modality, ids),
                             ids is None and modality is None)
        return [self._shards[int(s)].tokens(layer, int(r))
                for s, r in zip(rows["shard"], rows["row"], strict=True)]

    def to_torch(self, layer: str, **selection: Any):
        """:meth:`read` as a torch tensor."""
        import torch
        return torch.from_numpy(self.read(layer, **selection))

    def paired(self, layer_a: str, layer_b: str, lang: Any = None, modality: Any = None,
               lang_b: Any = None, modality_b: Any = None):
        """Aligned ``(X_a, X_b, keys)``: ``layer_a`` on the examples selected by ``lang`` and
        ``modality``, ``layer_b`` on those of ``lang_b`` and ``modality_b`` (by default the
        same), row i of both from the same sentence (and the same language unless ``lang_b``
        is given); ``keys`` says which. Examples without a partner are left out.

            speech, text, keys = store.paired(layer, layer, modality="speech",
                                              modality_b="text")     # cross-modal
            fra, eng, keys = store.paired(layer, layer, lang="fra", lang_b="eng")"""
        by = ["sentence"] if lang_b is not None else ["sentence", "lang"]
        b_lang = lang if lang_b is None else lang_b
        b_mod = modality if modality_b is None else modality_b
        sides = []
        for layer, lg, md in ((layer_a, lang, modality), (layer_b, b_lang, b_mod)):
            rows = self._holding([layer], self.select(lg, md), md is None)
            sides.append(rows.drop_duplicates(by).set_index(by)["id"])
        common = sides[0].index.intersection(sides[1].index, sort=False)
        if not len(common):
            raise StoreError(f"no sentence is in both selections of {layer_a} and {layer_b}")
        xa = self.read(layer_a, ids=list(sides[0].loc[common]))
        xb = self.read(layer_b, ids=list(sides[1].loc[common]))
        keys = common.to_frame(index=False)
        keys["id_a"], keys["id_b"] = list(sides[0].loc[common]), list(sides[1].loc[common])
        return xa, xb, keys

    def to_xarray(self, layers: Sequence[str] | None = None, stack: str | None = None,
                  lazy: bool = False, chunk: int = 1024, **selection: Any):
        """A DataArray ``(example, layer, dim)``: coordinates ``lang``, ``modality`` and
        ``sentence`` per example, ``stack`` and ``depth`` per layer. ``stack`` takes that
        stack's layers; with neither it nor ``layers``: every layer that all the selected
        examples hold (with several modalities selected, their shared stacks, such as a decoder
        run on both). ``lazy``: backed by dask (the ``[notebook]`` extra), read ``chunk``
        examples of one layer at a time when computed, for stores larger than memory."""
        from .xarray_view import data_array

        return data_array(self, layers, stack, lazy, chunk, selection)

    def close(self) -> None:
        for shard in self._shards:
            shard.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
