"""Read ahead of the workers: ask the kernel for the next jobs' source bytes (cold cache)."""

from __future__ import annotations

import os
import threading

from fp4stack.cast.plan import UNIT, Job
from fp4stack.cast.source import Source

WINDOW_BYTES = 1 << 30


class Prefetcher(threading.Thread):
    """Issues ``POSIX_FADV_WILLNEED`` for jobs in the order workers take them, staying at most
    ``window`` bytes ahead of what has been completed, so reading overlaps computing without
    flooding the page cache on checkpoints larger than memory."""

    def __init__(self, src: Source, jobs: list[Job], window: int = WINDOW_BYTES) -> None:
        super().__init__(name="fp4stack-prefetch", daemon=True)
        self.src, self.jobs, self.window = src, jobs, window
        self.done, self.stopped = 0, False
        self.cond = threading.Condition()

    def _ranges(self, job: Job) -> list[tuple[int, int, int]]:
        names = [(job.shard, job.name)]
        if job.kind == UNIT:
            unit = self.src.units[job.name]
            names.append((unit.scales_file, unit.scales))
        out = []
        for shard, name in names:
            f = self.src.files[shard]
            info = f.tensors[name]
            out.append((f.fd, info.start, info.nbytes))
        return out

    def run(self) -> None:
        issued = 0
        for job in self.jobs:
            with self.cond:
                while issued - self.done > self.window and not self.stopped:
                    self.cond.wait(0.1)
                if self.stopped:
                    return
            for fd, offset, nbytes in self._ranges(job):
                try:
                    os.posix_fadvise(fd, offset, nbytes, os.POSIX_FADV_WILLNEED)
                except OSError:
                    return  # only a hint: the fd may be closed once the run is over
            issued += job.nbytes

    def advance(self, nbytes: int) -> None:
        with self.cond:
            self.done += nbytes
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()
