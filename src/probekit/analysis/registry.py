"""Similarity measures as records: what each computes, what it can reuse, which options it takes.

A :class:`Measure` says everything :class:`~probekit.analysis.Comparer` needs to know: the
function on two paired arrays, whether it works from the shared decompositions of the views
(``from_bases``; SVCCA also has a batched product path, ``many_from_bases``), its exact permutation
null if it has one (``exact_null``; otherwise the generic null recomputes the measure on shuffled
rows), and its options as a small frozen dataclass with a doc per field. A recipe names a measure
(``svcca``) or a measure with options (``{rbf_cka: {sigma: 0.5}}``).

A new measure is one function and one call; its options come from the function's keyword
parameters (``dtype`` and ``device`` are passed only where the function takes them)::

    def mean_gap(x, y, *, scale: float = 1.0) -> float:
        return -scale * float(np.abs(x.mean(0) - y.mean(0)).mean())

    register_measure(Measure("mean_gap", mean_gap))
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import from_mapping
from ..errors import ProbekitError, closest
from .basis import AnalysisError, Basis
from .measures import (
    CKA_KERNEL,
    Kernel,
    Similarity,
    linear_cka,
    linear_cka_on_subset,
    paired_cosine,
    pwcca,
    pwcca_from_bases,
    rbf_cka,
    retrieval_accuracy,
    svcca,
    svcca_from_bases,
    svcca_many_from_bases,
    svcca_on_subset,
)
from .stats import Null, pwcca_null, svcca_null

PLACEMENT = ("dtype", "device")  # passed to a measure's function when it takes them


# -- options of the built-in measures ----------------------------------------------------------
@dataclass(frozen=True)
class NoOptions:
    """No options (SVCCA and PWCCA take the analysis's ``variance`` and ``k``)."""


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


_DEBIASED = "unbiased HSIC estimator (Song et al. 2012): no upward bias at small n"


@dataclass(frozen=True)
class LinearCKAOptions:
    debiased: bool = field(default=False, metadata=_doc(_DEBIASED))


@dataclass(frozen=True)
class RBFCKAOptions:
    sigma: float = field(default=0.8, metadata=_doc(
        "kernel width, times the square root of the view's median squared distance"))
    debiased: bool = field(default=False, metadata=_doc(_DEBIASED))


@dataclass(frozen=True)
class PairedCosineOptions:
    centred: bool = field(default=False, metadata=_doc("centre each view's columns first"))


@dataclass(frozen=True)
class RetrievalOptions:
    centred: bool = field(default=True, metadata=_doc("centre each view's columns first"))


# -- the record --------------------------------------------------------------------------------
FromBases = Callable[..., Similarity]            # (bx, by, variance, k, **options)
ManyFromBases = Callable[..., list]              # (ba, kx, [(bb, ky), ...]) -> scores
ExactNull = Callable[..., Null]                  # (bx, by, kx, ky, variance, k, n_perm, seed)


@dataclass(frozen=True)
class Measure:
    """One similarity measure and what it supports.

    Args:
        name: the name recipes and rows use (``measure`` column; also seeds each row).
        fn: ``fn(x, y, **options)`` on two paired ``(n, d)`` arrays: a :class:`Similarity` or
            a float. Measures with ``from_bases`` also take ``variance`` and ``k``; ``dtype``
            and ``device`` are passed when ``fn`` takes them.
        options: a (frozen) dataclass of the options, one ``metadata={"doc": ...}`` per field;
            None: made from ``fn``'s keyword parameters that have defaults.
        from_bases: ``(bx, by, variance, k, **options) -> Similarity`` from two views'
            decompositions, which a :class:`Comparer` shares between measures; None: the
            measure is recomputed from the arrays.
        many_from_bases: ``(ba, kx, [(bb, ky), ...]) -> [score, ...]``: one view against many
            in one product (SVCCA), used instead of ``from_bases`` by ``compare_many``.
        exact_null: ``(bx, by, kx, ky, variance, k, n_perm, seed, **options) -> Null``, the
            permutation null from the decompositions; None: the generic permutation null.
        on_subset: ``(gx, gy, (dx, dy), variance, k, options) -> float``: the measure on a
            subset of two views' rows from the Gram matrices of those rows, each centred (and
            z-scored, where asked) on the subset: interval and contrast draws without the
            measure's own pass over the features.
        kernel: a :class:`~.measures.Kernel`: the score and its permutation null (with the
            generic null's shuffles, :func:`~.stats.permutations`) from each view's kernel
            matrix, formed once per view (CKA); None: from the arrays.
        doc: one line for listings.
    """
    name: str
    fn: Callable[..., Any]
    options: type = None  # type: ignore[assignment]  # None: made from fn in __post_init__
    from_bases: FromBases | None = None
    many_from_bases: ManyFromBases | None = None
    exact_null: ExactNull | None = None
    doc: str = ""
    kernel: Kernel | None = None
    on_subset: Callable[..., float] | None = None

    def __post_init__(self) -> None:
        if self.options is None:
            object.__setattr__(self, "options", options_from_signature(self.fn, self.name))
        _check_measure(self)
        params = inspect.signature(self.fn).parameters
        open_ = any(p.kind is p.VAR_KEYWORD for p in params.values())
        object.__setattr__(self, "_drop", () if open_ else
                           tuple(p for p in PLACEMENT if p not in params))

    @property
    def uses_bases(self) -> bool:
        """Computed from the views' shared decompositions (and truncated by variance / k)."""
        return self.from_bases is not None

    def configure(self, options: Any = None, where: str = "", path: str = "measure",
                  error: type[ProbekitError] = AnalysisError) -> Any:
        """``options`` (None, a mapping or an instance) as an instance of :attr:`options`,
        checked: an unknown option names the closest one, a wrong type the expected type."""
        if options is None:
            return self.options()
        if isinstance(options, self.options):
            return options
        return from_mapping(self.options, options, where or self.name, path, error)

    def keywords(self, options: Any) -> dict[str, Any]:
        """The options instance as keyword arguments of :attr:`fn`."""
        return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}

    def compute(self, x: Any, y: Any, **kwargs: Any) -> Any:
        """``fn(x, y, **kwargs)``, leaving out ``dtype`` / ``device`` where ``fn`` lacks them."""
        for name in self._drop:  # type: ignore[attr-defined]  # set in __post_init__
            kwargs.pop(name, None)
        return self.fn(x, y, **kwargs)


