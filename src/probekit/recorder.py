"""Record what chosen blocks of a model output during forward passes.

``Recorder`` is a context manager: it registers forward hooks on entry and always removes them on
exit, also when the forward pass raises. After each forward pass of the recorded module,
``rec[name]`` holds what that layer output in that pass, detached, pooled over valid positions only
and moved to the storage device and dtype::

    with Recorder(model.text_encoder, layers="layers.*", pool="mean") as rec:
        rec.set_mask(attention_mask)
        model.text_encoder(input_ids, attention_mask=attention_mask)
    rec["layers.0"]          # (B, D) tensor; a list of (T_i, D) tensors for pool="none"

A pass starts when the recorded module is called (or at :meth:`Recorder.reset`). Each hooked
module must run exactly once per pass unless ``repeats="all"``, which keeps every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from .blocks import INPUT, Pattern, matcher, module_path, resolve_layers
from .dtypes import as_dtype
from .errors import (
    LayerSelectionError,
    MissingLengthsError,
    RecordingError,
    closest,
    install_hint,
)
from .pooling import POOLS, pool as pool_output, valid_mask


def unwrap(output: Any) -> torch.Tensor:
    """The hidden states in a module's output: a tensor, a tuple's first element, or a
    ModelOutput's first field (``last_hidden_state``)."""
    seen = output
    for _ in range(4):
        if isinstance(output, torch.Tensor):
            return output
        if isinstance(output, (tuple, list)) and output:
            output = output[0]
        elif hasattr(output, "to_tuple"):
            output = output.to_tuple()
        elif isinstance(output, dict) and output:
            output = next(iter(output.values()))
        else:
            break
    raise RecordingError(
        f"cannot find a tensor in a module output of type {type(seen).__name__}; "
        "pass Recorder(..., unwrap=fn) to pick the hidden states out of it")


