"""Repack of the official vLLM wheel: fp4stack's raw-copy repack vs `wheel unpack` + `wheel pack`.

Run from the repository root after `make wheel UPSTREAM=vllm` (official wheel in build/cache/):
    build/venv/tool/bin/python bench/repack_bench.py [--repeat 3]
Needs the `wheel` package (0.48.0) in the interpreter running this script. Both sides run
in the same invocation, alternating, on the same disk; compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure, median

ROOT = Path(__file__).resolve().parent.parent
FP4STACK = str(ROOT / "build" / "venv" / "tool" / "bin" / "fp4stack")
OFFICIAL = ROOT / "build" / "cache" / "vllm-0.28.0-cp38-abi3-manylinux_2_28_x86_64.whl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    ours, unpack, pack = [], [], []
    for _ in range(repeat):
        ours.append(measure([FP4STACK, "wheel", "vllm"], cwd=ROOT))
        with tempfile.TemporaryDirectory(dir=ROOT / "build") as scratch:
            unpack.append(measure([sys.executable, "-m", "wheel", "unpack", "-d", scratch,
                                   str(OFFICIAL)]))  # fmt: skip
            [tree] = Path(scratch).glob("vllm-*")
            out = Path(scratch) / "out"
            out.mkdir()
            pack.append(measure([sys.executable, "-m", "wheel", "pack", "-d", str(out),
                                 str(tree)]))  # fmt: skip
            shutil.rmtree(tree)
    t_ours, t_unpack, t_pack = (median([m[0] for m in ms]) for ms in (ours, unpack, pack))
    rss_ours = max(m[1] for m in ours)
    rss_plain = max(m[1] for m in unpack + pack)
    size = OFFICIAL.stat().st_size / 2**20
    print(f"official wheel: {size:.0f} MiB")
    print(f"fp4stack wheel vllm (apply no-op + repack + verify): {t_ours:.2f} s, "
          f"peak RSS {rss_ours:.0f} MiB")  # fmt: skip
    print(f"wheel unpack + wheel pack: {t_unpack:.2f} s + {t_pack:.2f} s = "
          f"{t_unpack + t_pack:.2f} s, peak RSS {rss_plain:.0f} MiB")  # fmt: skip
    print(f"ratio (plain / ours): {(t_unpack + t_pack) / t_ours:.1f}x faster, "
          f"peak RSS {rss_ours / size:.2f}x the wheel's size")  # fmt: skip


if __name__ == "__main__":
    main()