def describe_options(options: Any) -> str:
    """The options that differ from their defaults, compactly (``sigma=0.5``; "" for none)."""
    default = type(options)()
    return ", ".join(f"{f.name}={getattr(options, f.name)}" for f in dataclasses.fields(options)
                     if getattr(options, f.name) != getattr(default, f.name))


def options_from_signature(fn: Callable[..., Any], name: str) -> type:
    """A frozen dataclass of ``fn``'s keyword parameters that have defaults (but dtype/device)."""
    hints = typing.get_type_hints(fn)
    specs = []
    for i, p in enumerate(inspect.signature(fn).parameters.values()):
        if (i < 2 or p.name in PLACEMENT or p.default is inspect.Parameter.empty
                or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)):
            continue
        tp = hints.get(p.name, Any if p.default is None else type(p.default))
        specs.append((p.name, tp, field(default=p.default, metadata=_doc(""))))
    return dataclasses.make_dataclass(f"{name.title().replace('_', '')}Options", specs,
                                      frozen=True)


def _check_measure(m: Measure) -> None:
    """A measure's parts fit together (errors at definition, not in the middle of a grid)."""
    if not isinstance(m.name, str) or not m.name:
        raise AnalysisError(f"a measure needs a name; got {m.name!r}")
    if not (isinstance(m.options, type) and dataclasses.is_dataclass(m.options)):
        raise AnalysisError(f"measure {m.name}: options must be a dataclass; got {m.options!r}")
    if (m.many_from_bases or m.exact_null) and not m.from_bases:
        raise AnalysisError(f"measure {m.name}: many_from_bases and exact_null need from_bases")
    params = inspect.signature(m.fn).parameters
    open_ = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for f in dataclasses.fields(m.options):
        if f.name not in params and not open_:
            raise AnalysisError(f"measure {m.name}: option {f.name!r} is not a parameter of "
                                f"{getattr(m.fn, '__name__', m.fn)}")
        given = params[f.name].default if f.name in params else inspect.Parameter.empty
        if given is not inspect.Parameter.empty and given != f.default:
            raise AnalysisError(f"measure {m.name}: option {f.name} defaults to {f.default!r} "
                                f"but the function's default is {given!r}")


