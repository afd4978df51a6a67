"""The MXFP4 → NVFP4 math for one tensor: closed-form map, OOR requantization, best-of-two.

MXFP4 stores blocks of 32 E2M1 values with an E8M0 scale ``2**k``. NVFP4 stores blocks of 16
with an E4M3 scale, times one FP32 scale per tensor. With the tensor scale ``2**m``,
``m = k_max - 8``, every block with ``k_max - k <= 17`` is exact: nibbles verbatim, both halves
with the E4M3 scale ``2**(k - m)``. The others ("OOR") are requantized under ``2**m``; when a
tensor has any, a plain dequantize → standard NVFP4 quantize is also tried and the lower-SSE
result (against the MXFP4 values) is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from fp4stack.checkpoint.fp4 import (
    E2M1_MAX,
    E2M1_VALUES,
    E4M3_MAX,
    E4M3_MIN_SUBNORMAL,
    E4M3_VALUES,
    e2m1_encode,
    e4m3_encode,
    e4m3_pow2_code,
    pack_nibbles,
    unpack_nibbles,
)
from fp4stack.core.errors import UsageError

E8M0_BIAS = 127
E8M0_NAN = 255
MIN_TENSOR_EXP = -126  # 2**m and its reciprocal (compressed-tensors) stay normal FP32
# E4M3 scales worth trying for OOR halves, whose values are at most 3·2**-9 (in units of the
# tensor scale): on [0, 3·2**-9] the grids of codes 2, 4, 6 and 8 are subsets of code 1's,
# and larger codes only round more to zero, so 1 (2**-9), 3, 5 and 7 (·2**-9) remain.
OOR_CANDIDATE_CODES = np.array([1, 3, 5, 7], dtype=np.uint8)
CHUNK_BLOCKS = 1 << 15
FIRST_CHUNK_BLOCKS = 1 << 10  # the plain path is usually abandoned after this many
PROBE_BLOCKS = 1 << 16


# which result was kept: the nibbles verbatim (no OOR block), the closed form with OOR blocks
# requantized under the fixed tensor scale, or the plain dequantize → NVFP4 requantize
TensorPath = Literal["exact", "closed-form", "requantize"]


@dataclass
class TensorStats:
    """What happened to one tensor, for the final report."""

    name: str
    blocks: int
    exact_blocks: int
    oor_blocks: int
    sse: float
    values: int
    path: TensorPath
    sse_requantize: float | None = None  # None: skipped once it exceeded the closed form

    def __setattr__(self, name: str, value: Any) -> None:
        """``path`` is checked whenever it is set, at construction or later."""
        if name == "path" and value not in get_args(TensorPath):
            raise ValueError(f"tensor path {value!r} is not one of {get_args(TensorPath)}")
        super().__setattr__(name, value)

    @property
    def mse(self) -> float:
        return self.sse / self.values if self.values else 0.0

    @property
    def lossless_pct(self) -> float:
        return 100.0 * self.exact_blocks / self.blocks if self.blocks else 100.0


@dataclass
class CastResult:
    """NVFP4 data of one tensor: packed nibbles (same layout as the source), E4M3 scale codes
    per 16 elements (uint8 bit patterns), and the per-tensor scale (value multiplied in)."""

    packed: np.ndarray
    scales: np.ndarray
    tensor_scale: float
    stats: TensorStats
    unchanged: bool = False  # ``packed`` is the input array, untouched


def _nonzero_blocks(blocks: np.ndarray) -> np.ndarray:
    """Per row of 16 packed bytes: does any nibble have a non-zero magnitude?"""
    return np.asarray((blocks & 0x77).any(axis=-1))  # asarray: no copy, typed as an array


def _levels(e8m0: np.ndarray, top: int) -> Iterator[int]:
    """Exponent levels present, from the top down; counted only if the top one is not enough."""
    yield top
    counts = np.bincount(e8m0, minlength=256)
    yield from (int(level) for level in np.flatnonzero(counts[:top])[::-1])


def _k_max(blocks: np.ndarray, e8m0: np.ndarray, top: int) -> int | None:
    """Largest exponent among blocks that are not all zero (all-zero blocks fit any scale).
    Scans the scales in chunks from the top level down; one non-zero block decides."""
    for level in _levels(e8m0, top):
        for start in range(0, e8m0.size, PROBE_BLOCKS):
            idx = np.flatnonzero(e8m0[start : start + PROBE_BLOCKS] == level) + start
            if idx.size and _nonzero_blocks(blocks[idx]).any():
                return level - E8M0_BIAS
    return None


def _amax(blocks: np.ndarray, e8m0: np.ndarray, top: int) -> float:
    """Largest magnitude of the tensor: exponent levels from the top, each scanned in chunks,
    stopping at a ±6 (nothing below can beat it) or when lower levels cannot matter."""
    amax = 0.0
    for level in _levels(e8m0, top):
        scale = 2.0 ** (level - E8M0_BIAS)
        if E2M1_MAX * scale <= amax:
            break
        for start in range(0, e8m0.size, PROBE_BLOCKS):
            idx = np.flatnonzero(e8m0[start : start + PROBE_BLOCKS] == level) + start
            sel = blocks[idx]
            mag = max(int((sel & 0x07).max(initial=0)), int(((sel >> 4) & 0x07).max(initial=0)))
            amax = max(amax, E2M1_VALUES[mag] * scale)
            if amax >= E2M1_MAX * scale:
                break
        if amax >= E2M1_MAX * scale / 2:  # no lower level can exceed it
            break
    return amax


def _decode(blocks: np.ndarray, e8m0: np.ndarray, shift: int = 0) -> np.ndarray:
    """MXFP4 blocks (n, 16) bytes → float64 values (n, 32), times ``2**-shift``."""
    vals = E2M1_VALUES[unpack_nibbles(blocks)]
    exps = e8m0.astype(np.int32) - (E8M0_BIAS + shift)
    values: np.ndarray = np.ldexp(vals, exps[:, None])
    return values


def _requantize_fixed(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best E4M3 scale among tiny candidates for each 16-half of OOR blocks.

    ``x`` (n, 32) is already divided by the tensor scale. Returns nibbles (n, 32), codes (n, 2)
    and squared error per 16-half (n, 2), all in units of the tensor scale.
    """
    halves = x.reshape(-1, 16)
    best_err = np.square(halves).sum(axis=1)  # all zero: every candidate gives this when
    best_q = np.zeros(halves.shape, dtype=np.uint8)  # amax <= 2**-11, a quarter of the
    best_code = np.ones(halves.shape[0], dtype=np.uint8)  # smallest step (ties to 0)
    live = np.flatnonzero(np.abs(halves).max(axis=1) > E4M3_MIN_SUBNORMAL / 4)
    sub = halves[live]
    for code in OOR_CANDIDATE_CODES:
        s = E4M3_VALUES[code]
        q = e2m1_encode(sub / s)
        err = np.square(E2M1_VALUES[q] * s - sub).sum(axis=1)
        better = err < best_err[live]
        idx = live[better]
        best_err[idx], best_q[idx], best_code[idx] = err[better], q[better], code
    return best_q.reshape(x.shape), best_code.reshape(-1, 2), best_err.reshape(-1, 2)


