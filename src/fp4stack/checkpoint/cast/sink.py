"""Where output tensors go: positional writes into one output file, streamed in chunks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fp4stack.checkpoint.safetensors_io import copy_at, write_at

CHUNK_BYTES = 4 << 20  # reused transpose buffer: big enough for few syscalls, cache-friendly
TILE_ROWS = 256


@dataclass
class Sink:
    """One output file, plus the source byte range of the unit being written (if any)."""

    fd: int
    source_fd: int = -1
    source_start: int = 0

    def array(self, data: np.ndarray | np.generic, offset: int) -> None:
        write_at(self.fd, data, offset)

    def source_bytes(self, nbytes: int, offset: int, skip: int = 0) -> None:
        """``nbytes`` of the unit's unchanged source packed bytes, from byte ``skip`` on,
        copied inside the kernel."""
        copy_at(self.source_fd, self.source_start + skip, self.fd, offset, nbytes)

    def transposed(self, a: np.ndarray, offset: int) -> None:
        """Write ``a`` (E, R, C) as (E, C, R), through one reused buffer of about CHUNK_BYTES,
        transposing in row tiles so both sides of each copy stay in cache."""
        experts, rows, cols = a.shape
        step = max(1, min(cols, CHUNK_BYTES // max(rows, 1)))
        buf = np.empty(step * rows, dtype=a.dtype)
        for e in range(experts):
            for c0 in range(0, cols, step):
                c1 = min(cols, c0 + step)
                out = buf[: (c1 - c0) * rows].reshape(c1 - c0, rows)
                for r0 in range(0, rows, TILE_ROWS):
                    out[:, r0 : r0 + TILE_ROWS] = a[e, r0 : r0 + TILE_ROWS, c0:c1].T
                write_at(self.fd, out, offset + (e * cols + c0) * rows * a.itemsize)