# -- the registry ------------------------------------------------------------------------------
def _svcca_bases(bx: Basis, by: Basis, variance: float, k: int | None) -> Similarity:
    return svcca_from_bases(bx, by, variance, k, warn=False)  # k is checked by the Comparer


def _svcca_null(bx: Basis, by: Basis, kx: int, ky: int, variance: float, k: int | None,
                n_perm: int, seed: int) -> Null:
    return svcca_null(bx, by, kx, ky, n_perm, seed)


def _pwcca_null(bx: Basis, by: Basis, kx: int, ky: int, variance: float, k: int | None,
                n_perm: int, seed: int) -> Null:
    return pwcca_null(bx, by, variance, k, n_perm, seed)


MEASURES: dict[str, Measure] = {}


def register_measure(measure: Measure, replace: bool = False) -> Measure:
    """Add ``measure`` to :data:`MEASURES` (recipes and :class:`Comparer` can then name it)."""
    if measure.name in MEASURES and not replace:
        raise AnalysisError(f"measure {measure.name!r} is already registered; pass "
                            "replace=True to redefine it")
    MEASURES[measure.name] = measure
    return measure


for _m in (
        Measure("svcca", svcca, NoOptions, _svcca_bases, svcca_many_from_bases, _svcca_null,
                "mean canonical correlation of the kept singular directions",
                on_subset=svcca_on_subset),
        Measure("pwcca", pwcca, NoOptions, pwcca_from_bases, None, _pwcca_null,
                "projection-weighted CCA, symmetric"),
        Measure("linear_cka", linear_cka, LinearCKAOptions, doc="linear CKA",
                kernel=CKA_KERNEL, on_subset=linear_cka_on_subset),
        Measure("rbf_cka", rbf_cka, RBFCKAOptions, doc="CKA with Gaussian kernels",
                kernel=CKA_KERNEL),
        Measure("paired_cosine", paired_cosine, PairedCosineOptions,
                doc="mean cosine of paired rows (views of one width)"),
        Measure("retrieval", retrieval_accuracy, RetrievalOptions,
                doc="share of rows whose nearest other-view row is their pair")):
    register_measure(_m)


def measure(name: str) -> Measure:
    """The registered measure ``name`` (an unknown name suggests the closest)."""
    if name not in MEASURES:
        hint = closest(str(name), MEASURES)
        raise AnalysisError(f"unknown measure {name!r}" + (f"; did you mean {hint[0]!r}?" if hint
                            else "") + f" (measures: {', '.join(MEASURES)})")
    return MEASURES[name]


def split_measure(item: Any) -> tuple[str, Any]:
    """``(name, options)`` of a measure as given: ``"name"``, ``{name: options}`` (a recipe's
    form) or ``(name, options)``; options None (defaults), a mapping or an options instance."""
    if isinstance(item, str):
        return item, None
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and not \
            isinstance(item[1], str):
        return item[0], item[1]
    if isinstance(item, Mapping) and len(item) == 1:
        ((name, options),) = item.items()
        if isinstance(name, str):
            return name, options
    raise AnalysisError("expected a measure name or a one-key mapping name -> options, e.g. "
                        f"{{rbf_cka: {{sigma: 0.5}}}}; got {item!r}")


def similarity(name: str, x: Any, y: Any, **options: Any) -> Similarity:
    """Compute measure ``name`` (one of :data:`MEASURES`) between paired views."""
    return measure(name).fn(x, y, **options)