@dataclass
class _Validity:
    lengths: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    padding_side: str = "right"
    fills: bool = False
    cache: dict = field(default_factory=dict)

    def on(self, batch: int, time: int, device: torch.device, where: str
           ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The (B, T) mask on ``device`` and where it was made (None: every position is valid),
        made once per shape and device (no per-layer copies)."""
        key = (batch, time, str(device))
        if key not in self.cache:
            if self.fills and self.lengths is not None and int(self.lengths.max()) != time:
                raise RecordingError(
                    f"{where}: the longest valid length is {int(self.lengths.max())} but the "
                    f"output has {time} positions; the length rule for this stack is wrong")
            mask = valid_mask(self.lengths, self.mask, batch, time, self.padding_side, where)
            self.cache[key] = (None if mask is None else mask.to(device), mask)
        return self.cache[key]


class Recorder:
    """Hooks ``layers`` of ``module`` and records their (pooled) outputs for each forward pass.

    Args:
        module: the module that is called for a forward pass (a pass begins when it is called).
        layers: module paths or patterns relative to ``module`` (see :mod:`probekit.blocks`);
            None records every block of every block list.
        pool: ``"mean"`` (valid positions only), ``"first"``, ``"last"`` (last valid position),
            or ``"none"`` (token level: a list of ``(T_i, D)`` tensors).
        dtype: storage dtype (``"float32"``, ``"float16"``, ``"bfloat16"``), None keeps it.
        device: where recorded tensors go (``"cpu"`` by default; None leaves them where they are).
            CUDA outputs are copied into pinned memory without blocking the GPU.
        repeats: ``"error"`` (a module that runs twice in a pass is an error) or ``"all"``
            (``rec[name]`` is then a list with one entry per call).
        require_lengths: when True, a padded batch (B > 1) of sequences without lengths or a mask
            for that layer is an error; when False, every position counts as valid.
        backend: ``"hooks"`` (plain forward hooks) or ``"nnsight"`` (trace with nnsight; run the
            forward pass with :meth:`run`).
        unwrap: picks the hidden states out of a module output (default :func:`unwrap`).
        token_stride, max_positions: with ``pool="none"``, keep every ``token_stride``-th valid
            position, at most ``max_positions`` of them (fewer bytes when the disk is the limit).
    """

    def __init__(self, module: nn.Module, layers: Pattern | Sequence[Pattern] | None = None, *,
                 pool: str = "mean", dtype: str | torch.dtype | None = None,
                 device: str | torch.device | None = "cpu", repeats: str = "error",
                 require_lengths: bool = True, backend: str = "hooks",
                 unwrap: Callable[[Any], torch.Tensor] = unwrap, token_stride: int = 1,
                 max_positions: int | None = None):
        if pool not in POOLS:
            raise RecordingError(f"pool must be one of {', '.join(POOLS)}; got {pool!r}")
        if repeats not in ("error", "all"):
            raise RecordingError(f"repeats must be 'error' or 'all'; got {repeats!r}")
        if backend not in ("hooks", "nnsight"):
            raise RecordingError(f"backend must be 'hooks' or 'nnsight'; got {backend!r}")
        if token_stride < 1 or (max_positions is not None and max_positions < 1):
            raise RecordingError(f"token_stride and max_positions must be at least 1; got "
                                 f"{token_stride} and {max_positions}")
        self.positions = slice(0, max_positions and max_positions * token_stride, token_stride)
        self.module = module
        self.layers = resolve_layers(module, layers)
        self.pool = pool
        self.dtype = as_dtype(dtype)
        self.device = None if device is None else torch.device(device)
        self.repeats = repeats
        self.require_lengths = require_lengths
        self.backend = backend
        self._unwrap = unwrap
        self._modules = {name: module.get_submodule(module_path(name)) for name in self.layers}
        if backend == "nnsight" and any(n.endswith(INPUT) for n in self.layers):
            raise RecordingError("module inputs (':input' layers) are recorded by the 'hooks' "
                                 "backend only")
        self._validity: dict[str, _Validity] = {}
        self._views: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._results: dict[str, list[Any]] = {}
        self._events: list[Any] = []
        self._recording: Recording | None = None
        self._active = False

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> Recorder:
        if self._active:
            raise RecordingError("this Recorder is already active; do not nest it in itself")
        self._active = True
        if self.backend == "hooks":
            try:
                self._handles.append(self.module.register_forward_pre_hook(self._begin_pass))
                for name, mod in self._modules.items():
                    if name.endswith(INPUT):
                        self._handles.append(mod.register_forward_pre_hook(
                            self._input_hook_for(name), with_kwargs=True))
                    else:
                        self._handles.append(mod.register_forward_hook(self._hook_for(name)))
            except BaseException:
                self._remove()
                raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._active = False

    # -- valid positions -------------------------------------------------------------------
    def set_lengths(self, lengths: torch.Tensor | Sequence[int] | None,
                    layers: Pattern | Sequence[Pattern] | None = None,
                    padding_side: str = "right", fills: bool = False) -> None:
        """Valid lengths ``(B,)`` for the next passes, for ``layers`` (default: all recorded).

        ``fills=True`` also checks that the longest sequence fills the output exactly (a wrong
        length rule for a subsampling stack then fails instead of passing silently)."""
        validity = _Validity(lengths=None if lengths is None else torch.as_tensor(lengths),
                             padding_side=padding_side, fills=fills)
        for name in self._targets(layers):
            self._validity[name] = validity

    def set_mask(self, mask: torch.Tensor | None,
                 layers: Pattern | Sequence[Pattern] | None = None) -> None:
        """A ``(B, T)`` mask of valid positions (1 = valid) for ``layers`` (default: all)."""
        validity = _Validity(mask=None if mask is None else torch.as_tensor(mask))
        for name in self._targets(layers):
            self._validity[name] = validity

    def set_view(self, view: Callable[[torch.Tensor], torch.Tensor] | None,
                 layers: Pattern | Sequence[Pattern] | None = None) -> None:
        """Reshape the hidden states of ``layers`` before pooling, e.g. a block run on B*L
        windows of one query back to ``(B, L, D)`` (None removes it)."""
        for name in self._targets(layers):
            if view is None:
                self._views.pop(name, None)
            else:
                self._views[name] = view

    def _targets(self, layers: Pattern | Sequence[Pattern] | None) -> list[str]:
        if layers is None:
            return list(self.layers)
        patterns = [layers] if isinstance(layers, str) or callable(layers) else list(layers)
        out: list[str] = []
        for p in patterns:
            match = matcher(p)
            hits = [n for n in self.layers if match(n, self._modules[n])]
            if not hits:
                raise LayerSelectionError(f"{p!r} matches none of the recorded layers "
                                          f"({', '.join(self.layers[:6])}...)")
            out += hits
        return out

    # -- recording -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the last pass (called automatically when the recorded module is called)."""
        self._results = {}
        self._events = []
        self._recording = None

    def _begin_pass(self, _module: nn.Module, _args: Any) -> None:
        self.reset()

    def _input_hook_for(self, name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
            values = list(args) + list(kwargs.values())
            tensor = next((v for v in values if isinstance(v, torch.Tensor)), None)
            self._record(name, tensor if tensor is not None else values)
        return hook

    def _hook_for(self, name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            self._record(name, output)
        return hook

    def _record(self, name: str, output: Any) -> None:
        calls = self._results.setdefault(name, [])
        if calls and self.repeats == "error":
            raise RecordingError(
                f"module {name!r} ran more than once in one forward pass; a block that is reused "
                "needs Recorder(..., repeats='all'), or call rec.reset() between separate passes")
        x = self._unwrap(output).detach()
        if name in self._views:
            x = self._views[name](x)
        calls.append(self._process(name, x))

    def _process(self, name: str, x: torch.Tensor) -> Any:
        mask = host_mask = None
        if x.dim() == 3:
            v = self._validity.get(name)
            b, t = x.shape[0], x.shape[1]
            if v is not None:
                mask, host_mask = v.on(b, t, x.device, where=f"layer {name!r}")
            elif self.require_lengths and b > 1:
                raise MissingLengthsError(
                    f"layer {name!r}: a batch of {b} sequences of {t} positions but no valid "
                    "lengths; call rec.set_lengths(lengths) or rec.set_mask(attention_mask) before "
                    "the forward pass, or Recorder(..., require_lengths=False) if nothing is "
                    "padded", layer=name)
        if self.pool == "none" and x.dim() == 3 and self._to_host(x):
            # one non-blocking copy of the padded output; valid rows are cut out when read
            host = self._to_storage(x)
            cpu_mask = None if host_mask is None else host_mask.cpu()
            keep = self.positions
            return _Deferred(lambda: [(host[i] if cpu_mask is None else host[i][cpu_mask[i]])
                                      [keep] for i in range(host.shape[0])])
        pooled = pool_output(x, self.pool, mask)
        if isinstance(pooled, list):  # pool none
            kept = [p[self.positions] for p in pooled]
            lengths = [p.shape[0] for p in kept]
            flat = self._to_storage(torch.cat(kept, dim=0))
            return list(torch.split(flat, lengths, dim=0))
        return self._to_storage(pooled)

    def _to_storage(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype is not None and x.dtype != self.dtype:
            x = x.to(self.dtype)
        if self.device is None or x.device == self.device:
            is_view = x._base is not None or not x.is_contiguous()
            return x.clone() if is_view else x  # never keep a view into a module's output
        if self._to_host(x):
            host = x.to("cpu", non_blocking=True)  # pinned, from torch's caching host allocator
            event = torch.cuda.Event()
            event.record()
            self._events.append(event)
            return host
        return x.to(self.device)

    def _to_host(self, x: torch.Tensor) -> bool:
        return x.device.type == "cuda" and self.device is not None and self.device.type == "cpu"

    # -- running (both backends) -------------------------------------------------------------
    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run one forward pass of the module with these arguments and record it."""
        if not self._active:
            raise RecordingError(
                "use the Recorder as a context manager: `with Recorder(...) as rec:`")
        if self.backend == "hooks":
            return self.module(*args, **kwargs)
        return self._run_nnsight(args, kwargs)

    def _run_nnsight(self, args: tuple, kwargs: dict) -> Any:
        try:
            import nnsight
            from nnsight import NNsight
        except ImportError as e:  # nnsight is an extra
            raise RecordingError(f"backend='nnsight' needs nnsight ({e}): "
                                 f"{install_hint('nnsight')}") from None
        self.reset()
        traced = NNsight(self.module)
        with traced.trace(*args, **kwargs) as tracer:
            cache = tracer.cache(modules=[_envoy(traced, name) for name in self.layers],
                                 device=self.device)
            output = nnsight.save(traced.output)
        for key in cache.keys():  # noqa: SIM118 (execution order; a CacheView iterates by index)
            name = key.removeprefix("model.")
            if name not in self._modules:
                continue
            outputs = cache[key].output
            # nnsight keeps one entry per call, as a list, when a module runs more than once
            calls = outputs if isinstance(outputs, list) else [outputs]
            for out in calls:
                self._record(name, out)
        return output

    # -- results ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Layers recorded in the last pass, in execution order."""
        return list(self._results)

    @property
    def calls(self) -> dict[str, int]:
        """How many times each hooked module ran in the last pass (0 if it did not run)."""
        return {name: len(self._results.get(name, ())) for name in self.layers}

    def __contains__(self, name: str) -> bool:
        return name in self._results

    def __getitem__(self, name: str) -> Any:
        if name not in self._results:
            if name in self._modules:
                raise LayerSelectionError(f"layer {name!r} did not run in the last forward pass")
            hint = closest(name, self.layers)
            raise LayerSelectionError(f"layer {name!r} is not recorded"
                                      + (f"; did you mean {', '.join(hint)}?" if hint else ""))
        return self.collect()[name]

    def items(self) -> list[tuple[str, Any]]:
        """``(name, recorded)`` for every layer of the last pass, in execution order."""
        return [(name, self[name]) for name in self.names]

    def collect(self) -> Recording:
        """The last pass's results (call it after the pass) without waiting for device-to-host
        copies: hand it to ``StoreWriter.add`` and the writer thread waits, while this thread
        runs the next pass (which starts a new Recording)."""
        if self._recording is None:
            self._recording = Recording(self._results, self._events, self.repeats == "all")
        return self._recording


class Recording(Mapping):
    """One pass's recorded layers; copies in flight are waited for on first access."""

    def __init__(self, results: dict[str, list[Any]], events: list[Any], keep_calls: bool):
        self._raw, self._events, self._keep_calls = results, events, keep_calls
        self._done: dict[str, Any] | None = None

    def resolve(self) -> dict[str, Any]:
        """Wait for the copies and return ``{name: recorded}`` in execution order."""
        if self._done is None:
            for event in self._events:
                event.synchronize()
            done = {}
            for name, calls in self._raw.items():
                calls = [c.finish() if isinstance(c, _Deferred) else c for c in calls]
                done[name] = calls if self._keep_calls else calls[0]
            self._done = done
        return self._done

    def __getitem__(self, name: str) -> Any:
        return self.resolve()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class _Deferred:
    """A result whose final form is made on the CPU once its copy has arrived."""

    def __init__(self, finish: Callable[[], Any]):
        self.finish = finish


def _envoy(traced: Any, name: str) -> Any:
    obj = traced
    for part in name.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj
