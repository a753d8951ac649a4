"""A store's layers as one xarray DataArray ``(example, layer, dim)``: in memory, or lazily
backed by dask (read a chunk of examples of one layer at a time, when computed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import StoreError, closest, install_hint

Store = Any  # a reader.Store (which imports this module when asked for a DataArray)


def _layers(store: Store, layers: Sequence[str] | None, stack: str | None,
            rows: Any) -> list[str]:
    """The layers asked for: ``layers``, ``stack``'s, or every layer the rows all hold."""
    stacks = store.stacks
    if stack is not None:
        if stack not in stacks:
            hint = closest(stack, stacks)
            raise StoreError(f"no stack {stack!r} in store {store.root}; "
                             + (f"closest: {', '.join(hint)}" if hint
                                else f"it has {', '.join(stacks)}"))
        return list(stacks[stack])
    if layers is None:
        shards = set(rows["shard"])
        layers = [n for n in store.layers
                  if all(n in store._shard_layers[s] for s in shards)]
        if not layers:
            raise StoreError("the selected examples share no layer (speech and text run "
                             "through different stacks); select one modality, e.g. "
                             "modality='text', or pass layers=[...]")
    return list(layers)


def _lazy(store: Store, layers: list[str], ids: list[str], chunk: int) -> Any:
    """``(example, layer, dim)`` as a dask array of ``chunk`` examples x one layer blocks."""
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise StoreError(f"to_xarray(lazy=True) needs dask: {install_hint('notebook')}") from None
    if chunk < 1:
        raise StoreError(f"to_xarray: chunk must be at least 1 example, not {chunk}")
    dtype = store.read(layers[0], ids=ids[:1]).dtype if ids else np.dtype(np.float32)
    width = int(store._layer(layers[0])["dim"])
    read = dask.delayed(lambda layer, part: store.read(layer, ids=part), pure=True)
    columns = [da.concatenate([da.from_delayed(read(layer, ids[i:i + chunk]),
                                               (len(ids[i:i + chunk]), width), dtype=dtype)
                               for i in range(0, len(ids), chunk)] or
                              [da.zeros((0, width), dtype=dtype)], axis=0)
               for layer in layers]
    return da.stack(columns, axis=1)


def data_array(store: Store, layers: Sequence[str] | None, stack: str | None, lazy: bool,
               chunk: int, selection: dict[str, Any]) -> Any:
    """:meth:`Store.to_xarray`."""
    try:
        import xarray as xr
    except ImportError:
        raise StoreError(f"to_xarray needs xarray: {install_hint('notebook')}") from None
    rows = store.select(**selection)
    names = _layers(store, layers, stack, rows)
    rows = store._holding(names, rows, selection.get("ids") is None
                          and selection.get("modality") is None)
    widths = {store._layer(n)["dim"] for n in names}
    if len(widths) != 1:
        raise StoreError(f"layers of different widths ({sorted(widths)}) cannot share a 'dim' "
                         "axis; pass layers=[...] of one width")
    ids = list(rows["id"])
    data = (_lazy(store, names, ids, chunk) if lazy
            else np.stack([store.read(n, ids=ids) for n in names], axis=1))
    where = {n: (s, d) for s, stacked in store.stacks.items() for d, n in enumerate(stacked)}
    return xr.DataArray(
        data, dims=("example", "layer", "dim"),
        coords={"example": rows["id"].to_numpy(), "layer": names,
                "dim": np.arange(data.shape[2]),
                "lang": ("example", rows["lang"].to_numpy()),
                "modality": ("example", rows["modality"].to_numpy()),
                "sentence": ("example", rows["sentence"].to_numpy()),
                "stack": ("layer", [where[n][0] for n in names]),
                "depth": ("layer", [where[n][1] for n in names])},
        attrs={"store": str(store.root), "recipe_hash": str(store.recipe_hash)})
