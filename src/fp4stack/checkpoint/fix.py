"""``fp4stack fix SRC DST``: the exact repairs the doctor names, into a new directory.

Only repairs that change no value a consumer reads and that a named consumer needs:

- ``rename``: a block-FP8 scale under the name the checkpoint's own format's loaders read;
- ``fp8-scale``: NVFP4 block scales that the nvfp4-fix tool widened to bf16 back to
  F8_E4M3, when every value is an exact E4M3 value (else refused, with the numbers);
- ``e8m0-shift``: compressed-tensors 0.13.0's bias-125 MXFP4 scales to standard E8M0 (an
  exact exponent shift; quantization_config.version records it);
- ``index``: the index's weight_map and total_size, rebuilt from the shards' headers.

DST is written into a temporary directory beside it and renamed at the end; unchanged
files are copied byte for byte, and so is every unchanged tensor of a rewritten shard. On
any error (or KeyboardInterrupt) nothing is left behind. SRC is never written.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fp4stack.checkpoint.doctor.diagnose import diagnose_open
from fp4stack.checkpoint.doctor.findings import Finding, Repair
from fp4stack.checkpoint.doctor.nvfp4 import exact_e4m3
from fp4stack.checkpoint.fp4 import e4m3_encode
from fp4stack.checkpoint.inputs import check_copyable
from fp4stack.checkpoint.mxfp4_bias import to_standard
from fp4stack.checkpoint.outdir import check_paths, finalize, make_temp
from fp4stack.checkpoint.reader import INDEX_NAME, Checkpoint, open_checkpoint
from fp4stack.checkpoint.safetensors_io import OutTensor, copy_at, create_output, layout, write_at
from fp4stack.core.errors import ConvertError, UsageError, stage

FIXED_LABEL = "fp4stack.e8m0bias127"  # read as standard E8M0 by mxfp4_bias (local "fp4stack")
BF16_REFUSAL = (
    "casting NVFP4 block scales from float8_e4m3fn to bf16 (what the nvfp4-fix tool's "
    "fix-model does) changes the checkpoint's format: NVFP4 is FP4 values with FP8 block "
    "scales, and vLLM, compressed-tensors and ModelOpt load float8_e4m3fn scales; the "
    "compressed-tensors 0.13.0 failures it aims at are bugs in the library's code, not in "
    "the checkpoint"
)
BF16_BETTER = "install the patched wheel instead: `fp4stack install compressed-tensors`"


@dataclass
class Step:
    """One planned repair, described for the user before anything is written."""

    repair: Repair
    line: str


@dataclass
class FixPlan:
    """The repairs to make and what stays as it is (findings fix cannot repair)."""

    ckpt: Checkpoint
    steps: list[Step] = field(default_factory=list)
    left: list[Finding] = field(default_factory=list)

    def close(self) -> None:
        self.ckpt.close()


def _describe(ckpt: Checkpoint, finding: Finding, repair: Repair) -> str:
    if repair.kind == "rename":
        return f"rename {ckpt.label(repair.target)} -> {repair.new_name}"
    if repair.kind == "fp8-scale":
        dtype = ckpt.info(repair.target).dtype
        return f"{ckpt.label(repair.target)}: {dtype} -> F8_E4M3 (every value an exact E4M3 value)"
    if repair.kind == "e8m0-shift":
        return (
            f"{ckpt.label(repair.target)}: E8M0 bias 125 -> 127 (exponents {repair.shift:+d}, "
            "exact)"
        )
    return f"{INDEX_NAME}: weight_map and total_size rebuilt from the shards ({finding.message})"


def plan_fix(src: Path) -> FixPlan:
    """Diagnose SRC (reading every scale a repair depends on) and plan the repairs.

    :raises UsageError: bad input, or a repair that would not be exact (with the numbers).
    """
    ckpt = open_checkpoint(src)
    plan = FixPlan(ckpt)
    try:
        report = diagnose_open(ckpt, headers_only=False)
        for finding in report.findings:
            if finding.refusal:
                raise UsageError(
                    f"{src / finding.where.split(':', 1)[0]}: refusing to repair "
                    f"{finding.where.split(':', 1)[-1]!r}: {finding.refusal}",
                    hint=finding.fix,
                )
            if not finding.repairs and finding.severity != "info":
                plan.left.append(finding)
            seen = {s.line for s in plan.steps}
            for repair in finding.repairs:
                step = Step(repair, _describe(ckpt, finding, repair))
                if step.line not in seen:
                    plan.steps.append(step)
    except BaseException:
        plan.close()
        raise
    return plan


def refuse_bf16_scales() -> UsageError:
    """The answer to a request for nvfp4-fix's fp8 -> bf16 scale cast."""
    return UsageError(f"refused: {BF16_REFUSAL}", hint=BF16_BETTER)


