"""Time one line's test venv filled by pip (the old way) and by uv (core/installer.py).

Both install the same thing in the same order: torch alone, then the line's env
`requires` pinned beside torch. uv runs twice, first with an empty cache (what a fresh CI
machine pays for the first env) and then warm (every later env of the run). Run from the
repo root with the tool venv:

    build/venv/tool/bin/python bench/env_install_bench.py compressed-tensors@0.13.0

The numbers are wall seconds of one run on a noisy 2-core machine: compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fp4stack.core.installer import Installer
from fp4stack.core.pipconfig import pip_settings
from fp4stack.stack.pins import load_project


def _venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", where], check=True)
    return where / "bin" / "python"


def with_pip(where: Path, torch: str, requires: list[str]) -> float:
    start = time.perf_counter()
    python = _venv(where)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, torch], check=True)
    subprocess.run([*pip, *requires, torch], check=True)
    return time.perf_counter() - start


def with_uv(where: Path, torch: str, requires: list[str]) -> float:
    start = time.perf_counter()
    uv = Installer(_venv(where), pip_settings("install"))
    uv.install(torch)
    uv.install(*requires, torch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("line", help="the line whose env to build, e.g. compressed-tensors@0.13.0")
    args = parser.parse_args()
    env = load_project(Path.cwd()).line(args.line).env
    torch, requires = f"torch=={env.torch}", list(env.requires)
    with tempfile.TemporaryDirectory(prefix="env-bench-") as scratch:
        root = Path(scratch)
        cache = root / "uv-cache"
        os.environ["UV_CACHE_DIR"] = str(cache)  # a cold cache of our own for the first run
        pip_s = with_pip(root / "pip", torch, requires)
        cold = with_uv(root / "uv-cold", torch, requires)
        warm = with_uv(root / "uv-warm", torch, requires)
        shutil.rmtree(cache, ignore_errors=True)
    print(f"line {args.line}: torch {env.torch} + {len(requires)} requirements")
    print(f"pip          {pip_s:7.1f} s   1.00")
    print(f"uv, cold     {cold:7.1f} s   {cold / pip_s:.2f} of pip")
    print(f"uv, warm     {warm:7.1f} s   {warm / pip_s:.2f} of pip")


if __name__ == "__main__":
    main()
