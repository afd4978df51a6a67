"""Run the lines' tests side by side: up to ``jobs`` lines at once, each in a thread.

Applying the stacks and building the wheels touch shared trees (a line's `wheels_from`
builds another line), so that part runs first, one line at a time. Then each line's venv,
suite, our tests and proofs run as one job, our tool tests as another. The work is in
child processes, so threads are enough. Each job's log lines carry its name and its
commands' output is printed as one block when it ends (``core.log.grouped``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial

from fp4stack.core import runner
from fp4stack.core.log import grouped, log
from fp4stack.stack.pins import Line, Project
from fp4stack.testing import suites
from fp4stack.testing.suites import Outcome

# The longest jobs start first, so that the run does not end with one long job alone on a
# core: each line's `test_minutes` (upstream/pins.toml), and our tool tests' (measured the
# same way, docs/benchmarks.md). Equal times keep their order.
TOOLS_MINUTES = 8.5


def default_jobs() -> int:
    """One job per core: the tests are single-threaded Python, mostly."""
    return max(1, os.cpu_count() or 1)


def run_all(project: Project, lines: list[Line], *, tools: bool, jobs: int) -> list[Outcome]:
    """Every line's :func:`suites.run_upstream`, then (if ``tools``) :func:`suites.run_tools`;
    outcomes in that order, whatever order they finished in."""
    recipes = {line.id: suites.upstream_recipe(project, line) for line in lines}
    tasks: list[Task] = [
        Task(
            line.id,
            line.test_minutes,
            partial(suites.run_upstream, project, line, recipes[line.id]),
        )
        for line in lines
    ]
    if tools:
        tasks.append(Task("tools", TOOLS_MINUTES, partial(suites.run_tools, project)))
    if jobs <= 1 or len(tasks) <= 1:
        return [task.run() for task in tasks]
    log(f"running {len(tasks)} jobs, {jobs} at a time")
    return _parallel(tasks, jobs)


@dataclass(frozen=True)
class Task:
    """One job: a line's tests, or our tool tests, with how long it is expected to take."""

    name: str
    minutes: float
    run: Callable[[], Outcome]


def start_order(tasks: list[Task]) -> list[int]:
    """Indexes of ``tasks``, longest first; equal times keep their order."""
    return sorted(range(len(tasks)), key=lambda i: -tasks[i].minutes)


def _parallel(tasks: list[Task], jobs: int) -> list[Outcome]:
    order = start_order(tasks)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fp4stack-job")
    futures: dict[int, Future[Outcome]] = {}
    try:
        for i in order:
            futures[i] = pool.submit(_job, tasks[i].name, tasks[i].run)
        done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()  # a job's error (a venv that cannot be built) ends the run
        return [futures[i].result() for i in range(len(tasks))]
    except BaseException:
        runner.stop_all()  # an error, Ctrl-C or SIGTERM: the other jobs' commands stop too
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _job(name: str, task: Callable[[], Outcome]) -> Outcome:
    with grouped(name):
        return task()
