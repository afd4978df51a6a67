"""Cast a whole checkpoint: check paths, plan, write into a temp dir beside DST, rename."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fp4stack.checkpoint.cast import formats
from fp4stack.checkpoint.cast.convert import TensorStats
from fp4stack.checkpoint.cast.plan import Job, Plan, make_plan
from fp4stack.checkpoint.cast.source import Source, open_source
from fp4stack.checkpoint.cast.work import Worker, batches, init_process, run_batch
from fp4stack.checkpoint.inputs import check_copyable
from fp4stack.checkpoint.mxfp4_bias import ScaleBias, resolve_scale_bias
from fp4stack.checkpoint.outdir import check_paths, finalize, make_temp
from fp4stack.checkpoint.reader import CONFIG, HF_QUANT_CONFIG, INDEX_NAME
from fp4stack.checkpoint.safetensors_io import create_output
from fp4stack.core.errors import ConvertError, stage

BATCH_BYTES = 64 << 20
REWRITTEN = {CONFIG, HF_QUANT_CONFIG, INDEX_NAME}
# Files a producer writes that describe the source's quantization, not the output's: they
# are not copied (the report lists the ones dropped).
PRODUCER_FILES = {
    # llm-compressor's save_pretrained (update_and_save_recipe): the recipe that made the
    # MXFP4 model (e.g. scheme MXFP4A16); re-running it would not make this NVFP4 output
    "recipe.yaml": "llm-compressor's recipe for the source's MXFP4 quantization",
}


@dataclass
class CastOutcome:
    """What the cast did: per-tensor statistics, the scale bias used, files not carried."""

    stats: list[TensorStats]
    scale_bias: ScaleBias
    dropped: dict[str, str] = field(default_factory=dict)  # file name -> what it described


class Progress(Protocol):
    """Told the source bytes to process, then each part done; the CLI draws it."""

    def start(self, total: int, label: str) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def close(self) -> None:
        """Called once, after the last tensor is written (not on failure)."""


class NoProgress:
    """The default: report nothing."""

    def start(self, total: int, label: str) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def close(self) -> None:
        pass


def _copy_others(src: Source, tmp: Path) -> dict[str, str]:
    """Tokenizer and every other file or folder, except what the cast rewrites and the
    producer files describing the source's quantization; returns those dropped."""
    skip = REWRITTEN | set(src.ckpt.shards)
    dropped: dict[str, str] = {}
    for entry in sorted(src.ckpt.root.iterdir()):
        if entry.name in skip:
            continue
        if entry.name in PRODUCER_FILES:
            dropped[entry.name] = PRODUCER_FILES[entry.name]
            continue
        check_copyable(entry)
        if entry.is_dir():
            shutil.copytree(entry, tmp / entry.name)
        else:
            shutil.copy2(entry, tmp / entry.name)
    return dropped


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_metadata(src: Source, plan: Plan, tmp: Path) -> None:
    for name, data in plan.fmt.metadata_files(src.ckpt.config, plan.excluded).items():
        _write_json(tmp / name, data)
    if src.ckpt.index is not None:
        weight_map = {t.name: s for s, lay in plan.shards.items() for t in lay.tensors}
        total = sum(t.nbytes for lay in plan.shards.values() for t in lay.tensors)
        metadata = {**(src.ckpt.index.get("metadata") or {}), "total_size": total}
        _write_json(
            tmp / INDEX_NAME, {"metadata": metadata, "weight_map": dict(sorted(weight_map.items()))}
        )


def _run_jobs(
    src: Source, plan: Plan, tmp: Path, workers: int, progress: Progress
) -> list[TensorStats]:
    for shard, lay in plan.shards.items():
        create_output(tmp / shard, lay.head, lay.size)
    work = batches(plan.jobs, BATCH_BYTES)
    if workers <= 1 or len(work) <= 1:
        return _run_here(src, plan, tmp, work, progress)
    return _run_pool(src, plan, tmp, work, workers, progress)


def _run_here(
    src: Source, plan: Plan, tmp: Path, work: list[list[Job]], progress: Progress
) -> list[TensorStats]:
    stats: list[TensorStats] = []
    worker = Worker(src, plan, tmp, {})
    try:
        for batch in work:
            for job in batch:
                result = worker.run(job)
                stats += [result] if result else []
                progress.advance(job.nbytes)
    finally:
        worker.close()
    return stats


def _run_pool(
    src: Source, plan: Plan, tmp: Path, work: list[list[Job]], workers: int, progress: Progress
) -> list[TensorStats]:
    # fork: workers start in milliseconds, without re-importing numpy; they use only numpy
    # and os calls, so inheriting the parent's other threads (if any) is harmless.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    stats: list[TensorStats] = []
    pool = ctx.Pool(min(workers, len(work)), init_process, (str(src.ckpt.root), plan, str(tmp)))
    try:
        for batch_stats, nbytes in pool.imap_unordered(run_batch, work):
            stats += batch_stats
            progress.advance(nbytes)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
    return stats


def cast_checkpoint(
    src_dir: Path,
    dst: Path,
    fmt: str,
    workers: int,
    force: bool,
    progress: Progress | None = None,
    scale_bias: str = "auto",
) -> CastOutcome:
    """Cast SRC to DST atomically; on any error or interrupt neither DST nor a temp dir remains.

    :param fmt: an output format name (:data:`formats.NAMES`).
    :param scale_bias: the E8M0 bias of the source scales, "125" or "127", or "auto" to
        detect it from config.json (see ``mxfp4_bias``); bias 125 is corrected exactly.
    :param workers: processes casting tensors in parallel (1: this process).
    :param force: replace an existing DST.
    :param progress: told the source bytes to cast and each part done; nothing by default.
        The caller decides how interrupts arrive: SIGINT (or a SIGTERM handler it installs)
        raising KeyboardInterrupt cleans up like any error.
    """
    output = formats.get(fmt)
    check_paths(src_dir, dst, force)
    src = open_source(src_dir)
    try:
        bias = resolve_scale_bias(src.ckpt.config, scale_bias, str(src_dir / CONFIG))
        plan = make_plan(src, output, scale_shift=bias.shift)
        tmp = make_temp(dst)
        try:
            with stage(ConvertError, f"cannot write {dst}"):
                stats, dropped = _write(src, plan, tmp, dst, workers, progress or NoProgress())
                return CastOutcome(stats, bias, dropped)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        src.close()


def _write(
    src: Source, plan: Plan, tmp: Path, dst: Path, workers: int, progress: Progress
) -> tuple[list[TensorStats], dict[str, str]]:
    """Fill the temp dir, then rename it to DST."""
    dropped = _copy_others(src, tmp)
    _write_metadata(src, plan, tmp)
    progress.start(sum(j.nbytes for j in plan.jobs), f"cast {src.ckpt.root.name}")
    stats = _run_jobs(src, plan, tmp, workers, progress)
    progress.close()
    finalize(tmp, dst)
    return stats, dropped
