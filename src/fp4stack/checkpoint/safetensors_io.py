"""A validating safetensors reader (tensors mapped one at a time) and a positional writer.

Format: u64 little-endian header length N, N bytes of JSON (name -> dtype, shape,
data_offsets relative to the data area, plus optional ``__metadata__``), then the data area.
"""

from __future__ import annotations

import errno
import itertools
import json
import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from fp4stack.checkpoint.inputs import open_regular, parse_json
from fp4stack.core.errors import UsageError

DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "C64": 8,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
MAX_HEADER = 100_000_000  # the limit the reference implementation enforces
ALIGN = 8


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a file: dtype name, shape, absolute byte range in the file."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def _corrupt(path: Path, what: str) -> UsageError:
    return UsageError(
        f"{path}: not a valid safetensors file: {what}",
        hint="the file is truncated or corrupt; re-download or re-export it",
    )


def _parse_entry(path: Path, name: str, raw: object, base: int, data_len: int) -> TensorInfo:
    if not isinstance(raw, dict):
        raise _corrupt(path, f"tensor {name!r}: entry is not an object")
    dtype, shape, offsets = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        raise _corrupt(path, f"tensor {name!r}: unsupported dtype {dtype!r}")
    ok_shape = isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)
    ok_offsets = (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    )
    if not ok_shape or not ok_offsets:
        raise _corrupt(path, f"tensor {name!r}: bad shape {shape!r} or data_offsets {offsets!r}")
    dims: tuple[int, ...] = tuple(cast("list[int]", shape))
    begin, end = cast("list[int]", offsets)
    if end - begin != math.prod(dims) * DTYPE_SIZES[dtype]:
        raise _corrupt(path, f"tensor {name!r}: {end - begin} bytes for {dtype} {shape}")
    if end > data_len:
        raise _corrupt(path, f"tensor {name!r}: data ends at {end}, past the file end ({data_len})")
    return TensorInfo(dtype, dims, base + begin, base + end)


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    if hasattr(os, "preadv"):  # Linux, BSDs: straight into the buffer
        return os.preadv(fd, [view], offset)
    chunk = os.pread(fd, min(view.nbytes, 1 << 26), offset)
    view[: len(chunk)] = chunk
    return len(chunk)


class SafetensorsFile:
    """Header of one file, validated on open; tensor bytes read on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tensors: dict[str, TensorInfo] = {}
        self.metadata: dict[str, str] | None = None
        try:
            self.fd = open_regular(path)
        except FileNotFoundError as error:
            raise UsageError(f"{path}: cannot open: {error.strerror}") from error
        try:
            self._parse()
        except BaseException:
            os.close(self.fd)
            raise

    def _parse(self) -> None:
        size = os.fstat(self.fd).st_size
        if size < 8:
            raise _corrupt(self.path, f"{size} bytes, shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", os.pread(self.fd, 8, 0))
        if n > MAX_HEADER or 8 + n > size:
            raise _corrupt(self.path, f"header length {n} exceeds the file size {size}")
        try:
            header = parse_json(os.pread(self.fd, n, 8), "header")
        except UsageError as error:
            raise _corrupt(self.path, str(error)) from None
        if not isinstance(header, dict):
            raise _corrupt(self.path, "header is not a JSON object")
        meta = header.pop("__metadata__", None)
        if meta is not None and not (
            isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
        ):
            raise _corrupt(self.path, "__metadata__ is not a map of strings")
        self.metadata = meta
        for name, raw in header.items():
            self.tensors[name] = _parse_entry(self.path, name, raw, 8 + n, size - 8 - n)
        self._check_overlaps()

    def _check_overlaps(self) -> None:
        spans = sorted((t.start, t.end, name) for name, t in self.tensors.items() if t.nbytes)
        for (_, end, a), (start, _, b) in itertools.pairwise(spans):
            if start < end:
                raise _corrupt(self.path, f"tensors {a!r} and {b!r} overlap")

    def view(self, name: str) -> np.ndarray:
        """The raw bytes of a tensor as a uint8 array over a private copy-on-write mapping of
        the page cache: no copy, and writes (patches) copy only the pages they touch, never
        reaching the file. Unmapped when the last view of it is dropped."""
        info = self.tensors[name]
        if info.nbytes == 0:
            return np.empty(0, dtype=np.uint8)
        start = info.start - info.start % mmap.ALLOCATIONGRANULARITY
        mm = mmap.mmap(self.fd, info.end - start, access=mmap.ACCESS_COPY, offset=start)
        if hasattr(mmap, "MADV_WILLNEED"):
            mm.madvise(mmap.MADV_WILLNEED)  # start readahead of the whole tensor
        return np.frombuffer(mm, dtype=np.uint8, count=info.nbytes, offset=info.start - start)

    def read(self, name: str) -> np.ndarray:
        """The raw bytes of a tensor as a fresh, writable uint8 array."""
        info = self.tensors[name]
        buf = np.empty(info.nbytes, dtype=np.uint8)
        view, pos = buf.data, 0
        while pos < info.nbytes:
            got = _pread_into(self.fd, view[pos:], info.start + pos)
            if got == 0:
                raise _corrupt(self.path, f"tensor {name!r}: file ended while reading")
            pos += got
        return buf

    def close(self) -> None:
        os.close(self.fd)


@dataclass(frozen=True)
class OutTensor:
    """A tensor to be written: name, dtype name, shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_SIZES[self.dtype]


def layout(tensors: list[OutTensor], metadata: dict[str, str] | None) -> tuple[bytes, list[int]]:
    """The length-prefixed header (space-padded so data starts 8-byte aligned) and the absolute
    file offset of each tensor, in order. Data follows the header with no gaps."""
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for t in tensors:
        header[t.name] = {
            "dtype": t.dtype,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        offset += t.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % ALIGN)
    head = struct.pack("<Q", len(text)) + text
    starts, pos = [], len(head)
    for t in tensors:
        starts.append(pos)
        pos += t.nbytes
    return head, starts


def create_output(path: Path, head: bytes, size: int) -> None:
    """Create an output file holding the header, its data space allocated up front (a full
    disk fails here, not midway; and writes into allocated space measured ~10% faster than
    into a hole), filled positionally by several processes with :func:`write_at` and
    :func:`copy_at`."""
    with open(path, "wb") as f:
        f.write(head)
        try:
            if not hasattr(os, "posix_fallocate"):  # macOS
                raise OSError(errno.EOPNOTSUPP, "posix_fallocate")
            os.posix_fallocate(f.fileno(), 0, size)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise OSError(error.errno, error.strerror, str(path)) from error
            f.truncate(size)


def write_at(fd: int, data: np.ndarray | np.generic, offset: int) -> None:
    """Write an array's raw bytes at ``offset``."""
    view = np.ascontiguousarray(data).reshape(-1).view(np.uint8).data
    while view.nbytes:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def copy_at(src_fd: int, src_offset: int, fd: int, offset: int, nbytes: int) -> None:
    """Copy a byte range between files inside the kernel (user space if unsupported)."""
    kernel_copy = getattr(os, "copy_file_range", None)  # Linux only
    while nbytes:
        try:
            done = kernel_copy(src_fd, fd, nbytes, src_offset, offset) if kernel_copy else 0
        except OSError:
            done = 0
        if done == 0:
            chunk = os.pread(src_fd, min(nbytes, 1 << 24), src_offset)
            if not chunk:
                raise UsageError(f"source file (fd {src_fd}) ended while copying a tensor")
            done = os.pwrite(fd, chunk, offset)
        src_offset, offset, nbytes = src_offset + done, offset + done, nbytes - done
