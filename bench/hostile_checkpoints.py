"""The long budget of the hostile-checkpoint property test, each verb in its own process.

Draws mutated checkpoints with the strategy of
tests/fp4stack/checkpoint/test_hostile_checkpoints.py and runs every verb on each as
`python -m fp4stack …`, with a timeout, recording exit codes, tracebacks, peak memory
(the child's max RSS), inputs changed and leftovers. Prints one line per problem and a
summary; exits 1 if any run broke a promise.

    build/venv/tool-tests/bin/python bench/hostile_checkpoints.py [EXAMPLES] [--timeout S]

Results and the command are kept in docs/doctor.md ("What the checkpoint tools accept").
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fp4stack.checkpoint import test_hostile_checkpoints as hostile  # noqa: E402
from tests.fp4stack.checkpoint.doctor import doctor_ckpt as dc  # noqa: E402


def run_verb(argv: list[str], timeout: float) -> tuple[int | str, str, float]:
    """Exit code (or "timeout"), stderr, and the child's peak RSS in MiB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    try:
        done = subprocess.run([sys.executable, "-m", "fp4stack", *argv], capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return "timeout", "", 0.0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN is the largest child so far: a new maximum is this child's
    return done.returncode, done.stderr, (peak / 1024 if peak > before else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", type=int, nargs="?", default=300)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    problems: list[str] = []
    stats = {"checkpoints": 0, "runs": 0, "peak_mib": 0.0}
    start = time.monotonic()

    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=hostile.mutated())
    def one(case: tuple) -> None:
        kind, ckpt, what, edit = case
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            root = dc.write(work / "src", ckpt)
            if edit is not None:
                edit(root)
            before = hostile._snapshot(root)
            stats["checkpoints"] += 1
            for verb in hostile._verbs(kind, root, work / "dst"):
                stats["runs"] += 1
                code, err, peak = run_verb([str(a) for a in verb], args.timeout)
                stats["peak_mib"] = max(stats["peak_mib"], peak)
                where = f"{kind}: {what}: {verb[0]}"
                if code == "timeout" or "Traceback" in err or code not in (0, 1, 2):
                    problems.append(f"{where}: exit {code}: {err.strip()[-300:]}")
                if hostile._snapshot(root) != before:
                    problems.append(f"{where}: input changed")
                left = sorted(p.name for p in work.iterdir())
                if code != 0 and left != ["src"]:
                    problems.append(f"{where}: left {left}")
                shutil.rmtree(work / "dst", ignore_errors=True)

    one()
    for problem in problems:
        print(problem)
    minutes = (time.monotonic() - start) / 60
    print(f"{stats['checkpoints']} mutated checkpoints, {stats['runs']} runs in {minutes:.1f} min: "
          f"{len(problems)} problems, peak child RSS {stats['peak_mib']:.0f} MiB")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
