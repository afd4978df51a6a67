"""One logging hook: progress goes to stderr, results go to stdout (via print)."""

from __future__ import annotations

import sys
from typing import Literal

Kind = Literal["step", "cmd", "info", "warn"]
_PREFIX: dict[str, str] = {"step": "* ", "cmd": "> ", "info": "  ", "warn": "WARNING: "}
verbosity = 0


def log(message: str, kind: Kind = "step") -> None:
    """Write one progress line to stderr; ``cmd`` lines only when verbose."""
    if kind == "cmd" and verbosity < 1:
        return
    print(f"{_PREFIX[kind]}{message}", file=sys.stderr, flush=True)
