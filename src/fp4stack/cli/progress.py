"""A small byte-count progress bar on stderr (redrawn in place on a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
GB = 1e9


class Progress:
    """Call :meth:`start` with the bytes to do, :meth:`advance` with bytes done; :meth:`close`
    prints the final line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start(0, "")

    def start(self, total: int, label: str) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.started = self.last = time.monotonic()

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        now = time.monotonic()
        if self.tty and now - self.last >= 0.1:
            self.last = now
            self.stream.write("\r" + self._line(now))
            self.stream.flush()

    def _line(self, now: float) -> str:
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * WIDTH)
        rate = self.done / GB / max(now - self.started, 1e-9)
        return (
            f"{self.label} [{bar:<{WIDTH}}] {frac:4.0%} "
            f"{self.done / GB:.2f}/{self.total / GB:.2f} GB {rate:.2f} GB/s"
        )

    def close(self) -> None:
        end = "\r" if self.tty else ""
        self.stream.write(end + self._line(time.monotonic()) + "\n")
        self.stream.flush()
