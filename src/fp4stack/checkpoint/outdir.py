"""Output directories written atomically: checked paths, a temp dir beside DST, a rename.

Shared by the checkpoint tools that write a new checkpoint (``cast``, ``fix``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from fp4stack.core.errors import UsageError


def check_paths(src: Path, dst: Path, force: bool) -> None:
    """Refuse DST inside SRC (or SRC inside DST), and an existing DST without --force."""
    src_r, dst_r = src.resolve(), dst.resolve()
    if dst_r == src_r or src_r in dst_r.parents:
        raise UsageError(f"{dst}: DST is inside SRC {src}", hint="write the output elsewhere")
    if dst_r in src_r.parents:
        raise UsageError(f"{dst}: DST contains SRC {src}", hint="write the output elsewhere")
    if (dst.exists() or dst.is_symlink()) and not force:
        raise UsageError(f"{dst}: already exists", hint="pass --force to replace it")


def make_temp(dst: Path) -> Path:
    """An empty directory beside DST (same file system, so the final rename is atomic)."""
    parent = dst.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{dst}: parent directory {parent} does not exist")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".fp4stack-tmp", dir=parent))
    except OSError as error:
        raise UsageError(f"{dst}: cannot write in {parent}: {error.strerror}") from error
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; DST should look like any new dir
    return tmp


def finalize(tmp: Path, dst: Path) -> None:
    """Rename the finished temp dir to DST; an old DST (--force) is moved aside first."""
    old = None
    if dst.exists() or dst.is_symlink():
        old = dst.with_name(f".{dst.name}.{os.getpid()}.fp4stack-old")
        os.rename(dst, old)
    os.rename(tmp, dst)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
