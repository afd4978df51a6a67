"""A checkpoint's JSON files (config.json, the shard index, hf_quant_config.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fp4stack.checkpoint.inputs import MAX_INDEX_BYTES, MAX_JSON_BYTES, parse_json, read_bounded
from fp4stack.core.errors import UsageError


def read_json(path: Path, missing_hint: str) -> dict[str, Any]:
    """The JSON object in ``path``, a file that must exist.

    :raises UsageError: the file is missing (with ``missing_hint``), unreadable or not JSON,
        or it holds something other than an object.
    """
    data = read_json_if_present(path)
    if data is None:
        raise UsageError(f"{path}: missing", hint=missing_hint)
    return data


def read_json_if_present(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when there is no such file. Bounded: a special
    file, one above its size cap, or JSON nested too deep is refused (``checkpoint.inputs``)."""
    limit = MAX_INDEX_BYTES if path.name.endswith(".index.json") else MAX_JSON_BYTES
    try:
        raw = read_bounded(path, limit)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageError(f"{path}: unreadable: {error.strerror}") from error
    data = parse_json(raw, str(path))
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not a JSON object")
    return data
