"""Write a zip archive whose unchanged members are copied as compressed bytes, never inflated.

Python's ``zipfile`` can only re-add a member by decompressing and recompressing it; for a
300 MB wheel of shared objects that is nearly all of the repack time. ``ZipCopier`` copies a
member's local-header payload verbatim (possibly under a new name) and deflates only new data.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from fp4stack.core.errors import BuildError

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_LOCAL_SIG, _CENTRAL_SIG, _END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
_UTF8_FLAG = 0x800
_CHUNK = 1 << 20
_MAX32 = 0xFFFFFFFF


@dataclass(frozen=True)
class _Entry:
    name: bytes
    flags: int
    method: int
    dostime: int
    dosdate: int
    crc: int
    compressed: int
    size: int
    external_attr: int
    offset: int


class ZipCopier:
    """Builds a zip into ``out`` from raw copies of ``source`` members and new data."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._entries: list[_Entry] = []

    def copy(self, source: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
        """Copy ``info``'s compressed bytes from ``source`` unchanged, stored as ``name``."""
        entry = self._start(name, info.compress_type, info.date_time, info.CRC,
                            info.compress_size, info.file_size, info.external_attr)  # fmt: skip
        for chunk in raw_chunks(source, info):
            self._out.write(chunk)
        self._entries.append(entry)

    def add(
        self,
        name: str,
        data: bytes,
        date_time: tuple[int, int, int, int, int, int],
        external_attr: int = 0o100644 << 16,
    ) -> None:
        """Deflate ``data`` as a new member ``name``."""
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        payload = compressor.compress(data) + compressor.flush()
        entry = self._start(name, zipfile.ZIP_DEFLATED, date_time, zlib.crc32(data),
                            len(payload), len(data), external_attr)  # fmt: skip
        self._out.write(payload)
        self._entries.append(entry)

    def close(self) -> None:
        """Write the central directory and the end record."""
        start = self._out.tell()
        for e in self._entries:
            self._out.write(_CENTRAL.pack(
                _CENTRAL_SIG, (3 << 8) | 20, 20, e.flags, e.method, e.dostime, e.dosdate,
                e.crc, e.compressed, e.size, len(e.name), 0, 0, 0, 0, e.external_attr, e.offset,
            ) + e.name)  # fmt: skip
        size = self._out.tell() - start
        count = len(self._entries)
        if count > 0xFFFF or start > _MAX32 or size > _MAX32:
            raise BuildError("archive needs zip64, which the repacker does not write")
        self._out.write(_END.pack(_END_SIG, 0, 0, count, count, size, start, 0))

    def _start(
        self,
        name: str,
        method: int,
        date_time: tuple[int, int, int, int, int, int],
        crc: int,
        compressed: int,
        size: int,
        external_attr: int,
    ) -> _Entry:
        raw = name.encode()
        flags = 0 if raw.isascii() else _UTF8_FLAG
        offset = self._out.tell()
        if max(offset, compressed, size) > _MAX32:
            raise BuildError(f"{name}: member needs zip64, which the repacker does not write")
        year, month, day, hour, minute, second = date_time
        dosdate = (max(year, 1980) - 1980) << 9 | month << 5 | day
        dostime = hour << 11 | minute << 5 | second // 2
        self._out.write(_LOCAL.pack(
            _LOCAL_SIG, 20, flags, method, dostime, dosdate, crc, compressed, size, len(raw), 0,
        ) + raw)  # fmt: skip
        return _Entry(raw, flags, method, dostime, dosdate, crc, compressed, size,
                      external_attr, offset)  # fmt: skip


def raw_chunks(source: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's compressed bytes as stored, in chunks; nothing is inflated."""
    handle = source.fp
    assert handle is not None
    handle.seek(info.header_offset)
    fields = _LOCAL.unpack(handle.read(_LOCAL.size))
    if fields[0] != _LOCAL_SIG:
        raise BuildError(f"{source.filename}: bad local header for {info.filename}")
    handle.seek(fields[9] + fields[10], 1)
    remaining = info.compress_size
    while remaining:
        chunk = handle.read(min(_CHUNK, remaining))
        if not chunk:
            raise BuildError(f"{source.filename}: {info.filename} is truncated")
        remaining -= len(chunk)
        yield chunk
