"""A shard file as a sequence of buffers: headers and small arrays built in memory, token-level
arrays referenced where they lie. A shard is then written and hashed without being copied first
(the copy into one buffer was the writer's limit: about 350 MiB/s on 2 cores).

HDF5 builds its file through :class:`SparseFile`, which keeps only the bytes HDF5 writes; the
large arrays' regions are allocated in the file but never written there (their HDF5 fill time is
"never"), and :meth:`SparseFile.image` fills them from the arrays themselves.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np


class Image:
    """A file's bytes as ``parts`` (bytes-like objects, C-contiguous), in order."""

    def __init__(self, parts: list[Any]):
        self.parts = [p for p in parts if memoryview(p).nbytes]

    @property
    def size(self) -> int:
        return sum(memoryview(p).nbytes for p in self.parts)

    def sha256(self) -> str:
        """The SHA-256 of the file, as the manifest lists it."""
        h = hashlib.sha256()
        for part in self.parts:
            h.update(part)  # releases the GIL: runs beside the write
        return h.hexdigest()

    def write(self, path: Path) -> None:
        """Write the file at ``path``, fsynced (the caller renames it into place)."""
        with open(path, "wb") as f:
            for part in self.parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())

    def tobytes(self) -> bytes:
        return b"".join(bytes(memoryview(p).cast("B")) for p in self.parts)


class SparseFile(io.RawIOBase):
    """A writable, seekable in-memory file that stores only the byte ranges written to it."""

    def __init__(self) -> None:
        super().__init__()
        self._starts: list[int] = []      # disjoint, non-adjacent runs of written bytes
        self._runs: list[bytearray] = []
        self._pos = 0
        self._size = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if size < self._size:
            while self._starts and self._starts[-1] >= size:
                self._starts.pop()
                self._runs.pop()
            if self._runs and self._starts[-1] + len(self._runs[-1]) > size:
                del self._runs[-1][size - self._starts[-1]:]
        self._size = size
        return size

    def write(self, b: Any) -> int:
        data = memoryview(b).cast("B")
        lo, hi = self._pos, self._pos + data.nbytes
        if lo == hi:
            return 0
        # merge every run that overlaps or touches [lo, hi) into one
        i = bisect.bisect_right(self._starts, lo) - 1
        if i < 0 or self._starts[i] + len(self._runs[i]) < lo:
            i += 1
        j = i
        while j < len(self._starts) and self._starts[j] <= hi:
            j += 1
        if j - i == 1 and self._starts[i] <= lo:  # within or extending one run: in place
            s = self._starts[i]
            self._runs[i][lo - s:hi - s] = data
        elif i == j:
            self._starts.insert(i, lo)
            self._runs.insert(i, bytearray(data))
        else:
            self._merge(i, j, lo, hi, data)
        self._pos = hi
        self._size = max(self._size, hi)
        return data.nbytes

    def _merge(self, i: int, j: int, lo: int, hi: int, data: memoryview) -> None:
        start = min([lo] + self._starts[i:j])
        end = max([hi] + [s + len(r) for s, r in zip(self._starts[i:j], self._runs[i:j],
                                                      strict=True)])
        merged = bytearray(end - start)
        for s, run in zip(self._starts[i:j], self._runs[i:j], strict=True):
            merged[s - start:s - start + len(run)] = run
        merged[lo - start:hi - start] = data
        self._starts[i:j], self._runs[i:j] = [start], [merged]

    def readinto(self, b: Any) -> int:
        out = memoryview(b).cast("B")
        n = max(0, min(out.nbytes, self._size - self._pos))
        out[:n] = bytes(n)
        lo, hi = self._pos, self._pos + n
        k = max(0, bisect.bisect_right(self._starts, lo) - 1)
        while k < len(self._starts) and self._starts[k] < hi:
            s, run = self._starts[k], self._runs[k]
            a, z = max(lo, s), min(hi, s + len(run))
            if a < z:
                out[a - lo:z - lo] = run[a - s:z - s]
            k += 1
        self._pos = hi
        return n

    def image(self, regions: list[tuple[int, list[np.ndarray]]]) -> Image:
        """The file with each region ``(offset, arrays)`` (allocated, never written) filled by
        its arrays, in order; unwritten gaps elsewhere are zeros."""
        pieces: list[tuple[int, Any]] = list(zip(self._starts, self._runs, strict=True))
        for offset, arrays in regions:
            pieces.append((offset, [np.ascontiguousarray(a) for a in arrays]))
        pieces.sort(key=lambda p: p[0])
        parts: list[Any] = []
        at = 0
        for offset, content in pieces:
            size = (len(content) if isinstance(content, bytearray)
                    else sum(a.nbytes for a in content))
            if offset < at:
                raise ValueError(f"HDF5 wrote into bytes {offset}..{at} of an array's region")
            if offset > at:
                parts.append(bytes(offset - at))
            parts += [content] if isinstance(content, bytearray) else content
            at = offset + size
        if at > self._size:
            raise ValueError(f"an array's region ends at byte {at}, past the file's end "
                             f"{self._size}")
        parts.append(bytes(self._size - at))
        return Image(parts)
