"""`fp4stack test` runs lines side by side: output stays grouped, errors stop the rest."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from fp4stack.core import log as logging
from fp4stack.core import runner
from fp4stack.core.errors import EnvError
from fp4stack.stack.pins import load_project
from fp4stack.testing import jobs
from fp4stack.testing.suites import Outcome

# Prints three lines; before the last, waits (up to 30 s) for a file the other job writes,
# so the two commands can only both finish if they run at the same time.
TALKER = """
import pathlib, sys, time
mine, theirs = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
print("one", flush=True)
mine.touch()
deadline = time.monotonic() + 30
while not theirs.exists():
    if time.monotonic() > deadline:
        sys.exit("the other job never ran alongside")
    time.sleep(0.05)
print("two", flush=True)
print("three", flush=True)
"""


@pytest.fixture
def sink(monkeypatch):
    lines: list[str] = []
    lock = threading.Lock()

    def keep(message: str, kind: str) -> None:
        with lock:
            lines.append(message)

    monkeypatch.setattr(runner, "_stopping", threading.Event())
    logging.set_sink(keep)
    yield lines
    logging.set_sink(None)


def _talking_job(name: str, mine: Path, theirs: Path):
    def task() -> Outcome:
        argv = [sys.executable, "-c", TALKER, str(mine), str(theirs)]
        done = runner.run(argv, on_line=lambda line: logging.log(f"{name}:{line}", "output"))
        outcome = Outcome(name)
        outcome.suite_note = done.stdout
        return outcome

    return task


def test_jobs_run_at_once_and_each_ones_output_is_one_block(tmp_path, sink):
    a, b = tmp_path / "a", tmp_path / "b"
    tasks = [jobs.Task("vllm@1", 1, _talking_job("vllm@1", a, b)),
             jobs.Task("ct@1", 1, _talking_job("ct@1", b, a))]  # fmt: skip

    outcomes = jobs._parallel(tasks, 2)

    assert [o.name for o in outcomes] == ["vllm@1", "ct@1"], "in the order asked for"
    for name in ("vllm@1", "ct@1"):
        start = sink.index(f"{name}:one")
        assert sink[start : start + 3] == [f"{name}:one", f"{name}:two", f"{name}:three"]
        assert f"[{name}] its commands' output (3 lines):" == sink[start - 1]


def test_a_job_that_errors_stops_the_others_commands(tmp_path, sink):
    started = tmp_path / "started"
    codes: list[int] = []

    def slow() -> Outcome:
        code = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); time.sleep(120)"
        done = runner.run([sys.executable, "-c", code, str(started)], check=False)
        codes.append(done.returncode)
        runner.run([sys.executable, "-c", "pass"])  # never starts: the run is stopping
        return Outcome("slow")

    def broken() -> Outcome:
        runner.run([sys.executable, "-c", WAIT_FOR_FILE, str(started)])
        raise EnvError("cannot prepare the test environment build/venv/broken@1")

    with pytest.raises(EnvError, match="broken@1"):
        jobs._parallel([jobs.Task("slow", 1, slow), jobs.Task("broken", 1, broken)], 2)
    assert codes == [-15], "the slow job's command was terminated, not waited for"


WAIT_FOR_FILE = """
import pathlib, sys, time
deadline = time.monotonic() + 30
while not pathlib.Path(sys.argv[1]).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def test_lines_log_with_their_name_while_held_output_waits(sink):
    with logging.grouped("vllm@1"):
        logging.log("preparing test environment build/venv/vllm@1")
        logging.log("vllm@1: upstream suite")
        logging.log("collected 3 items", "output")
        assert sink == ["[vllm@1] preparing test environment build/venv/vllm@1",
                        "vllm@1: upstream suite"]  # fmt: skip
    assert sink[-1] == "collected 3 items"
    logging.log("after")
    assert sink[-1] == "after", "outside the block, lines are plain again"


def test_the_longest_jobs_start_first(sink):
    started: list[str] = []

    def job(name: str):
        return lambda: started.append(name) or Outcome(name)

    minutes = {"compressed-tensors@1": 4, "vllm@1": 9, "modelopt@1": 3, "vllm@2": 11, "tools": 6}
    outcomes = jobs._parallel([jobs.Task(n, m, job(n)) for n, m in minutes.items()], 2)
    assert [o.name for o in outcomes] == list(minutes), "outcomes in the order asked for"
    assert set(started[:2]) == {"vllm@1", "vllm@2"} and started.index("tools") == 2
    assert started[3:] == ["compressed-tensors@1", "modelopt@1"]


def test_the_start_order_comes_from_the_pins(toy):
    """A line's `test_minutes` in upstream/pins.toml, not its name, puts it first."""
    pins = toy.root / "upstream" / "pins.toml"
    pins.write_text(pins.read_text().replace("[toy]\n", "[toy]\ntest_minutes = 99\n", 1))
    project = load_project(toy.root)
    tasks = [jobs.Task("tools", jobs.TOOLS_MINUTES, Outcome)]
    tasks += [jobs.Task(ln.id, ln.test_minutes, Outcome) for ln in project.lines.values()]
    assert tasks[jobs.start_order(tasks)[0]].name.startswith("toy@")
