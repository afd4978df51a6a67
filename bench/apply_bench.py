"""`fp4stack apply` for every pinned upstream from a warm download cache.

Run from the repository root after one `make apply` (so build/cache/ holds the artifacts):
    build/venv/tool/bin/python bench/apply_bench.py [--repeat 3]
Measures, in one run: a no-op apply (trees up to date); a full apply from the warm cache
(build/src/ removed first: clone the cached pristine repo, `git am` every series); and the
same with the pristine repos removed too, so every artifact is unpacked and imported anew.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure, median

ROOT = Path(__file__).resolve().parent.parent
FP4STACK = str(ROOT / "build" / "venv" / "tool" / "bin" / "fp4stack")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    measure([FP4STACK, "apply"], cwd=ROOT)  # make sure the cache is warm
    unpacked, fresh, noop = [], [], []
    for _ in range(repeat):
        shutil.rmtree(ROOT / "build" / "src", ignore_errors=True)
        shutil.rmtree(ROOT / "build" / "cache" / "pristine", ignore_errors=True)
        unpacked.append(measure([FP4STACK, "apply"], cwd=ROOT)[0])
        shutil.rmtree(ROOT / "build" / "src", ignore_errors=True)
        fresh.append(measure([FP4STACK, "apply"], cwd=ROOT)[0])
        noop.append(measure([FP4STACK, "apply"], cwd=ROOT)[0])
    print(f"apply, all upstreams, downloads only cached:  median {median(unpacked):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in unpacked)})")  # fmt: skip
    print(f"apply, all upstreams, warm cache, no trees:   median {median(fresh):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in fresh)})")  # fmt: skip
    print(f"apply, all upstreams, already applied:        median {median(noop):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in noop)})")  # fmt: skip


if __name__ == "__main__":
    main()