def _standard_quantize(
    x: np.ndarray, tensor_scale: np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain NVFP4 quantization of values (n, 32) under ``tensor_scale = amax / (6 * 448)``,
    in float32 step by step like ModelOpt's ``NVFP4QTensor.quantize``: per-16 scale =
    E4M3(amax16 / (6 * tensor_scale)), zero blocks 1.0, clamped to [2**-9, 448].
    Returns nibbles (n, 32), codes (n, 2), squared error per block (n,)."""
    halves = x.reshape(-1, 16).astype(np.float32)
    amax16 = np.abs(halves).max(axis=1)
    ideal = amax16 / (np.float32(E2M1_MAX) * tensor_scale)
    ideal[ideal == 0] = 1.0
    ideal = np.clip(ideal, np.float32(E4M3_MIN_SUBNORMAL), np.float32(E4M3_MAX))
    codes = e4m3_encode(ideal.astype(np.float64))
    step = E4M3_VALUES[codes].astype(np.float32) * tensor_scale
    q = e2m1_encode(halves / step[:, None])
    decoded = E2M1_VALUES[q].astype(np.float32) * step[:, None]
    err = np.square(decoded.astype(np.float64) - x.reshape(-1, 16)).sum(axis=1)
    return q.reshape(x.shape), codes.reshape(-1, 2), err.reshape(-1, 2).sum(axis=1)


def _check_e8m0(e8m0: np.ndarray, label: str) -> None:
    bad = e8m0 == E8M0_NAN
    where = np.unravel_index(int(np.argmax(bad)), e8m0.shape)
    raise UsageError(
        f"{label}: E8M0 scale 255 (NaN in the MX spec) at index {tuple(map(int, where))}"
        f" ({int(np.count_nonzero(bad))} such scales)",
        hint="the source checkpoint is corrupt; no NVFP4 value can represent NaN",
    )


def _scale_lut(m: int) -> tuple[np.ndarray, np.ndarray]:
    """E8M0 byte → E4M3 code of ``2**(k - m)`` (clamped), and whether that is exact."""
    d = np.arange(256) - E8M0_BIAS - m
    codes = np.array([e4m3_pow2_code(int(v)) for v in np.clip(d, -9, 8)], dtype=np.uint8)
    return codes, d >= -9


def _scale_codes(e8m0: np.ndarray, m: int, low: int, top: int) -> np.ndarray:
    """E4M3 codes of ``2**(k - m)`` per E8M0 byte, duplicated per 16-half: (..., 2G).

    For exponents in [2**-6, 2**8] (normal E4M3) the code is ``(k - m + 7) << 3``, computed
    in 16-bit lanes holding both halves' bytes; exponents above are clamped (only all-zero
    blocks can have them), and the few below take the table (subnormal, or OOR: fixed later).
    """
    first_normal = m + E8M0_BIAS - 6
    last = min(m + E8M0_BIAS + 8, 255)
    clipped = e8m0
    if low < first_normal or top > last:
        clipped = np.clip(e8m0, np.uint8(max(first_normal, 0)), np.uint8(last))
    bias = np.uint16((7 - E8M0_BIAS - m) % 65536)  # wraps to the code in 8..127
    wide = (clipped.astype(np.uint16) + bias) * np.uint16(0x0808)
    out = wide.view(np.uint8).reshape(*e8m0.shape[:-1], e8m0.shape[-1] * 2)
    if low < first_normal:
        flat = e8m0.reshape(-1)
        idx = np.flatnonzero(flat < first_normal)
        out.reshape(-1, 2)[idx] = _scale_lut(m)[0][flat[idx]][:, None]
    return out


def cast_mxfp4(packed: np.ndarray, e8m0: np.ndarray, label: str) -> CastResult:
    """Cast one MXFP4 tensor to NVFP4.

    :param packed: uint8 (..., G*16), two E2M1 per byte, low nibble first; OOR blocks are
        patched in place when it is writable (a copy-on-write mapping), else in a copy.
    :param e8m0: uint8 (..., G), one biased exponent per 32 values.
    :param label: "file: tensor", used in error messages and the report.
    """
    blocks = packed.reshape(-1, 16)
    flat_e = e8m0.reshape(-1)
    top, low = int(flat_e.max(initial=0)), int(flat_e.min(initial=255))
    if top == E8M0_NAN:
        _check_e8m0(e8m0, label)
    k_max = _k_max(blocks, flat_e, top)
    m = 0 if k_max is None else max(k_max - 8, MIN_TENSOR_EXP)
    scales = _scale_codes(e8m0, m, low, top)
    stats = TensorStats(label, flat_e.size, flat_e.size, 0, 0.0, flat_e.size * 32, "exact")
    oor = np.empty(0, dtype=np.intp)
    if low - E8M0_BIAS - m < -9:
        candidates = np.flatnonzero(flat_e < m + E8M0_BIAS - 9)
        oor = candidates[_nonzero_blocks(blocks[candidates])]
    if oor.size == 0:
        return CastResult(packed, scales, 2.0**m, stats, unchanged=True)

    stats.oor_blocks = int(oor.size)
    x = _decode(blocks[oor], flat_e[oor], shift=m)
    q, oor_codes, err = _requantize_fixed(x)
    stats.sse = float(err.sum()) * 4.0**m
    stats.exact_blocks -= int(np.count_nonzero(err.sum(axis=1)))
    stats.path = "closed-form"
    requant = _try_standard(blocks, flat_e, top, stats)
    if requant is not None:
        new_packed, new_codes, tensor_scale = requant
        return CastResult(
            new_packed.reshape(packed.shape),
            new_codes.reshape(*e8m0.shape[:-1], e8m0.shape[-1] * 2),
            tensor_scale,
            stats,
        )
    out = packed if packed.flags.writeable else packed.copy()
    out.reshape(-1, 16)[oor] = pack_nibbles(q)
    scales.reshape(-1, 2)[oor] = oor_codes
    return CastResult(out, scales, 2.0**m, stats)


def _try_standard(
    blocks: np.ndarray, flat_e: np.ndarray, top: int, stats: TensorStats
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Plain requantize of the whole tensor, chunk by chunk; abandoned as soon as its SSE
    exceeds the closed form's (SSE only grows). Returns its output only when strictly better."""
    with np.errstate(over="ignore"):
        tensor_scale = np.float32(_amax(blocks, flat_e, top)) / np.float32(E2M1_MAX * E4M3_MAX)
    if not np.isfinite(tensor_scale):  # amax beyond FP32 (E8M0 >= 253): no plain NVFP4 exists
        return None
    out_packed = np.empty_like(blocks)
    out_codes = np.empty((blocks.shape[0], 2), dtype=np.uint8)
    sse, exact, start, size = 0.0, 0, 0, FIRST_CHUNK_BLOCKS
    while start < blocks.shape[0]:
        sl = slice(start, start + size)
        start, size = start + size, min(2 * size, CHUNK_BLOCKS)
        x = _decode(blocks[sl], flat_e[sl])
        q, codes, err = _standard_quantize(x, tensor_scale)
        sse += float(err.sum())
        if not sse < stats.sse:  # also when NaN
            return None
        out_packed[sl], out_codes[sl] = pack_nibbles(q), codes
        exact += int(np.count_nonzero(err == 0))
    stats.sse_requantize = sse
    stats.sse, stats.exact_blocks, stats.path = sse, exact, "requantize"
    return out_packed, out_codes, float(tensor_scale)
