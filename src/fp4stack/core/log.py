"""One logging hook for the library: ``log(message, kind)``; the CLI decides where it goes.

Nothing below the CLI prints. Library code reports progress with :func:`log`; the CLI
installs a sink (:func:`set_sink`) that writes it to stderr. Without a sink, messages are
dropped, so the library can be used quietly from other code and from tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fp4stack.core.redact import redact

# step: a stage starts or ends; cmd: a command about to run; info: detail;
# warn: something the user should know; output: a line of a command's live output.
Kind = Literal["step", "cmd", "info", "warn", "output"]
Sink = Callable[[str, Kind], None]

_sink: Sink | None = None


def set_sink(sink: Sink | None) -> None:
    """Send every later :func:`log` call to ``sink`` (None: drop them)."""
    global _sink
    _sink = sink


def log(message: str, kind: Kind = "step") -> None:
    """Report one line of progress through the installed sink, with URL credentials masked."""
    if _sink is not None:
        _sink(redact(message), kind)
