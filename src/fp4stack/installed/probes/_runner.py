"""Run several probes in one interpreter, so that torch and the upstream are imported once.

``python _runner.py /abs/a.py /abs/b.py ...`` runs each probe as ``python <probe>`` would (as
``__main__``, its stdout captured) and prints one JSON object, probe path -> the JSON object
that probe printed last, or ``{"error": "<Type>: <message>"}`` for a probe that raised or
printed no JSON. Like the probes, it imports nothing of fp4stack.
"""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import sys


def run_all(paths: list[str]) -> dict[str, object]:
    """Each probe's own JSON verdict, or the error that stopped it; one probe after another."""
    results: dict[str, object] = {}
    for path in paths:
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                runpy.run_path(path, run_name="__main__")
        except (Exception, SystemExit) as error:
            results[path] = {"error": f"{type(error).__name__}: {error}"}
            continue
        results[path] = _last_json(captured.getvalue())
    return results


def _last_json(text: str) -> object:
    lines = text.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": f"printed no JSON verdict ({lines[-1][:200] if lines else 'nothing'})"}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run_all(sys.argv[1:])) + "\n")
