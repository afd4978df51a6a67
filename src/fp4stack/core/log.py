"""One logging hook for the library: ``log(message, kind)``; the CLI decides where it goes.

Nothing below the CLI prints. Library code reports progress with :func:`log`; the CLI
installs a sink (:func:`set_sink`) that writes it to stderr. Without a sink, messages are
dropped, so the library can be used quietly from other code and from tests.

Work that runs in threads side by side wraps itself in :func:`grouped`, so that its lines
say whose they are and a command's output does not interleave with another's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from fp4stack.core.redact import redact

# step: a stage starts or ends; cmd: a command about to run; info: detail;
# warn: something the user should know; output: a line of a command's live output.
Kind = Literal["step", "cmd", "info", "warn", "output"]
Sink = Callable[[str, Kind], None]

_sink: Sink | None = None
_lock = threading.Lock()
_local = threading.local()


@dataclass
class _Group:
    name: str
    held: list[str] = field(default_factory=list)


def set_sink(sink: Sink | None) -> None:
    """Send every later :func:`log` call to ``sink`` (None: drop them)."""
    global _sink
    _sink = sink


def log(message: str, kind: Kind = "step") -> None:
    """Report one line of progress through the installed sink, with URL credentials masked."""
    if _sink is None:
        return
    message = redact(message)
    group: _Group | None = getattr(_local, "group", None)
    if group is not None and kind == "output":
        group.held.append(message)
        return
    if group is not None and not message.startswith(f"{group.name}:"):
        message = f"[{group.name}] {message}"  # say whose it is, unless it says so itself
    with _lock:
        _sink(message, kind)


@contextmanager
def grouped(name: str) -> Iterator[None]:
    """Within this block, in this thread: messages are logged live as ``[name] message``
    (unless they start with ``name:``); command output is held back and logged as one block
    when the block ends."""
    group = _Group(name)
    _local.group = group
    try:
        yield
    finally:
        _local.group = None
        if group.held and _sink is not None:
            with _lock:
                _sink(f"[{name}] its commands' output ({len(group.held)} lines):", "step")
                for line in group.held:
                    _sink(line, "output")
