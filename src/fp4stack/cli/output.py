"""How the CLI shows the library's progress and errors: stderr, one line each."""

from __future__ import annotations

import sys

from fp4stack.core.errors import FP4StackError, command_output
from fp4stack.core.log import Kind, Sink

_PREFIX: dict[str, str] = {"step": "* ", "cmd": "> ", "info": "  ", "warn": "WARNING: "}
TAIL_LINES = 40


def stderr_sink(verbosity: int = 0) -> Sink:
    """A log sink writing to stderr; commands are shown only when ``verbosity`` >= 1."""

    def sink(message: str, kind: Kind) -> None:
        if kind == "cmd" and verbosity < 1:
            return
        line = message if kind == "output" else f"{_PREFIX[kind]}{message}"
        print(line, file=sys.stderr, flush=True)

    return sink


def print_error(error: FP4StackError) -> None:
    """``ERROR:`` line, ``hint:`` line, then the tail of a failed command's output."""
    print(f"ERROR: {error}", file=sys.stderr)
    if error.hint:
        print(f"hint: {error.hint}", file=sys.stderr)
    output = command_output(error).rstrip()
    if output:
        lines = output.splitlines()[-TAIL_LINES:]
        print("\n".join(f"  | {line}" for line in lines), file=sys.stderr)
