"""Find files in the sources pip is configured with: the index lookup alone.

The sources are those of ``pip download`` (``pipconfig``), in pip's order: find-links, then
index-url, then extra-index-url. unearth's collector parses what they answer: PEP 691 JSON and
PEP 503 HTML pages with relative file URLs, local directories and ``file://`` indexes. The
requests go through a ``transport`` client (pip's credentials, certs, proxy, trusted hosts
and retries). A listing that advertises another sha256 than the pin is skipped. Every failure
is a ``SourceError`` naming each source tried and why it had no file, with any credentials
masked.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

import httpx2
from packaging.utils import canonicalize_name
from unearth.collector import (
    IndexPage,
    collect_links_from_location,
    is_secure_origin,
    parse_html_page,
    parse_json_response,
)
from unearth.link import Link

from fp4stack.core.errors import SourceError
from fp4stack.core.pipconfig import PipSettings
from fp4stack.core.redact import redact
from fp4stack.core.transport import HINTS as WIRE_HINTS
from fp4stack.core.transport import Client, Miss, check_status, wire_miss

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
_HINTS = {
    **WIRE_HINTS,
    "insecure": "pip ignores plain-http indexes too: use https, or add the host to pip's "
    "trusted-host setting",
    "absent": "check the filename in upstream/pins.toml, or that your mirror carries the file",
    "hash": "the index lists the file with another sha256 than upstream/pins.toml: "
    "it is not the pinned file",
}
_QUIET_KINDS = {"missing", "absent"}  # what most sources say when another one holds the file


def locate(client: Client, distribution: str, filename: str, sha256: str) -> str:
    """The URL of ``filename`` in the first of pip's sources that lists it, with no other
    sha256 than ``sha256``.

    :raises SourceError: naming every source tried and why it had no usable file.
    """
    sources = _sources(client.settings, distribution)
    if not sources:
        raise SourceError(
            f"{filename}: pip is configured with no index and no find-links",
            hint="pip's no-index is set: add find-links, or unset no-index",
        )
    misses: list[tuple[str, Miss]] = []
    for kind, where in sources:
        try:
            links = _index_links(client, where) if kind == "index" else _find_links(client, where)
            return _pick(links, filename, sha256).url_without_fragment
        except Miss as miss:
            misses.append((where, miss))
    tried = "; ".join(f"{redact(where)}: {miss}" for where, miss in misses)
    kinds = [miss.kind for _, miss in misses]
    if any(kind not in _QUIET_KINDS for kind in kinds):  # a failing source says more
        kinds = [kind for kind in kinds if kind not in _QUIET_KINDS]
    hints = dict.fromkeys(_HINTS[kind] for kind in kinds)
    raise SourceError(f"{filename} not found: {tried}", hint="; ".join(hints))


@dataclass(frozen=True)
class Listed:
    """One file a source lists for a project: its name, URL and advertised sha256 (if any)."""

    filename: str
    url: str
    sha256: str | None
    yanked: bool = False  # withdrawn by its publisher (PEP 592): pip skips it


def list_files(client: Client, distribution: str) -> list[Listed]:
    """Every file that pip's sources list for ``distribution``, first source first.

    A source that fails or has no page for the project is skipped; if none answered with a
    listing, it is a SourceError naming each source and why.
    """
    sources = _sources(client.settings, distribution)
    found: dict[str, Listed] = {}
    misses: list[tuple[str, Miss]] = []
    for kind, where in sources:
        try:
            links = _index_links(client, where) if kind == "index" else _find_links(client, where)
        except Miss as miss:
            misses.append((where, miss))
            continue
        for link in links:
            shas = (link.hash_option or {}).get("sha256")
            sha = shas[0] if shas else None
            found.setdefault(
                link.filename,
                Listed(link.filename, link.url_without_fragment, sha, link.is_yanked),
            )
    if not found and misses:
        tried = "; ".join(f"{redact(where)}: {miss}" for where, miss in misses)
        raise SourceError(f"no source lists {distribution}: {tried}", hint=_HINTS["missing"])
    return list(found.values())


def _sources(settings: PipSettings, distribution: str) -> list[tuple[str, str]]:
    """(kind, location) in pip's order: find-links first, then the indexes."""
    project = canonicalize_name(distribution)
    pages = [posixpath.join(url, project) + "/" for url in settings.index_urls]
    return [("find-links", where) for where in settings.find_links] + [
        ("index", page) for page in pages
    ]


def _pick(links: list[Link], filename: str, sha256: str) -> Link:
    named = [link for link in links if link.filename == filename]
    if not named:
        raise Miss(f"does not list {filename}", "absent")
    for link in named:
        advertised = (link.hash_option or {}).get("sha256")
        if not advertised or sha256 in advertised:
            return link
    listed = (named[0].hash_option or {}).get("sha256")
    raise Miss(f"lists {filename} with sha256 {listed}, not the pinned one", "hash")


def _index_links(client: Client, page: str) -> list[Link]:
    link = Link(page)
    if link.is_file:
        path = link.file_path
        path = path / "index.html" if path.is_dir() else path
        if not path.is_file():
            raise Miss("no such page", "missing")
        link = Link(path.as_uri())
    # unearth's PyPIClient (our base) is its Fetcher at run time, but its httpx-derived
    # signatures do not match the Protocol to the letter: hence the ignores below.
    elif not is_secure_origin(client, link):  # type: ignore[arg-type]
        raise Miss("not https and not a trusted-host, so pip ignores it too", "insecure")
    try:
        response = client.get(link.url, headers={"Accept": _ACCEPT})
    except httpx2.HTTPError as error:
        raise wire_miss(error, client) from None
    check_status(response)
    content_type = response.headers.get("Content-Type", "")
    index = IndexPage(Link(str(response.url)), response.content, response.encoding, content_type)
    try:
        if content_type.lower().startswith("application/vnd.pypi.simple.v1+json"):
            return list(parse_json_response(index))
        if content_type.lower().startswith(("text/html", "application/vnd.pypi.simple.v1+html")):
            return list(parse_html_page(index))
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise Miss(f"not a valid index page ({type(error).__name__}: {error})", "bad") from None
    raise Miss(f"answered {content_type or 'no Content-Type'}, not an index page", "bad")


def _find_links(client: Client, where: str) -> list[Link]:
    if "://" in where and not where.startswith("file:"):
        return _index_links(client, where)
    path = Link(where).file_path if where.startswith("file:") else Path(where)
    if not path.exists():
        raise Miss("no such file or directory (pip ignores it too)", "missing")
    location = Link.from_path(path.resolve())
    return list(collect_links_from_location(client, location, expand=True))  # type: ignore[arg-type]