def _new_tensor(ckpt: Checkpoint, name: str, repairs: dict[str, Repair]) -> OutTensor:
    info = ckpt.info(name)
    repair = repairs.get(name)
    if repair is None:
        return OutTensor(name, info.dtype, info.shape)
    if repair.kind == "rename":
        return OutTensor(repair.new_name, info.dtype, info.shape)
    if repair.kind == "fp8-scale":
        return OutTensor(name, "F8_E4M3", info.shape)
    return OutTensor(name, info.dtype, info.shape)


def _new_bytes(ckpt: Checkpoint, name: str, repair: Repair) -> np.ndarray:
    if repair.kind == "fp8-scale":
        values = ckpt.values(name)
        inexact, first = exact_e4m3(values)
        if inexact:  # checked when planning; the file changed since
            raise UsageError(f"{ckpt.label(name)}: {inexact} values are not exact E4M3 ({first})")
        return e4m3_encode(values.reshape(-1))
    packed = ckpt.raw(repair.partner)
    scales = ckpt.raw(name).reshape(ckpt.info(name).shape)
    return to_standard(scales, packed, repair.shift, ckpt.label(name))


def _write_shard(ckpt: Checkpoint, shard: str, repairs: dict[str, Repair], out: Path) -> None:
    src = ckpt.files[shard]
    names = sorted(src.tensors, key=lambda n: src.tensors[n].start)
    tensors = [_new_tensor(ckpt, n, repairs) for n in names]
    head, starts = layout(tensors, src.metadata)
    create_output(out, head, starts[-1] + tensors[-1].nbytes if tensors else len(head))
    fd = os.open(out, os.O_WRONLY)
    try:
        for name, start in zip(names, starts, strict=True):
            repair = repairs.get(name)
            if repair is None or repair.kind == "rename":
                info = src.tensors[name]
                copy_at(src.fd, info.start, fd, start, info.nbytes)
            else:
                write_at(fd, _new_bytes(ckpt, name, repair), start)
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict[str, object]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_index(ckpt: Checkpoint, renames: dict[str, str], tmp: Path) -> None:
    assert ckpt.index is not None
    weight_map = {renames.get(n, n): s for n, s in ckpt.where.items()}
    metadata = {**(ckpt.index.get("metadata") or {}), "total_size": ckpt.total_bytes}
    index = {**ckpt.index, "metadata": metadata, "weight_map": dict(sorted(weight_map.items()))}
    _write_json(tmp / INDEX_NAME, index)


def _recorded_version(config: dict[str, object]) -> dict[str, object]:
    qc = dict(config["quantization_config"])  # type: ignore[call-overload]
    version = str(qc.get("version", ""))
    qc["version"] = f"{version.split('+')[0]}+{FIXED_LABEL}"
    return {**config, "quantization_config": qc}


def _fill(plan: FixPlan, tmp: Path) -> None:
    ckpt = plan.ckpt
    repairs = {s.repair.target: s.repair for s in plan.steps if s.repair.target}
    renames = {r.target: r.new_name for r in repairs.values() if r.kind == "rename"}
    touched = {ckpt.where[name] for name in repairs}
    for entry in sorted(ckpt.root.iterdir()):
        if entry.name in touched:
            _write_shard(ckpt, entry.name, repairs, tmp / entry.name)
        else:
            check_copyable(entry)
            if entry.is_dir():
                shutil.copytree(entry, tmp / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, tmp / entry.name)
    if ckpt.index is not None and (renames or any(s.repair.kind == "index" for s in plan.steps)):
        _write_index(ckpt, renames, tmp)
    if any(r.kind == "e8m0-shift" for r in repairs.values()):
        _write_json(tmp / "config.json", _recorded_version(ckpt.config))


def _verify(plan: FixPlan, tmp: Path) -> None:
    """The output, diagnosed again, has nothing left for fix to repair."""
    out = open_checkpoint(tmp)
    try:
        left = [f for f in diagnose_open(out).findings if f.repairs]
    finally:
        out.close()
    if left:
        raise ConvertError(f"after the repairs, the output still has: {left[0].message}")


def apply_fix(plan: FixPlan, src: Path, dst: Path) -> None:
    """Write SRC with the planned repairs to DST (temp dir beside it, then rename).

    :raises UsageError: DST exists, or sits inside SRC. Nothing is left on any failure.
    """
    check_paths(src, dst, force=False)
    tmp = make_temp(dst)
    try:
        with stage(ConvertError, f"cannot write {dst}"):
            _fill(plan, tmp)
            _verify(plan, tmp)
            finalize(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
