"""The on-disk form of a patch stack: ``patches/<upstream>/<version>/series`` and its patches."""

from __future__ import annotations

import email.header
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from fp4stack.core.errors import PatchError

SERIES = "series"
_TRAILER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): (.*)$")


@dataclass(frozen=True)
class PatchInfo:
    """What a patch file's header says about it."""

    path: Path
    subject: str
    description: str
    trailers: dict[str, list[str]]
    files: tuple[str, ...]

    def trailer(self, key: str) -> list[str]:
        return self.trailers.get(key.lower(), [])


def read_entries(path: Path) -> list[str]:
    """One entry per line, ``#`` starting a comment; blank lines skipped; [] if no file.

    The format of ``series``, ``ci/select/*.txt`` and ``ci/deselect/*.txt``.
    """
    if not path.exists():
        return []
    entries = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [entry for entry in entries if entry]


def read_series(patch_dir: Path) -> list[str]:
    """Patch file names in apply order."""
    return read_entries(patch_dir / SERIES)


def write_series(patch_dir: Path, names: list[str]) -> None:
    """Rewrite the series file, keeping its leading comment block; a file that already
    lists ``names`` is left as it is (with any comments between its entries)."""
    path = patch_dir / SERIES
    if path.exists() and read_series(patch_dir) == names:
        return
    header = []
    if path.exists():
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            header.append(line)
    path.write_text("".join(f"{line}\n" for line in [*header, *names]))


def series_paths(patch_dir: Path) -> list[Path]:
    """The series' patch files, each required to exist."""
    paths = [patch_dir / name for name in read_series(patch_dir)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise PatchError(f"{patch_dir / SERIES} lists missing file(s): {', '.join(missing)}")
    return paths


def stack_digest(patch_dir: Path) -> str:
    """A digest of the series and every patch's bytes, in order: it names the patched build."""
    digest = hashlib.sha256()
    for path in series_paths(patch_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def slug(subject: str) -> str:
    """File name stem for a patch, derived from its subject as Electron does."""
    stem = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")
    return stem[:60].rstrip("-") or "patch"


def parse_patch(path: Path) -> PatchInfo:
    """Read the subject, description, trailers and touched files of one patch file."""
    text = path.read_text(errors="replace")
    head, _, diff = text.partition("\ndiff --git ")
    headers, _, body = head.partition("\n\n")
    subject = _header(headers, "Subject")
    message = body.split("\n---\n", 1)[0]
    description, trailers = _split_trailers(message)
    files = tuple(sorted(set(re.findall(r"^\+\+\+ b/(\S+)", "diff --git " + diff, re.M))))
    return PatchInfo(path, subject, description, trailers, files)


def _header(headers: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*(?:\n[ \t].*)*)", headers, re.M)
    if not match:
        return ""
    raw = re.sub(r"\n[ \t]", " ", match.group(1))
    return str(email.header.make_header(email.header.decode_header(raw))).strip()


def _split_trailers(message: str) -> tuple[str, dict[str, list[str]]]:
    paragraphs = message.strip().split("\n\n")
    trailers: dict[str, list[str]] = {}
    last = paragraphs[-1].splitlines() if paragraphs else []
    if last and all(_TRAILER.match(line) for line in last):
        for line in last:
            key, value = _TRAILER.match(line).groups()  # type: ignore[union-attr]
            trailers.setdefault(key.lower(), []).append(value.strip())
        paragraphs = paragraphs[:-1]
    return "\n\n".join(paragraphs).strip(), trailers
