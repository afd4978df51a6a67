"""The one way fp4stack runs an external command: argv lists, output kept for errors."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from fp4stack.core.errors import CommandError
from fp4stack.core.log import log

_TAIL_LINES = 40


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stream: bool = False,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; capture its output unless ``stream``.

    :param env: extra variables, layered over the current environment.
    :raises CommandError: on a non-zero exit when ``check``, with the output's tail.
    """
    args = [os.fspath(a) for a in argv]
    log(" ".join(args), kind="cmd")
    full_env = {**os.environ, **env} if env else None
    result = subprocess.run(
        args,
        cwd=cwd,
        env=full_env,
        text=True,
        input=input_text,
        stdout=None if stream else subprocess.PIPE,
        stderr=None if stream else subprocess.STDOUT,
        check=False,
    )
    if check and result.returncode != 0:
        raise CommandError(f"`{' '.join(args)}` exited {result.returncode}{_tail(result.stdout)}")
    return result


def _tail(output: str | None) -> str:
    if not output:
        return ""
    lines = output.rstrip().splitlines()[-_TAIL_LINES:]
    return "\n" + "\n".join(f"  | {line}" for line in lines)
