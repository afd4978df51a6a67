"""Output tensor names, shapes and bytes for each format.

``modelopt`` follows ModelOpt 0.47's unified HF export: Linear ``X.weight`` (out, in/2) U8,
``X.weight_scale`` (out, in/16) F8_E4M3, ``X.weight_scale_2`` () F32; fused gpt-oss experts keep
the parameter name and the BMM layout ``(E, in/2, out)`` / ``(E, in/16, out)``.
``compressed-tensors`` is ``nvfp4-pack-quantized``: ``X.weight_packed``, ``X.weight_scale``,
``X.weight_global_scale`` (1,) F32 holding the reciprocal of the tensor scale; fused gpt-oss
experts become per-expert Linear modules ``experts.{e}.{gate,up,down}_proj`` (gate/up are the
even/odd rows of ``gate_up_proj``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fp4stack.checkpoint.cast.convert import CastResult
from fp4stack.checkpoint.cast.formats import MODELOPT
from fp4stack.checkpoint.cast.sink import Sink
from fp4stack.checkpoint.cast.source import QuantUnit
from fp4stack.checkpoint.safetensors_io import OutTensor

Write = Callable[[Sink, int, CastResult], None]
Output = tuple[OutTensor, Write]


def module_of(unit: QuantUnit) -> str:
    """The Linear module a 2-D unit belongs to."""
    return unit.base.removesuffix(".weight")


def expert_split(unit: QuantUnit) -> list[tuple[str, slice]]:
    """Per-expert Linear leaf names of a fused 3-D gpt-oss tensor, and their row selection."""
    leaf = unit.base.rpartition(".")[2]
    if leaf == "gate_up_proj":
        return [("gate_proj", slice(0, None, 2)), ("up_proj", slice(1, None, 2))]
    return [(leaf, slice(None))]


def _packed(sink: Sink, offset: int, r: CastResult) -> None:
    if r.unchanged:
        sink.source_bytes(r.packed.nbytes, offset)
    else:
        sink.array(r.packed, offset)


def _scales(sink: Sink, offset: int, r: CastResult) -> None:
    sink.array(r.scales, offset)


def _scale_2(sink: Sink, offset: int, r: CastResult) -> None:
    sink.array(np.float32(r.tensor_scale), offset)


def _global_scale(sink: Sink, offset: int, r: CastResult) -> None:
    sink.array(np.array([1.0 / r.tensor_scale], dtype=np.float32), offset)


def _modelopt(unit: QuantUnit) -> list[Output]:
    *lead, rows, half = unit.packed_shape
    groups = half // 8
    if lead:  # fused experts, BMM layout (E, in, out)
        shape = unit.packed_shape
        return [
            (OutTensor(unit.base, "U8", (*lead, half, rows)),
             lambda s, o, r: s.transposed(r.packed.reshape(shape), o)),
            (OutTensor(f"{unit.base}_weight_scale", "F8_E4M3", (*lead, groups, rows)),
             lambda s, o, r: s.transposed(r.scales, o)),
            (OutTensor(f"{unit.base}_weight_scale_2", "F32", ()), _scale_2),
        ]  # fmt: skip
    mod = module_of(unit)
    return [
        (OutTensor(f"{mod}.weight", "U8", (rows, half)), _packed),
        (OutTensor(f"{mod}.weight_scale", "F8_E4M3", (rows, groups)), _scales),
        (OutTensor(f"{mod}.weight_scale_2", "F32", ()), _scale_2),
    ]


def _expert_module(
    mod: str, shape: tuple[int, int], pick: Callable, skip: int | None
) -> list[Output]:
    """One per-expert Linear; ``skip`` is the byte offset of its packed rows in the source
    tensor when they are contiguous there (then unchanged bytes are copied in the kernel)."""
    rows, half = shape

    def packed(s: Sink, o: int, r: CastResult) -> None:
        if r.unchanged and skip is not None:
            s.source_bytes(rows * half, o, skip)
        else:
            s.array(pick(r.packed), o)

    return [
        (OutTensor(f"{mod}.weight_packed", "U8", (rows, half)), packed),
        (OutTensor(f"{mod}.weight_scale", "F8_E4M3", (rows, half // 8)),
         lambda s, o, r: s.array(pick(r.scales), o)),
        (OutTensor(f"{mod}.weight_global_scale", "F32", (1,)), _global_scale),
    ]  # fmt: skip


def _compressed_tensors(unit: QuantUnit) -> list[Output]:
    *lead, rows, half = unit.packed_shape
    if not lead:
        mod = module_of(unit)
        return [
            (OutTensor(f"{mod}.weight_packed", "U8", (rows, half)), _packed),
            (OutTensor(f"{mod}.weight_scale", "F8_E4M3", (rows, half // 8)), _scales),
            (OutTensor(f"{mod}.weight_global_scale", "F32", (1,)), _global_scale),
        ]
    parent = unit.base.rpartition(".")[0]
    outs: list[Output] = []
    for e in range(lead[0]):
        for leaf, sel in expert_split(unit):
            n = len(range(rows)[sel])

            def pick(a: np.ndarray, e: int = e, sel: slice = sel) -> np.ndarray:
                return a.reshape(lead[0], rows, a.shape[-1])[e, sel]  # -1 fails on 0 rows

            skip = e * rows * half if sel == slice(None) else None
            outs += _expert_module(f"{parent}.{e}.{leaf}", (n, half), pick, skip)
    return outs


def unit_outputs(unit: QuantUnit, fmt: str) -> list[Output]:
    """The output tensors of one MXFP4 unit, each with the function that writes it."""
    return _modelopt(unit) if fmt == MODELOPT else _compressed_tensors(unit)


def bias_outputs(
    unit: QuantUnit, name: str, dtype: str, shape: tuple[int, ...]
) -> list[tuple[OutTensor, Callable[[np.ndarray], np.ndarray]]]:
    """compressed-tensors only: split a fused expert bias ``(E, rows)`` like its weight.

    The returned functions take the raw source bytes viewed as an ``(E, rows, itemsize)`` array.
    """
    parent = unit.base.rpartition(".")[0]
    outs = []
    for e in range(shape[0]):
        for leaf, sel in expert_split(unit):
            n = len(range(shape[1])[sel])
            outs.append((OutTensor(f"{parent}.{e}.{leaf}.bias", dtype, (n,)),
                         lambda a, e=e, sel=sel: a[e, sel]))  # fmt: skip
    return outs
