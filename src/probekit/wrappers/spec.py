"""Model specs: the YAML files in ``models/`` as dataclasses.

A spec names the wrapper, the checkpoint (hub id or local path), the model class, dtype and device
defaults, the stacks to hook (stack name -> layer patterns, in depth order), the released
checkpoint's ``sizes`` (stack -> [recorded layers, width], for dry runs that load nothing) and a
``tiny`` variant: a config small enough for CPU tests, built with the same classes and random
weights.

A spec is read in two steps, so that this module never needs the wrapper registry:
:func:`read_spec` checks the YAML and returns a :class:`ModelSpec` whose ``options`` is still the
raw mapping; :func:`with_options` types it with the family's options class and checks it.
:func:`probekit.wrappers.load_spec`, which knows the families, does both.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError, closest


@dataclass
class ModelSpec:
    name: str
    wrapper: str
    stacks: dict[str, list[str]]
    checkpoint: str = ""              # hub id or local folder (needed unless the variant is tiny)
    model_class: str = ""             # the transformers class (families that build one)
    revision: str = "main"
    dtype: str = "float32"
    device: str = "auto"
    device_map: str | None = None     # "auto": weights spread over the GPUs (accelerate)
    quantize: str | None = None       # "8bit" | "4bit": LLM weights through bitsandbytes
    modalities: dict[str, list[str]] = field(default_factory=lambda: {"text": []})
    # modality -> the stacks it runs through (YAML: a list means every stack for each modality)
    processor: str | None = None      # hub id or path of the tokenizer / feature extractor
    options: Any = None               # the wrapper's Options dataclass (raw after read_spec)
    zscore: list[str] = field(default_factory=list)  # stacks analysed z-scored by default (LLMs)
    sizes: dict[str, list[int]] = field(default_factory=dict)  # stack -> [blocks, width] of the
    tiny: dict[str, Any] = field(default_factory=dict)         # released checkpoint (dry runs)
    check: bool = True                # the load-time batch-independence check (selfcheck.py)
    path: str | None = None
    shipped: bool = False             # read, unchanged, from probekit's own models/ (not YAML)
    default_checkpoint: str = ""      # the checkpoint the spec file names (not YAML)

    def stacks_for(self, modality: str) -> list[str]:
        """The stacks that ``modality`` runs through (empty if the model does not take it)."""
        return list(self.modalities.get(modality, []))

    def modalities_of(self, stack: str) -> list[str]:
        """The modalities whose inputs run through ``stack``."""
        return [m for m, stacks in self.modalities.items() if stack in stacks]


NOT_YAML = {"path", "shipped", "default_checkpoint"}  # set by read_spec, not by a spec file


@dataclass
class Options:
    """The options every wrapper takes (``options:`` in a spec). A wrapper family extends this
    dataclass with its own fields; each field's ``doc`` says what it does."""

    max_seconds: float = field(default=30.0, metadata={
        "doc": "longer clips are skipped, with the reason"})
    min_seconds: float = field(default=0.1, metadata={
        "doc": "shorter clips are skipped, with the reason"})
    max_text_tokens: int = field(default=1024, metadata={
        "doc": "longer texts (and decoder targets) are skipped, counted by the model's tokenizer"})

    def check(self, spec: ModelSpec) -> None:
        """Refuse values that are of the right type but unusable (raise :class:`SpecError`)."""
        for name in ("max_seconds", "min_seconds", "max_text_tokens"):
            if not getattr(self, name) > 0:
                raise SpecError(f"{spec.path}: options.{name}: must be positive, got "
                                f"{getattr(self, name)!r}")
        if self.min_seconds >= self.max_seconds:
            raise SpecError(f"{spec.path}: options.min_seconds must be below options.max_seconds")


def model_label(spec: ModelSpec) -> str:
    """The spec's name, and the checkpoint's when it is not the one the spec file names
    (``whisper_base:my-whisper``: a local folder by its name, a hub id whole)."""
    if not spec.checkpoint or spec.checkpoint == spec.default_checkpoint:
        return spec.name
    local = os.path.isdir(os.path.expanduser(spec.checkpoint))
    return f"{spec.name}:{Path(spec.checkpoint).name if local else spec.checkpoint}"


def limit(spec: ModelSpec, name: str) -> float:
    """An input limit of ``spec`` (``max_seconds``, ``min_seconds``, ``max_text_tokens``)."""
    return getattr(spec.options, name)


def typed_options(raw: Any, options_class: type, path: Path | str | None) -> Any:
    """A spec's ``options`` mapping as the wrapper's options dataclass: unknown names refused
    with the closest known one, values of the wrong type with what was expected."""
    from ..config import from_mapping

    return from_mapping(options_class, raw if raw is not None else {}, "options", str(path),
                        SpecError)


