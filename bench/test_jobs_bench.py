"""Time `fp4stack test` on some lines run one after another (--jobs 1) and side by side.

The venvs are built (or found up to date) by a first, untimed run, so the timed runs
measure the tests alone: each line's upstream suite, our tests and its proofs. Both timed
runs happen in one invocation, one after the other; compare their ratio, not the seconds.
Run from the repo root with the tool venv:

    build/venv/tool/bin/python bench/test_jobs_bench.py compressed-tensors@0.17.0 \\
        modelopt@0.47.0 transformers@4.57.6
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

FP4STACK = [str(Path(sys.executable).parent / "fp4stack")]  # the tool venv's console script


def timed_test(lines: list[str], jobs: int) -> float:
    start = time.perf_counter()
    done = subprocess.run([*FP4STACK, "test", *lines, "--jobs", str(jobs)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"fp4stack test --jobs {jobs} failed:\n{done.stdout[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lines", nargs="+", help="lines to test, e.g. modelopt@0.47.0")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="the side-by-side run's jobs (default: one per core)")  # fmt: skip
    args = parser.parse_args()
    os.chdir(Path(__file__).resolve().parents[1])
    print("warming the venvs (untimed)", flush=True)
    timed_test(args.lines, args.jobs)
    serial = timed_test(args.lines, 1)
    parallel = timed_test(args.lines, args.jobs)
    print(f"lines: {' '.join(args.lines)}")
    print(f"--jobs 1:  {serial:7.1f} s  1.00")
    print(f"--jobs {args.jobs}:  {parallel:7.1f} s  {parallel / serial:.2f}")


if __name__ == "__main__":
    main()
