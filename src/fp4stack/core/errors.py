"""The one root error of fp4stack, with a subclass per stage.

The CLI prints ``ERROR: <message>`` (and ``hint: <hint>`` when given) and exits with
``exit_code``; no traceback is shown for these.
"""

from __future__ import annotations


class FP4StackError(Exception):
    """A failure the user can act on. Messages name the file, tensor or patch at fault."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(FP4StackError):
    """Bad input from the user: arguments, files, checkpoints."""

    exit_code = 2


class SourceError(FP4StackError):
    """A pinned upstream artifact could not be fetched or failed verification."""


class PatchError(FP4StackError):
    """A patch series could not be applied, exported or linted."""


class BuildError(FP4StackError):
    """A patched wheel could not be built."""


class EnvError(FP4StackError):
    """A test environment could not be created."""


class CommandError(FP4StackError):
    """An external command failed; the message carries its argv, exit code and output."""
