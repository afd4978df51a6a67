"""A wheel's dependency declarations carried from the sdist's core metadata.

An sdist line's tree is the sdist, whose ``PKG-INFO`` holds the same core metadata as the
wheel's ``METADATA``, but which a build regenerates, so the wheel we repack does not see a
patch to it. A patch that declares a dependency therefore changes ``setup.py`` (what upstream
edits) and ``PKG-INFO`` (what the sdist ships), and the repack and the prove overlays take
the dependency fields, ``Requires-Dist`` and ``Provides-Extra``, from the patched
``PKG-INFO`` (:func:`with_dependencies`). Every other field stays the wheel's own.
"""

from __future__ import annotations

SDIST_METADATA = "PKG-INFO"
DEPENDENCY_FIELDS = (b"Requires-Dist:", b"Provides-Extra:")


class MetadataError(ValueError):
    """Dependency fields that cannot be carried over; the message says why."""


def _header(metadata: bytes) -> tuple[list[bytes], bytes]:
    """The header lines (with their line ends) and the rest (blank line and description)."""
    head, sep, body = metadata.partition(b"\n\n")
    return head.splitlines(keepends=True), sep + body


def dependencies(metadata: bytes) -> list[bytes]:
    """The dependency field lines of a core metadata file, in order, without line ends."""
    lines, _ = _header(metadata)
    return [ln.rstrip(b"\r\n") for ln in lines if ln.startswith(DEPENDENCY_FIELDS)]


def with_dependencies(metadata: bytes, source: bytes) -> bytes:
    """``metadata`` with its dependency fields replaced by ``source``'s, where its own stand.

    :raises MetadataError: ``metadata``'s dependency fields are not one run of lines (no
        place to put the others), or ``source`` has a field continued on a second line.
    """
    lines, rest = _header(metadata)
    where = [i for i, ln in enumerate(lines) if ln.startswith(DEPENDENCY_FIELDS)]
    if where and where != list(range(where[0], where[-1] + 1)):
        raise MetadataError("its Requires-Dist and Provides-Extra lines are not one run")
    source_lines, _ = _header(source)
    if any(ln.startswith((b" ", b"\t")) for ln in source_lines):
        raise MetadataError("the source's header has continued fields")
    end = b"\r\n" if lines and lines[0].endswith(b"\r\n") else b"\n"
    new = [ln + end for ln in dependencies(source)]
    start = where[0] if where else len(lines)
    stop = where[-1] + 1 if where else len(lines)
    return b"".join(lines[:start] + new + lines[stop:]) + rest
