"""The one way fp4stack runs an external command: argv lists, output kept for errors.

Every subprocess of fp4stack starts here. Output is captured (as text, or as bytes for
binary output), optionally handed line by line to a callback while the command runs, and
attached to the :class:`CommandError` raised when a checked command fails.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fp4stack.core.errors import CommandError
from fp4stack.core.log import log

Argv = Sequence[str | os.PathLike[str]]

# Commands running now, from any thread, and whether a stop was asked for (see stop_all).
_running: set[subprocess.Popen[bytes] | subprocess.Popen[str]] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()


@dataclass(frozen=True)
class Result:
    """A finished command: exit code and captured output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    data: bytes = b""  # stdout as bytes, when run with ``binary=True``

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(
    argv: Argv,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input_text: str | None = None,
    binary: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> Result:
    """Run ``argv`` and capture its output (stderr merged into stdout, unless ``binary``).

    :param env: variables layered over the current environment.
    :param binary: keep stdout as bytes (``Result.data``); stderr is then captured apart.
    :param on_line: called with each output line as it arrives (a live tee).
    :raises CommandError: on a non-zero exit when ``check``, carrying the output.
    """
    args = tuple(os.fspath(a) for a in argv)
    if _stopping.is_set():
        raise KeyboardInterrupt  # the user stopped the run: start nothing new
    log(" ".join(args), kind="cmd")
    full_env = {**os.environ, **env} if env else None
    try:
        if on_line is not None:
            result = _tee(args, cwd, full_env, on_line)
        else:
            result = _capture(args, cwd, full_env, input_text, binary)
    except OSError as error:  # the program itself is missing or not executable
        raise CommandError(args, 127, f"{args[0]}: {error.strerror}") from error
    if check and not result.ok:
        raise CommandError(args, result.returncode, result.stdout)
    return result


def _capture(
    args: tuple[str, ...],
    cwd: Path | None,
    env: dict[str, str] | None,
    input_text: str | None,
    binary: bool,
) -> Result:
    if binary:
        with _started(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
            data, err = p.communicate()
        return Result(args, p.returncode, err.decode(errors="replace"), data)
    stdin = subprocess.PIPE if input_text is not None else None
    with _started(
        args, cwd=cwd, env=env, text=True, stdin=stdin,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    ) as process:  # fmt: skip
        out, _ = process.communicate(input_text)
    return Result(args, process.returncode, out or "")


def _tee(
    args: tuple[str, ...],
    cwd: Path | None,
    env: dict[str, str] | None,
    on_line: Callable[[str], None],
) -> Result:
    lines: list[str] = []
    with _started(
        args, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            on_line(line.rstrip("\n"))
    return Result(args, process.returncode, "".join(lines))


@contextmanager
def _started(args: tuple[str, ...], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """A child process, known to :func:`stop_all` while it runs."""
    with subprocess.Popen(args, **popen) as process:
        with _running_lock:
            _running.add(process)
        try:
            yield process
        except BaseException:
            process.kill()  # as subprocess.run does: an interrupted wait leaves no child behind
            raise
        finally:
            with _running_lock:
                _running.discard(process)


def stop_all() -> None:
    """Stop the commands other threads are running, and any they would start next:
    how a Ctrl-C (or SIGTERM) in the main thread reaches work running in threads."""
    _stopping.set()
    with _running_lock:
        for process in _running:
            process.terminate()
