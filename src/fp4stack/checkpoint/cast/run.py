"""Cast a whole checkpoint: check paths, plan, write into a temp dir beside DST, rename."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fp4stack.checkpoint.cast import formats
from fp4stack.checkpoint.cast.convert import TensorStats
from fp4stack.checkpoint.cast.plan import Job, Plan, make_plan
from fp4stack.checkpoint.cast.source import INDEX_NAME, Source, open_source
from fp4stack.checkpoint.cast.work import Worker, batches, init_process, run_batch
from fp4stack.checkpoint.mxfp4_bias import ScaleBias, resolve_scale_bias
from fp4stack.checkpoint.safetensors_io import create_output
from fp4stack.core.errors import ConvertError, UsageError, stage

BATCH_BYTES = 64 << 20
REWRITTEN = {"config.json", "hf_quant_config.json", INDEX_NAME}
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


def check_paths(src: Path, dst: Path, force: bool) -> None:
    """Refuse DST inside SRC (or SRC inside DST), and an existing DST without --force."""
    src_r, dst_r = src.resolve(), dst.resolve()
    if dst_r == src_r or src_r in dst_r.parents:
        raise UsageError(f"{dst}: DST is inside SRC {src}", hint="write the output elsewhere")
    if dst_r in src_r.parents:
        raise UsageError(f"{dst}: DST contains SRC {src}", hint="write the output elsewhere")
    if (dst.exists() or dst.is_symlink()) and not force:
        raise UsageError(f"{dst}: already exists", hint="pass --force to replace it")


def make_temp(dst: Path) -> Path:
    """An empty directory beside DST (same file system, so the final rename is atomic)."""
    parent = dst.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{dst}: parent directory {parent} does not exist")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".fp4stack-tmp", dir=parent))
    except OSError as error:
        raise UsageError(f"{dst}: cannot write in {parent}: {error.strerror}") from error
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; DST should look like any new dir
    return tmp


def _copy_others(src: Source, tmp: Path) -> dict[str, str]:
    """Tokenizer and every other file or folder, except what the cast rewrites and the
    producer files describing the source's quantization; returns those dropped."""
    skip = REWRITTEN | set(src.shards)
    dropped: dict[str, str] = {}
    for entry in sorted(src.root.iterdir()):
        if entry.name in skip:
            continue
        if entry.name in PRODUCER_FILES:
            dropped[entry.name] = PRODUCER_FILES[entry.name]
            continue
        if entry.is_dir():
            shutil.copytree(entry, tmp / entry.name)
        else:
            shutil.copy2(entry, tmp / entry.name)
    return dropped


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_metadata(src: Source, plan: Plan, tmp: Path) -> None:
    for name, data in plan.fmt.metadata_files(src.config, plan.excluded).items():
        _write_json(tmp / name, data)
    if src.index is not None:
        weight_map = {t.name: s for s, lay in plan.shards.items() for t in lay.tensors}
        total = sum(t.nbytes for lay in plan.shards.values() for t in lay.tensors)
        metadata = {**(src.index.get("metadata") or {}), "total_size": total}
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
    pool = ctx.Pool(min(workers, len(work)), init_process, (str(src.root), plan, str(tmp)))
    try:
        for batch_stats, nbytes in pool.imap_unordered(run_batch, work):
            stats += batch_stats
            progress.advance(nbytes)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
    return stats


def _finalize(tmp: Path, dst: Path) -> None:
    """Rename the finished temp dir to DST; an old DST (--force) is moved aside first."""
    old = None
    if dst.exists() or dst.is_symlink():
        old = dst.with_name(f".{dst.name}.{os.getpid()}.fp4stack-old")
        os.rename(dst, old)
    os.rename(tmp, dst)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()


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
        bias = resolve_scale_bias(src.config, scale_bias, str(src_dir / "config.json"))
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
    progress.start(sum(j.nbytes for j in plan.jobs), f"cast {src.root.name}")
    stats = _run_jobs(src, plan, tmp, workers, progress)
    progress.close()
    _finalize(tmp, dst)
    return stats, dropped
