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

from fp4stack.cast.convert import CastResult
from fp4stack.cast.safetensors_io import OutTensor
from fp4stack.cast.source import QuantUnit

MODELOPT = "modelopt"
COMPRESSED_TENSORS = "compressed-tensors"
FORMATS = (MODELOPT, COMPRESSED_TENSORS)
TILE = 64

Make = Callable[[CastResult], np.ndarray]
Output = tuple[OutTensor, Make]


def transpose_last2(a: np.ndarray) -> np.ndarray:
    """Contiguous ``swapaxes(-1, -2)`` of a 3-D array, in cache-sized row tiles."""
    experts, rows, cols = a.shape
    out = np.empty((experts, cols, rows), dtype=a.dtype)
    for e in range(experts):
        for r in range(0, rows, TILE):
            out[e, :, r : r + TILE] = a[e, r : r + TILE, :].T
    return out


def module_of(unit: QuantUnit) -> str:
    """The Linear module a 2-D unit belongs to."""
    return unit.base.removesuffix(".weight")


def expert_split(unit: QuantUnit) -> list[tuple[str, slice]]:
    """Per-expert Linear leaf names of a fused 3-D gpt-oss tensor, and their row selection."""
    leaf = unit.base.rpartition(".")[2]
    if leaf == "gate_up_proj":
        return [("gate_proj", slice(0, None, 2)), ("up_proj", slice(1, None, 2))]
    return [(leaf, slice(None))]


def _packed(unit: QuantUnit) -> Make:
    return lambda r: r.packed.reshape(unit.packed_shape)


def _modelopt(unit: QuantUnit) -> list[Output]:
    *lead, rows, half = unit.packed_shape
    groups = half // 8
    if lead:  # fused experts, BMM layout (E, in, out)
        return [
            (OutTensor(unit.base, "U8", (*lead, half, rows)),
             lambda r: transpose_last2(r.packed.reshape(unit.packed_shape))),
            (OutTensor(f"{unit.base}_weight_scale", "F8_E4M3", (*lead, groups, rows)),
             lambda r: transpose_last2(r.scales)),
            (OutTensor(f"{unit.base}_weight_scale_2", "F32", ()),
             lambda r: np.float32(r.tensor_scale)),
        ]  # fmt: skip
    mod = module_of(unit)
    return [
        (OutTensor(f"{mod}.weight", "U8", (rows, half)), _packed(unit)),
        (OutTensor(f"{mod}.weight_scale", "F8_E4M3", (rows, groups)), lambda r: r.scales),
        (OutTensor(f"{mod}.weight_scale_2", "F32", ()), lambda r: np.float32(r.tensor_scale)),
    ]


def _ct_module(
    mod: str, shape: tuple[int, int], pick: Callable[[np.ndarray], np.ndarray]
) -> list[Output]:
    rows, half = shape
    return [
        (OutTensor(f"{mod}.weight_packed", "U8", (rows, half)), lambda r: pick(r.packed)),
        (OutTensor(f"{mod}.weight_scale", "F8_E4M3", (rows, half // 8)), lambda r: pick(r.scales)),
        (OutTensor(f"{mod}.weight_global_scale", "F32", (1,)),
         lambda r: np.array([1.0 / r.tensor_scale], dtype=np.float32)),
    ]  # fmt: skip


def _compressed_tensors(unit: QuantUnit) -> list[Output]:
    *lead, rows, half = unit.packed_shape
    if not lead:
        return _ct_module(module_of(unit), (rows, half), lambda a: a.reshape(rows, -1))
    parent = unit.base.rpartition(".")[0]
    outs: list[Output] = []
    for e in range(lead[0]):
        for leaf, sel in expert_split(unit):
            n = len(range(rows)[sel])

            def pick(a: np.ndarray, e: int = e, sel: slice = sel) -> np.ndarray:
                return a.reshape(lead[0], rows, -1)[e, sel]

            outs += _ct_module(f"{parent}.{e}.{leaf}", (n, half), pick)
    return outs


def unit_outputs(unit: QuantUnit, fmt: str) -> list[Output]:
    """The output tensors of one MXFP4 unit, each with the function that makes its array."""
    return _modelopt(unit) if fmt == MODELOPT else _compressed_tensors(unit)


def bias_outputs(unit: QuantUnit, name: str, dtype: str, shape: tuple[int, ...]) -> list[Output]:
    """compressed-tensors only: split a fused expert bias ``(E, rows)`` like its weight.

    The returned functions take the raw source bytes viewed as an ``(E, rows, itemsize)`` array.
    """
    parent = unit.base.rpartition(".")[0]
    outs: list[Output] = []
    for e in range(shape[0]):
        for leaf, sel in expert_split(unit):
            n = len(range(shape[1])[sel])
            outs.append((OutTensor(f"{parent}.{e}.{leaf}.bias", dtype, (n,)),
                         lambda a, e=e, sel=sel: a[e, sel]))  # fmt: skip
    return outs
