"""The one root error of fp4stack, with a subclass per stage.

The CLI prints ``ERROR: <message>``, then ``hint: <hint>`` when given, then the tail of a
failed command's output when the error was caused by one, and exits with ``exit_code``;
no traceback is shown for these. A stage wraps what failed under it with :func:`stage`,
keeping the cause (``raise ... from err``). Credentials in URLs are masked on the way in,
so no message, hint or command output can carry a secret to the screen or a CI log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from fp4stack.core.redact import redact


class FP4StackError(Exception):
    """A failure the user can act on. Messages name the file, tensor or patch at fault."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(redact(message))
        self.hint = redact(hint) if hint else hint


class UsageError(FP4StackError):
    """Bad input from the user: arguments, files, checkpoints."""

    exit_code = 2


class SourceError(FP4StackError):
    """A pinned upstream artifact could not be fetched, verified or unpacked."""


class PatchError(FP4StackError):
    """A patch series could not be applied, exported, linted or cut into a PR."""


class BuildError(FP4StackError):
    """A patched wheel could not be built."""


class EnvError(FP4StackError):
    """A test environment could not be created."""


class TestRunError(FP4StackError):
    """A test run could not be started or read (not: a test failed)."""

    __test__ = False  # not a pytest test class, despite the name


class ConvertError(FP4StackError):
    """A checkpoint could not be converted or written."""


class CommandError(FP4StackError):
    """An external command failed: its argv, exit code and (captured) output."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str = "") -> None:
        super().__init__(f"`{' '.join(argv)}` exited {returncode}")
        self.argv = tuple(argv)
        self.returncode = returncode
        self.output = redact(output)


def command_output(error: BaseException) -> str:
    """The output of the failed command behind ``error`` (following causes), or ''."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, CommandError):
            return seen.output
        seen = seen.__cause__
    return ""


@contextmanager
def stage(error: type[FP4StackError], what: str, hint: str | None = None) -> Iterator[None]:
    """Turn a failed command or file operation under ``what`` into ``error``.

    Errors that already belong to a stage pass through unchanged.
    """
    try:
        yield
    except CommandError as err:
        raise error(f"{what}: {err}", hint=hint) from err
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        raise error(f"{what}: {where}{err.strerror or err}", hint=hint) from err
