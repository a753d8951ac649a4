"""Model specs: the YAML files in ``models/`` as dataclasses.

A spec names the wrapper, the checkpoint (hub id or local path), the model class, dtype and device
defaults, the stacks to hook (stack name -> layer patterns, in depth order), the released
checkpoint's ``sizes`` (stack -> [recorded layers, width], for dry runs that load nothing) and a
``tiny`` variant: a config small enough for CPU tests, built with the same classes and random
weights.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ProbekitError, closest


class SpecError(ProbekitError):
    """A model spec that cannot be found or read."""


@dataclass
class ModelSpec:
    name: str
    wrapper: str
    checkpoint: str
    model_class: str
    stacks: dict[str, list[str]]
    revision: str = "main"
    dtype: str = "float32"
    device: str = "auto"
    modalities: dict[str, list[str]] = field(default_factory=lambda: {"text": []})
    # modality -> the stacks it runs through (YAML: a list means every stack for each modality)
    processor: str | None = None      # hub id or path of the tokenizer / feature extractor
    options: dict[str, Any] = field(default_factory=dict)
    zscore: list[str] = field(default_factory=list)  # stacks analysed z-scored by default (LLMs)
    sizes: dict[str, list[int]] = field(default_factory=dict)  # stack -> [blocks, width] of the
    tiny: dict[str, Any] = field(default_factory=dict)         # released checkpoint (dry runs)
    path: str | None = None

    def stacks_for(self, modality: str) -> list[str]:
        """The stacks that ``modality`` runs through (empty if the model does not take it)."""
        return list(self.modalities.get(modality, []))

    def modalities_of(self, stack: str) -> list[str]:
        """The modalities whose inputs run through ``stack``."""
        return [m for m, stacks in self.modalities.items() if stack in stacks]


# Spec options: every wrapper's, then each wrapper's own (name -> type). Unknown names and values
# of the wrong type are refused when the spec loads, before any weights do.
COMMON_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "max_seconds": (int, float),     # longer clips are skipped, with the reason (default 30)
    "min_seconds": (int, float),     # shorter clips are skipped (default 0.1)
    "max_text_tokens": int,          # longer texts are skipped (default 1024)
}
WRAPPER_OPTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "hf": {"routes": dict, "input": str, "decoder": bool, "text_format": str,
           "language_codes": str, "counts": dict, "lengths": dict, "extractor_options": dict,
           "pass_attention_mask": bool, "feature_extractor": str, "checkpoint_format": str,
           "submodule": str},
    "seamless_m4t": {},
    "sonar": {"speech_checkpoint": str, "probe_language": str, "languages": list},
    "salmonn": {"whisper": str, "beats_checkpoint": str, "salmonn_checkpoint": str,
                "instruction": str, "llm_span": str, "lora_r": int, "lora_alpha": int,
                "lora_dropout": (int, float), "lora_targets": list},
}
LIMITS = {"max_seconds": 30.0, "min_seconds": 0.1, "max_text_tokens": 1024}


def limit(spec: "ModelSpec", name: str) -> float:
    """An input limit of ``spec`` (``max_seconds``, ``min_seconds``, ``max_text_tokens``)."""
    return spec.options.get(name, LIMITS[name])


def check_options(options: Any, wrapper: str, path: Path | str) -> None:
    """Refuse unknown option names (with the closest known one) and values of the wrong type."""
    if not isinstance(options, dict):
        raise SpecError(f"{path}: options: a mapping of option names to values, got {options!r}")
    known = {**COMMON_OPTIONS, **WRAPPER_OPTIONS.get(wrapper, {})}
    for name, value in options.items():
        if name not in known:
            hint = closest(str(name), known)
            raise SpecError(f"{path}: options.{name}: not an option of the {wrapper} wrapper"
                            + (f"; did you mean options.{hint[0]}?" if hint else "")
                            + f" (its options: {', '.join(sorted(known))})")
        kind = known[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise SpecError(f"{path}: options.{name}: expected "
                            f"{' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    for name in ("max_seconds", "min_seconds", "max_text_tokens"):
        if name in options and not options[name] > 0:
            raise SpecError(f"{path}: options.{name}: must be positive, got {options[name]!r}")
    if options.get("min_seconds", LIMITS["min_seconds"]) >= \
            options.get("max_seconds", LIMITS["max_seconds"]):
        raise SpecError(f"{path}: options.min_seconds must be below options.max_seconds")


def models_dir() -> Path:
    """Where specs live: $PROBEKIT_MODELS, else the ``models/`` folder of this checkout."""
    if os.environ.get("PROBEKIT_MODELS"):
        return Path(os.environ["PROBEKIT_MODELS"])
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "models").is_dir() and (parent / "pyproject.toml").exists():
            return parent / "models"
    return Path.cwd() / "models"


def available_specs() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.yaml"))


def load_spec(spec: str | os.PathLike | ModelSpec, **overrides: Any) -> ModelSpec:
    """A spec by name (``"seamless_m4t_v2"``) or YAML path, with field overrides."""
    if isinstance(spec, ModelSpec):
        return dataclasses.replace(spec, **overrides) if overrides else spec
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml"):
        path = models_dir() / f"{spec}.yaml"
    if not path.exists():
        hint = closest(str(spec), available_specs())
        raise SpecError(f"no model spec {str(spec)!r} (looked for {path}); "
                        + (f"did you mean {', '.join(hint)}? " if hint else "")
                        + f"available: {', '.join(available_specs()) or 'none'}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a mapping of fields")
    known = {f.name for f in dataclasses.fields(ModelSpec)}
    for key in list(data) + list(overrides):
        if key not in known:
            hint = closest(key, known)
            raise SpecError(f"{path}: unknown field {key!r}"
                            + (f"; did you mean {hint[0]!r}?" if hint else ""))
    for key, value in overrides.items():  # options (and other mappings) merge key by key
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key != "stacks":
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    data.setdefault("name", path.stem)
    if data.get("wrapper") in WRAPPER_OPTIONS:  # an unknown wrapper is refused when it loads
        check_options(data.get("options") or {}, data["wrapper"], path)
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
    return ModelSpec(**data, path=str(path))


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
