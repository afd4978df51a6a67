"""Execute jobs, in this process or in a worker: read, cast, write at precomputed offsets."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import assert_never

from fp4stack.checkpoint.cast.convert import TensorStats, cast_mxfp4
from fp4stack.checkpoint.cast.plan import BIAS, COPY, UNIT, Job, Plan
from fp4stack.checkpoint.cast.sink import Sink
from fp4stack.checkpoint.cast.source import Source, open_source
from fp4stack.checkpoint.mxfp4_bias import to_standard
from fp4stack.checkpoint.safetensors_io import DTYPE_SIZES, copy_at, write_at


@dataclass
class Worker:
    """What one process needs: the opened source, the plan, and the output file descriptors."""

    src: Source
    plan: Plan
    out_dir: Path
    fds: dict[str, int]

    def fd(self, shard: str) -> int:
        if shard not in self.fds:
            self.fds[shard] = os.open(self.out_dir / shard, os.O_WRONLY)
        return self.fds[shard]

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def run(self, job: Job) -> TensorStats | None:
        offsets = self.plan.shards[job.shard].offsets
        fd = self.fd(job.shard)
        source_file = self.src.ckpt.files[job.shard]
        if job.kind == COPY:
            info = source_file.tensors[job.name]
            copy_at(source_file.fd, info.start, fd, offsets[job.name], info.nbytes)
            return None
        if job.kind == BIAS:
            self._bias(job, fd, offsets)
            return None
        if job.kind == UNIT:
            return self._unit(job, fd, offsets)
        assert_never(job.kind)

    def _bias(self, job: Job, fd: int, offsets: dict[str, int]) -> None:
        source_file = self.src.ckpt.files[job.shard]
        info = source_file.tensors[job.name]
        unit = self.src.units[self.plan.bias_of[job.name]]
        raw = source_file.read(job.name)
        raw = raw.reshape(*info.shape, DTYPE_SIZES[info.dtype])
        for out, make in self.plan.fmt.bias_outputs(unit, job.name, info.dtype, info.shape):
            write_at(fd, make(raw), offsets[out.name])

    def _unit(self, job: Job, fd: int, offsets: dict[str, int]) -> TensorStats:
        unit = self.src.units[job.name]
        blocks_file, scales_file = (
            self.src.ckpt.files[unit.blocks_file],
            self.src.ckpt.files[unit.scales_file],
        )
        packed = blocks_file.view(unit.blocks).reshape(unit.packed_shape)
        e8m0 = scales_file.read(unit.scales).reshape(scales_file.tensors[unit.scales].shape)
        label = f"{self.src.ckpt.root / unit.blocks_file}: tensor {unit.blocks!r}"
        if self.plan.scale_shift:
            scales_label = f"{self.src.ckpt.root / unit.scales_file}: tensor {unit.scales!r}"
            e8m0 = to_standard(e8m0, packed, self.plan.scale_shift, scales_label)
        result = cast_mxfp4(packed, e8m0, label)
        result.stats.name = unit.base
        sink = Sink(fd, blocks_file.fd, blocks_file.tensors[unit.blocks].start)
        for out, write in self.plan.fmt.unit_outputs(unit):
            write(sink, offsets[out.name], result)
        return result.stats


_WORKER: Worker | None = None


def init_process(src_root: str, plan: Plan, out_dir: str) -> None:
    """Pool initializer: the parent alone handles Ctrl-C (and then terminates the pool)."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked child inherits the parent's
    _WORKER = Worker(open_source(Path(src_root)), plan, Path(out_dir), {})


def run_batch(jobs: list[Job]) -> tuple[list[TensorStats], int]:
    """Pool entry point: run a batch of jobs; returns their stats and the source bytes done."""
    assert _WORKER is not None
    stats = [s for s in map(_WORKER.run, jobs) if s is not None]
    return stats, sum(j.nbytes for j in jobs)


def batches(jobs: list[Job], target: int) -> list[list[Job]]:
    """Big jobs alone, small ones grouped to about ``target`` bytes; biggest first."""
    out: list[list[Job]] = []
    small: list[Job] = []
    for job in sorted(jobs, key=lambda j: -j.nbytes):
        if job.nbytes >= target:
            out.append([job])
            continue
        small.append(job)
        if sum(j.nbytes for j in small) >= target:
            out.append(small)
            small = []
    return out + ([small] if small else [])
