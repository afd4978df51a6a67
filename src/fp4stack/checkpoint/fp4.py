"""E2M1 and E4M3 (FN) codecs in numpy: exact tables and round-to-nearest-even encoders."""

from __future__ import annotations

import numpy as np

# E2M1 nibble -> value; bit 3 is the sign.
E2M1_VALUES = np.array(
    [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float64
)
E2M1_MAX = 6.0
E4M3_MAX = 448.0
E4M3_MIN_SUBNORMAL = 2.0**-9


def _e4m3_table() -> np.ndarray:
    """Values of the 127 finite non-negative E4M3FN codes 0x00..0x7E (0x7F is NaN)."""
    codes = np.arange(127)
    exp, mant = codes >> 3, codes & 7
    normal = (1 + mant / 8.0) * np.exp2(exp - 7.0)
    subnormal = mant * 2.0**-9
    return np.where(exp == 0, subnormal, normal)


E4M3_VALUES = _e4m3_table()


def _rne_bounds(values: np.ndarray) -> np.ndarray:
    """Decision bounds for nearest-even rounding onto an ascending grid of codes 0..n-1.

    ``np.searchsorted(bounds, x, side="left")`` counts bounds strictly below ``x``. A tie at the
    midpoint between codes c and c+1 must go to the even code, so when c+1 is even the bound is
    nudged one ulp down (a tie then counts as above it).
    """
    mids = (values[:-1] + values[1:]) / 2
    up = (np.arange(1, len(values)) % 2) == 0
    bounds: np.ndarray = np.where(up, np.nextafter(mids, -np.inf), mids)
    return bounds


_E4M3_BOUNDS = _rne_bounds(E4M3_VALUES)


# E2M1 decision bounds on |x| and whether a tie there rounds up (to the even code above).
_E2M1_STEPS = ((0.25, False), (0.75, True), (1.25, False), (1.75, True), (2.5, False),
               (3.5, True), (5.0, False))  # fmt: skip


def e2m1_encode(x: np.ndarray) -> np.ndarray:
    """Round float values (already divided by their scale) to E2M1 nibbles, nearest even,
    saturating at ±6: the magnitude code counts the bounds passed (7 vector compares, faster
    than a binary search per element)."""
    a = np.abs(x)
    mag = np.zeros(a.shape, dtype=np.uint8)
    for bound, tie_up in _E2M1_STEPS:
        mag += (a >= bound) if tie_up else (a > bound)
    codes: np.ndarray = mag | ((x < 0).astype(np.uint8) << 3)  # -0.0 → +0, as ModelOpt does
    return codes


def e4m3_encode(x: np.ndarray) -> np.ndarray:
    """Round non-negative finite values to E4M3FN codes, saturating at 448 (never NaN)."""
    return np.searchsorted(_E4M3_BOUNDS, x, side="left").astype(np.uint8)


def e4m3_pow2_code(exponent: int) -> int:
    """The exact E4M3FN code of ``2**exponent`` for exponent in [-9, 8]."""
    if not -9 <= exponent <= 8:
        raise ValueError(f"2**{exponent} is not an E4M3 power of two")
    if exponent <= -7:
        return 1 << (exponent + 9)  # subnormal: mantissa 1, 2 or 4 times 2**-9
    return (exponent + 7) << 3


def unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    """Split bytes into nibbles along the last axis, low nibble first."""
    out = np.empty((*packed.shape[:-1], packed.shape[-1] * 2), dtype=np.uint8)
    out[..., 0::2] = packed & 0x0F
    out[..., 1::2] = packed >> 4
    return out


def pack_nibbles(nibbles: np.ndarray) -> np.ndarray:
    """Inverse of :func:`unpack_nibbles`: pairs of nibbles along the last axis → bytes."""
    packed: np.ndarray = nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)
    return packed.astype(np.uint8, copy=False)
