"""From a validated source to the output: per-shard tensor lists, offsets, and work items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from fp4stack.checkpoint.cast.formats import OutputFormat
from fp4stack.checkpoint.cast.source import QuantUnit, Source
from fp4stack.checkpoint.detect import GPT_OSS_MXFP4
from fp4stack.checkpoint.safetensors_io import OutTensor, layout
from fp4stack.core.errors import UsageError

JobKind = Literal["copy", "unit", "bias"]
COPY: Final = "copy"  # a tensor copied unchanged
UNIT: Final = "unit"  # an MXFP4 unit, cast
BIAS: Final = "bias"  # a fused expert bias, rewritten by the format


@dataclass(frozen=True)
class Job:
    """One source tensor (or MXFP4 unit) to turn into output tensors of ``shard``."""

    kind: JobKind
    shard: str
    name: str  # the source tensor; for a unit its blocks tensor
    nbytes: int  # source bytes read, for balancing and progress

    def __post_init__(self) -> None:
        if self.kind not in get_args(JobKind):
            raise ValueError(f"job kind {self.kind!r} is not one of {get_args(JobKind)}")


@dataclass
class ShardLayout:
    """One output file: header bytes, total size, and where each tensor goes."""

    head: bytes
    size: int
    offsets: dict[str, int]
    tensors: list[OutTensor]


@dataclass
class Plan:
    fmt: OutputFormat
    shards: dict[str, ShardLayout] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)
    bias_of: dict[str, str] = field(default_factory=dict)  # bias tensor -> its unit's blocks
    excluded: list[str] = field(default_factory=list)  # Linear-like modules left unquantized
    scale_shift: int = 0  # added to every E8M0 exponent (+2 for a bias-125 source)


def _fused_biases(src: Source) -> dict[str, QuantUnit]:
    """gpt-oss fused expert biases ``<param>_bias`` of shape (E, rows), by name."""
    out: dict[str, QuantUnit] = {}
    for unit in src.units.values():
        if len(unit.packed_shape) != 3:
            continue
        name = unit.base + "_bias"
        if name in src.ckpt.where and src.ckpt.info(name).shape == unit.packed_shape[:2]:
            out[name] = unit
    return out


def _outputs(
    src: Source, plan: Plan, shard: str, name: str, biases: dict[str, QuantUnit]
) -> list[OutTensor]:
    info = src.ckpt.info(name)
    if name in src.units:
        plan.jobs.append(Job(UNIT, shard, name, info.nbytes + _scales_bytes(src, name)))
        return [out for out, _ in plan.fmt.unit_outputs(src.units[name])]
    if name in biases:
        plan.jobs.append(Job(BIAS, shard, name, info.nbytes))
        plan.bias_of[name] = biases[name].blocks
        outs = plan.fmt.bias_outputs(biases[name], name, info.dtype, info.shape)
        return [out for out, _ in outs]
    plan.jobs.append(Job(COPY, shard, name, info.nbytes))
    if name.endswith(".weight") and len(info.shape) == 2:
        plan.excluded.append(name.removesuffix(".weight"))
    return [OutTensor(name, info.dtype, info.shape)]


def _scales_bytes(src: Source, blocks: str) -> int:
    unit = src.units[blocks]
    return src.ckpt.info(unit.scales).nbytes


def make_plan(src: Source, fmt: OutputFormat, scale_shift: int = 0) -> Plan:
    """Output tensors of every shard, in source order, with a job per source tensor.

    :param scale_shift: added to every source E8M0 exponent (see ``mxfp4_bias``).
    """
    plan = Plan(fmt, scale_shift=scale_shift)
    split = fmt.splits_experts and src.layout == GPT_OSS_MXFP4
    biases = _fused_biases(src) if split else {}
    for shard, source_file in src.ckpt.files.items():
        tensors = source_file.tensors
        order = sorted(tensors, key=lambda n: tensors[n].start)
        outs: list[OutTensor] = []
        for name in order:
            if name not in src.consumed:
                outs += _outputs(src, plan, shard, name, biases)
        head, starts = layout(outs, source_file.metadata)
        size = len(head) + sum(t.nbytes for t in outs)
        offsets = {t.name: s for t, s in zip(outs, starts, strict=True)}
        plan.shards[shard] = ShardLayout(head, size, offsets, outs)
    _check_unique(src, plan)
    plan.excluded.sort()
    return plan


def _check_unique(src: Source, plan: Plan) -> None:
    """Two source tensors must not become one output name (e.g. ``X.weight_packed`` and a
    stray ``X.weight`` with ``--format modelopt``)."""
    seen: dict[str, str] = {}
    for shard, lay in plan.shards.items():
        for t in lay.tensors:
            if t.name in seen:
                raise UsageError(
                    f"{src.ckpt.root / shard}: output tensor {t.name!r} would be written twice "
                    f"(also in {seen[t.name]}) with --format {plan.fmt.name}"
                )
            seen[t.name] = shard
