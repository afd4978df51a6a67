"""What the checkpoint tools accept as input files: regular files of bounded size, and JSON
of bounded size and depth.

A checkpoint comes from strangers. A `config.json` that is a symlink to `/dev/zero`, a
tokenizer that is a FIFO, an index nested ten thousand deep or holding a ten-thousand-digit
number must each end in one error that names the file, not in a hang, unbounded memory or a
traceback. A symlink to a regular file is fine.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from fp4stack.core.errors import UsageError

# A real config.json or hf_quant_config.json is kilobytes; a real shard index megabytes
# (one line per tensor: about 10 MB for a 100k-tensor model).
MAX_JSON_BYTES = 16 << 20
MAX_INDEX_BYTES = 256 << 20
# Real checkpoint JSON nests a handful of levels (quantization_config.config_groups.<g>.weights).
MAX_JSON_DEPTH = 64

_KINDS = {
    stat.S_ISDIR: "a directory",
    stat.S_ISFIFO: "a FIFO",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


def special_kind(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO", ...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS.items() if test(mode)), "not a regular file")


def open_regular(path: Path) -> int:
    """A read-only descriptor of ``path``, which must be (or link to) a regular file.

    Opened without blocking, so a FIFO is refused instead of waiting for a writer.

    :raises FileNotFoundError: no such file (callers decide whether that is an error).
    :raises UsageError: it cannot be opened, or it is a device, FIFO, socket or directory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise UsageError(f"{path}: cannot open: {error.strerror}") from error
    kind = special_kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise UsageError(f"{path}: {kind}, not a regular file: refusing to read it")
    return fd


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refused above ``limit``."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise UsageError(f"{path}: {size} bytes, more than the {limit >> 20} MiB allowed")
        data = os.read(fd, limit + 1) if size else b""
        while size and len(data) < size:  # a short read from a slow filesystem
            chunk = os.read(fd, limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UsageError(f"{path}: more than the {limit >> 20} MiB allowed")
    return data


def parse_json(data: bytes, where: str) -> Any:
    """JSON text, parsed with the depth cap; every way it can be refused is one UsageError
    naming ``where`` (a file, or a file's header)."""
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise UsageError(f"{where}: JSON nested too deep") from None
    except (UnicodeDecodeError, ValueError) as error:
        # ValueError: malformed JSON, or an integer past Python's digit limit
        raise UsageError(f"{where}: not valid JSON: {error}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise UsageError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                stack.extend((child, depth + 1) for child in item)
    return deepest


def check_copyable(entry: Path) -> None:
    """Refuse an extra file (or one inside an extra folder) that is not a regular file, a
    folder or a symlink: copying a FIFO or a device would never end."""
    for path in [entry, *(entry.rglob("*") if entry.is_dir() and not entry.is_symlink() else [])]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            try:
                mode = path.stat().st_mode
            except OSError:
                continue  # a dangling link is copied as a link, or skipped by the caller
        if stat.S_ISDIR(mode):
            continue
        kind = special_kind(mode)
        if kind is not None:
            raise UsageError(f"{path}: {kind}: refusing to copy it into the output")