def models_dir() -> Path:
    """Where specs live: $PROBEKIT_MODELS, a checkout's ``models/``, or the installed copy."""
    from ..resources import models_dir as where

    return where()


def available_specs() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.yaml"))


def respec(spec: ModelSpec, **overrides: Any) -> ModelSpec:
    """A loaded ``spec`` with field overrides; ``options`` merge key by key and are typed by the
    spec's own options class."""
    if not overrides:
        return spec
    overrides["shipped"] = False
    if isinstance(overrides.get("options"), dict):
        merged = {**dataclasses.asdict(spec.options), **overrides["options"]}
        overrides["options"] = typed_options(merged, type(spec.options), spec.path)
    return dataclasses.replace(spec, **overrides)


def read_spec(spec: str | os.PathLike, **overrides: Any) -> ModelSpec:
    """Step one of loading a spec by name (``"seamless_m4t_v2"``) or YAML path, with field
    overrides: every field checked except ``options``, which stays the raw mapping (or None)
    until :func:`with_options` types it with the family's options class."""
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml"):
        path = models_dir() / f"{spec}.yaml"
    if not path.exists():
        hint = closest(str(spec), available_specs())
        raise SpecError(f"no model spec {str(spec)!r} (looked for {path}); "
                        + (f"did you mean {', '.join(hint)}? " if hint else "")
                        + f"available: {', '.join(available_specs()) or 'none'}")
    from ..config import load_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    data = load_yaml(text, str(path), SpecError) or {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a mapping of fields")
    known = {f.name for f in dataclasses.fields(ModelSpec)} - NOT_YAML
    for key in list(data) + list(overrides):
        if key not in known:
            hint = closest(key, known)
            raise SpecError(f"{path}: unknown field {key!r}"
                            + (f"; did you mean {hint[0]!r}?" if hint else ""))
    file_checkpoint = str(data.get("checkpoint") or "")  # before a recipe overrides it
    for key, value in overrides.items():  # options (and other mappings) merge key by key
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key != "stacks":
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    data.setdefault("name", path.stem)
    missing = [f.name for f in dataclasses.fields(ModelSpec)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in data]
    if missing:
        raise SpecError(f"{path}: missing field(s) {', '.join(missing)}")
    stacks = data["stacks"]
    if not isinstance(stacks, dict) or not stacks:
        raise SpecError(f"{path}: 'stacks' maps stack names to lists of layer patterns")
    data["stacks"] = {k: [v] if isinstance(v, str) else list(v) for k, v in stacks.items()}
    data["modalities"] = _modalities(data.get("modalities", ["text"]), data["stacks"], path)
    unknown = [z for z in data.get("zscore") or [] if z not in data["stacks"]]
    if unknown:
        raise SpecError(f"{path}: zscore names stack(s) {', '.join(unknown)} that are not in "
                        f"stacks ({', '.join(data['stacks'])})")
    shipped = not overrides and path.resolve().parent == models_dir().resolve()
    return ModelSpec(**data, path=str(path), shipped=shipped,
                     default_checkpoint=file_checkpoint)


def with_options(spec: ModelSpec, options_class: type) -> ModelSpec:
    """Step two: ``spec`` (from :func:`read_spec`) with its raw ``options`` typed as
    ``options_class`` (the family's ``Wrapper.Options``) and checked."""
    spec = dataclasses.replace(spec, options=typed_options(spec.options, options_class,
                                                          spec.path))
    spec.options.check(spec)
    return spec


def _modalities(value: Any, stacks: dict[str, list[str]], path: Path) -> dict[str, list[str]]:
    """``modalities`` as modality -> stacks: a list gives every stack to each modality; a mapping
    names, per modality, the stacks its inputs run through."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = {m: list(stacks) for m in value}
    if not isinstance(value, dict) or not value:
        raise SpecError(f"{path}: 'modalities' is a list (speech, text) or a mapping of each "
                        "modality to the stacks it runs through")
    out: dict[str, list[str]] = {}
    for modality, names in value.items():
        if modality not in ("speech", "text"):
            raise SpecError(f"{path}: modalities: {modality!r} is not speech or text")
        names = [names] if isinstance(names, str) else list(names or [])
        unknown = [n for n in names if n not in stacks]
        if unknown or not names:
            raise SpecError(f"{path}: modalities.{modality}: name stacks from "
                            f"{', '.join(stacks)}; got {names}")
        out[modality] = names
    orphans = [s for s in stacks if not any(s in names for names in out.values())]
    if orphans:
        raise SpecError(f"{path}: stack(s) {', '.join(orphans)} run on no modality; add them to "
                        f"'modalities' (e.g. modalities: {{text: [{', '.join(orphans)}]}})")
    return out
