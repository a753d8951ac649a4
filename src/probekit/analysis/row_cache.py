"""Rows computed so far, kept on disk so that a killed analysis resumes where it stopped.

A row is stored under a key made of everything it depends on: the measures and their options,
the Comparer's settings (truncation, z-scoring, dtype, device, permutations, half-samples, level,
seed), both views' keys and a digest of both views' data. A row is therefore reused only where
recomputing it would give the same numbers, whatever analysis, store, control or subset asked
for it. The file is JSON lines, appended and flushed row by row; a line a kill cut short is
ignored. Values round-trip exactly (floats as their shortest repr, tuples tagged)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("probekit.analysis")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"__tuple__": [_plain(v) for v in value]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, dict)):
        raise TypeError("a row value is a list or a mapping")
    return value


def _tuples(obj: dict[str, Any]) -> Any:
    return tuple(obj["__tuple__"]) if set(obj) == {"__tuple__"} else obj


def encode(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as JSON-ready values (tuples tagged, numpy scalars as Python numbers)."""
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


def decode(text: str) -> Any:
    return json.loads(text, object_hook=_tuples)


def digest(*parts: Any) -> str:
    """A key from ``parts`` (their ``repr``, so types count) and any arrays among them."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(repr((part.dtype.str, part.shape)).encode())
            h.update(np.ascontiguousarray(part).data)
        else:
            h.update(repr(part).encode("utf-8", "backslashreplace"))
        h.update(b"\0")
    return h.hexdigest()


def worker_file(path: Path, worker: int) -> Path:
    """The rows file of worker ``worker`` beside ``path`` (``analysis.partial-w2.jsonl``)."""
    return path.with_name(f"{path.stem}-w{worker}{path.suffix}")


class RowCache:
    """The rows of ``path`` and of its workers' files beside it (JSON lines ``{"key": ...,
    "rows": [...]}``), new ones appended to ``path`` (or to worker ``worker``'s file) as they
    are computed. ``hits`` counts the rows reused, ``added`` the rows computed here."""

    def __init__(self, path: Path, worker: int | None = None):
        self.path = Path(path)
        self._lines: dict[str, str] = {}
        self.hits = self.added = 0
        for file in [self.path, *self.workers()]:
            if file.exists():
                self._read(file)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = self.path if worker is None else worker_file(self.path, worker)
        self._file = open(mine, "a", encoding="utf-8")  # noqa: SIM115  (closed in close)

    def workers(self) -> list[Path]:
        """The workers' rows files beside ``path``."""
        return sorted(self.path.parent.glob(f"{self.path.stem}-w*{self.path.suffix}"))

    def _read(self, file: Path) -> None:
        with open(file, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    self._lines[str(entry["key"])] = line
                except (ValueError, KeyError, TypeError):  # cut short by a kill
                    continue

    def absorb(self) -> None:
        """Read the rows the workers have added since."""
        for file in self.workers():
            self._read(file)

    def __len__(self) -> int:
        return len(self._lines)

    def get(self, key: str) -> list[dict[str, Any]] | None:
        line = self._lines.get(key)
        if line is None:
            return None
        rows = decode(line)["rows"]
        self.hits += len(rows)
        return rows

    def put(self, key: str, rows: list[dict[str, Any]]) -> None:
        line = json.dumps({"key": key, "rows": encode(rows)}, allow_nan=True) + "\n"
        self._file.write(line)
        self._file.flush()
        self._lines[key] = line
        self.added += len(rows)

    def close(self, remove: bool = False) -> None:
        """Close the file; ``remove``: delete it (the analysis it served was published)."""
        if not self._file.closed:
            os.fsync(self._file.fileno())
            self._file.close()
        if remove:
            for file in [self.path, *self.workers()]:
                file.unlink(missing_ok=True)
