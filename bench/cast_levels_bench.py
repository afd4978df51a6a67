"""Time the cast of one tensor whose exponent levels are sparse: all-zero blocks at E8M0 254
and every other block near 2**-107, a gap of ~230 levels. The cast visits the levels present
instead of counting down through the gap; this checks it stays well under a budget.

    python bench/cast_levels_bench.py [--repeat 7] [--budget 5]

Exits 1 if the median of any size exceeds the budget (seconds). Needs numpy only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from fp4stack.checkpoint.cast.convert import cast_mxfp4

SIZES = ((128, 512), (4096, 4096))  # (rows, values per row): the test's size, and 8 MB packed


def sparse_levels(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Random nibbles with E8M0 16..20, plus one all-zero block per row at E8M0 254."""
    rng = np.random.default_rng(12)
    packed = rng.integers(0, 256, (rows, cols // 2), dtype=np.uint8)
    e8m0 = rng.integers(16, 21, (rows, cols // 32)).astype(np.uint8)
    packed[:, :16] = 0
    e8m0[:, 0] = 254
    return packed, e8m0


def time_cast(rows: int, cols: int, repeat: int) -> list[float]:
    """Wall seconds of ``repeat`` casts (each on a fresh copy), after checking the result."""
    packed, e8m0 = sparse_levels(rows, cols)
    result = cast_mxfp4(packed.copy(), e8m0, "bench")
    if result.stats.path != "exact":
        sys.exit(f"{rows}x{cols}: expected the exact path, got {result.stats.path}")
    times = []
    for _ in range(repeat):
        data = packed.copy()
        start = time.perf_counter()
        cast_mxfp4(data, e8m0, "bench")
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per cast (median)")
    args = ap.parse_args()
    print("| tensor (rows x values) | packed MB | median s | min s | max s |")
    print("|---|---|---|---|---|")
    over = False
    for rows, cols in SIZES:
        times = time_cast(rows, cols, args.repeat)
        med = statistics.median(times)
        over |= med > args.budget
        print(f"| {rows} x {cols} | {rows * cols / 2 / 1e6:.2f} | {med:.4f} "
              f"| {min(times):.4f} | {max(times):.4f} |")  # fmt: skip
    print(f"\nbudget {args.budget} s per cast: {'EXCEEDED' if over else 'met'}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
