"""Each view's products, computed once and shared by every row and measure that uses the view:
the array as loaded, its decomposition, its Gram or kernel matrices, and the Gram matrices of
subsets of its rows (what interval and contrast draws are computed from)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

import numpy as np
import torch

from .basis import (
    Basis,
    ConstantViewError,
    as_matrix,
    centre,
    constant_message,
    decompose,
    is_constant,
)
from .measures import linear_gram, subset_of_gram, zscored_subset_gram
from .registry import Measure
from .spectra import largest_feature_share

Key = Hashable


class ViewProducts:
    """The products of views loaded by ``load(key)``, for the measures in ``choices`` (name ->
    (measure, options)), each z-scored where ``zscore`` (a bool, or a function of the key)
    says, in ``dtype`` on ``device``; ``n_boot``: whether intervals are drawn."""

    def __init__(self, load: Callable[[Key], Any], choices: dict[str, tuple[Measure, Any]],
                 zscore: bool | Callable[[Key], bool], dtype: str, device: str | None,
                 n_boot: int):
        self.load, self.choices, self.zscore = load, choices, zscore
        self.dtype, self.device, self.n_boot = dtype, device, n_boot
        self.uses_bases = any(m.uses_bases for m, _ in choices.values())
        self._bases: dict[Key, Basis] = {}
        self._arrays: dict[Key, np.ndarray] = {}
        self._shares: dict[Key, float] = {}
        self._grams: dict[tuple[Key, str], torch.Tensor] = {}
        self._lengths: dict[Key, int] = {}  # kept by forget()

    def zscored(self, key: Key) -> bool:
        """Whether view ``key`` is z-scored before it is compared."""
        return bool(self.zscore(key)) if callable(self.zscore) else bool(self.zscore)

    def array(self, key: Key) -> np.ndarray:
        """The view as loaded (float64), before centring or z-scoring."""
        if key not in self._arrays:
            self._arrays[key] = np.asarray(self.load(key), dtype=np.float64)
            self._lengths[key] = len(self._arrays[key])
        return self._arrays[key]

    def examples(self, key: Key) -> int:
        """How many examples (rows) view ``key`` has: loaded once, remembered after
        :meth:`forget`."""
        if key not in self._lengths:
            self.array(key)
        return self._lengths[key]

    def matrix(self, key: Key) -> torch.Tensor:
        """The view as a checked matrix (finite, enough rows) of ``dtype`` on ``device``."""
        return as_matrix(self.array(key), self.dtype, self.device, name=str(key))

    def prepared(self, x: np.ndarray, key: Key) -> np.ndarray:
        """Rows ``x`` of view ``key`` z-scored on themselves where the view is z-scored."""
        return centre(torch.from_numpy(x), True).numpy() if self.zscored(key) else x

    def forget(self, keep: Iterable[Key] = ()) -> None:
        """Drop the products of every view but ``keep`` (their lengths stay known)."""
        keep = set(keep)
        self._bases = {k: v for k, v in self._bases.items() if k in keep}
        self._arrays = {k: v for k, v in self._arrays.items() if k in keep}
        self._shares = {k: v for k, v in self._shares.items() if k in keep}
        self._grams = {k: v for k, v in self._grams.items() if k[0] in keep}

    def prepare(self, key: Key) -> None:
        """Everything of view ``key`` that its rows share: its decomposition (for measures that
        use one) and its kernel or Gram matrices."""
        for name, (m, _) in self.choices.items():
            if m.uses_bases:
                self.basis(key)
            if m.kernel is not None:
                self.gram(name, key)
            if m.on_subset is not None and self.n_boot and not self.zscored(key):
                self.linear_gram(key)

    def basis(self, key: Key) -> Basis:
        """The decomposition of a view (computed on first use)."""
        if key not in self._bases:
            self._bases[key] = decompose(self.matrix(key), self.zscored(key),
                                         name=f"view {key}")
        return self._bases[key]

    def feature_share(self, key: Key) -> float:
        """The share of view ``key``'s variance held by its largest feature (as loaded)."""
        if key not in self._shares:
            self._shares[key] = largest_feature_share(self.array(key))
        return self._shares[key]

    def linear_gram(self, key: Key) -> torch.Tensor:
        """The Gram matrix of view ``key``'s rows, centred and z-scored where asked (computed on
        first use): linear CKA's kernel, and the source of a plain view's interval draws. Taken
        from the view's decomposition where a measure makes one (the same product)."""
        if (key, "linear_gram") not in self._grams:
            if self.uses_bases:
                b = self.basis(key)
                g = b.gram if b.gram is not None else linear_gram(b.x)
            else:
                x = self.matrix(key)
                if is_constant(x):
                    raise ConstantViewError(constant_message(f"view {key}"))
                g = linear_gram(centre(x, True) if self.zscored(key) else x)
            self._grams[(key, "linear_gram")] = g
        return self._grams[(key, "linear_gram")]

    def gram(self, measure: str, key: Key) -> torch.Tensor:
        """View ``key``'s kernel matrix for a kernel measure (computed on first use)."""
        m, options = self.choices[measure]
        if m.on_subset is not None:  # linear CKA: the shared Gram matrix
            return self.linear_gram(key)
        if (key, measure) not in self._grams:
            assert m.kernel is not None
            x = as_matrix(self.prepared(self.array(key), key), self.dtype, self.device,
                          name=str(key))
            self._grams[(key, measure)] = m.kernel.gram(x, options)
        return self._grams[(key, measure)]

    def subset_gram(self, key: Key) -> Callable[[torch.Tensor], torch.Tensor]:
        """Rows -> the Gram matrix of view ``key``'s rows, centred on them: a sub-matrix of the
        view's Gram matrix (formed once), or, for a z-scored view (whose scale changes with the
        rows), one product of the rows' features z-scored on themselves."""
        if not self.zscored(key):
            gram = self.linear_gram(key)
            return lambda rows: subset_of_gram(gram, rows)
        x = self.matrix(key)
        if is_constant(x):
            raise ConstantViewError(constant_message(f"view {key}"))
        return lambda rows: zscored_subset_gram(x, rows)
