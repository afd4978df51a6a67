"""Find one pinned file in the sources pip is configured with, and download it.

The sources are those of ``pip download`` (``pipconfig``), in pip's order: find-links, then
index-url, then extra-index-url. ``unearth`` (PDM's package finder) does the work: its client
speaks PEP 691 JSON and PEP 503 HTML, resolves relative file URLs, reads local directories
and ``file://`` indexes, and takes credentials from the URL, netrc or keyring (never by
prompting); httpx2 under it brings pip's cert, client-cert and proxy settings. A listing that
advertises another sha256 than the pin is skipped. Every failure is a ``SourceError`` naming
each source tried and why it had no file, with any credentials masked.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import ssl
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from packaging.utils import canonicalize_name
from unearth import auth as unearth_auth
from unearth.collector import (
    IndexPage,
    collect_links_from_location,
    is_secure_origin,
    parse_html_page,
    parse_json_response,
)
from unearth.fetchers import PyPIClient
from unearth.link import Link

from fp4stack.core.download import PinnedFile
from fp4stack.core.errors import SourceError
from fp4stack.core.pipconfig import PipSettings
from fp4stack.core.redact import redact

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
_RETRY_STATUS = {500, 502, 503, 520, 527}  # pip's: transient proxy / CDN / S3 answers
_HINTS = {
    "unreachable": "is the index up and reachable from here? (pip's index-url, "
    "extra-index-url and proxy settings are used: `python -m pip config list`)",
    "auth": "the index refused the credentials: check the user and token in the index URL, "
    "~/.netrc or your keyring",
    "missing": "check the index URL (`python -m pip config list`) and that it serves the project",
    "bad": "the index answered with something that is not a package index page; "
    "check the index URL",
    "insecure": "pip ignores plain-http indexes too: use https, or add the host to pip's "
    "trusted-host setting",
    "server": "the index failed with a server error (pip's retries were used up); try later",
    "tls": "pip's cert / client-cert settings (or the system CA store) do not fit this server",
    "absent": "check the filename in upstream/pins.toml, or that your mirror carries the file",
    "hash": "the index lists the file with another sha256 than upstream/pins.toml: "
    "it is not the pinned file",
}
_QUIET_KINDS = {"missing", "absent"}  # what most sources say when another one holds the file
_RETRY_HINT = "run it again; if it keeps failing, check the network or proxy to the index"


_CHUNK = 1 << 20


def session(settings: PipSettings) -> contextlib.AbstractContextManager[Client]:
    """An open client configured as pip is; unearth's log warnings are kept off the screen."""
    return _quiet(Client(settings))


def locate(client: Client, distribution: str, artifact: PinnedFile) -> str:
    """The URL of ``artifact`` in the first of pip's sources that lists it.

    :raises SourceError: naming every source tried and why it had no usable file.
    """
    sources = _sources(client.settings, distribution)
    if not sources:
        raise SourceError(
            f"{artifact.filename}: pip is configured with no index and no find-links",
            hint="pip's no-index is set: add find-links, or unset no-index",
        )
    misses: list[tuple[str, _Miss]] = []
    for kind, where in sources:
        try:
            links = _index_links(client, where) if kind == "index" else _find_links(client, where)
            return _pick(links, artifact).url_without_fragment
        except _Miss as miss:
            misses.append((where, miss))
    tried = "; ".join(f"{redact(where)}: {miss}" for where, miss in misses)
    kinds = [miss.kind for _, miss in misses]
    if any(kind not in _QUIET_KINDS for kind in kinds):  # a failing source says more
        kinds = [kind for kind in kinds if kind not in _QUIET_KINDS]
    hints = dict.fromkeys(_HINTS[kind] for kind in kinds)
    raise SourceError(f"{artifact.filename} not found: {tried}", hint="; ".join(hints))


@dataclass(frozen=True)
class Listed:
    """One file a source lists for a project: its name, URL and advertised sha256 (if any)."""

    filename: str
    url: str
    sha256: str | None


def list_files(client: Client, distribution: str) -> list[Listed]:
    """Every file that pip's sources list for ``distribution``, first source first.

    A source that fails or has no page for the project is skipped; if none answered with a
    listing, it is a SourceError naming each source and why.
    """
    sources = _sources(client.settings, distribution)
    found: dict[str, Listed] = {}
    misses: list[tuple[str, _Miss]] = []
    for kind, where in sources:
        try:
            links = _index_links(client, where) if kind == "index" else _find_links(client, where)
        except _Miss as miss:
            misses.append((where, miss))
            continue
        for link in links:
            sha = (link.hash_option or {}).get("sha256")
            found.setdefault(
                link.filename,
                Listed(link.filename, link.url_without_fragment, sha[0] if sha else None),
            )
    if not found and misses:
        tried = "; ".join(f"{redact(where)}: {miss}" for where, miss in misses)
        raise SourceError(f"no source lists {distribution}: {tried}", hint=_HINTS["missing"])
    return list(found.values())


def download(client: Client, url: str, destination: Path) -> None:
    """Stream ``url`` into ``destination`` as served (no content decoding), all of it.

    :raises SourceError: on an HTTP error, a broken connection or a short body.
    """
    written = 0
    expected: int | None = None
    try:
        with client.get_stream(url, headers={"Accept-Encoding": "identity"}) as response:
            _check_status(response)
            length = response.headers.get("Content-Length", "").strip()
            expected = int(length) if length.isdigit() else None
            with destination.open("wb") as handle:
                for chunk in response.iter_raw(_CHUNK):
                    handle.write(chunk)
                    written += len(chunk)
    except _Miss as miss:
        raise SourceError(f"download of {url} failed: {miss}", hint=_HINTS[miss.kind]) from None
    except httpx2.HTTPError as error:
        raise SourceError(
            f"download of {url} broke off: {_transport_miss(error, client)}",
            hint=_RETRY_HINT,
        ) from None
    if expected is not None and written != expected:
        raise SourceError(
            f"download of {url} was cut short: {written} of {expected} bytes", hint=_RETRY_HINT
        )


class Client(PyPIClient):
    """unearth's client set up from pip's settings, plus pip's retries."""

    def __init__(self, settings: PipSettings) -> None:
        verify = _ssl_context(settings)
        super().__init__(
            trusted_hosts=settings.trusted_hosts,
            verify=verify,
            proxy=settings.proxy,
            timeout=settings.timeout,
            follow_redirects=True,
            mounts=_trusted_mounts(settings),
        )
        self.settings = settings
        self.retries = settings.retries
        unearth_auth.KEYRING_DISABLED = settings.keyring_provider == "disabled"
        self.auth = unearth_auth.MultiDomainBasicAuth(
            prompting=False, index_urls=settings.index_urls
        )

    def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        """Retry connection failures and transient 5xx answers, backing off as pip does."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = super().send(request, **kwargs)
            except (httpx2.ConnectError, httpx2.ConnectTimeout):
                if last:
                    raise
            else:
                if last or response.status_code not in _RETRY_STATUS:
                    return response
                response.close()
            time.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")  # the last attempt returned or raised


class _Miss(Exception):
    """One source had no usable file; ``kind`` picks the hint."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(redact(reason))
        self.kind = kind


@contextlib.contextmanager
def _quiet(client: Client) -> Iterator[Client]:
    """unearth warns through logging; with no handler, Python would print them raw."""
    logger = logging.getLogger("unearth")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        with client:
            yield client
    finally:
        logger.removeHandler(handler)


def _ssl_context(settings: PipSettings, *, insecure: bool = False) -> ssl.SSLContext | bool:
    if not insecure and not settings.cert and not settings.client_cert:
        return True
    try:
        if insecure:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif settings.cert:
            cert = Path(settings.cert)
            context = ssl.create_default_context(
                cafile=None if cert.is_dir() else cert, capath=cert if cert.is_dir() else None
            )
        else:
            context = httpx2.create_ssl_context()
        if settings.client_cert:
            context.load_cert_chain(settings.client_cert)
    except (OSError, ssl.SSLError) as error:
        raise SourceError(
            f"cannot load pip's cert {settings.cert} / client-cert {settings.client_cert}: {error}",
            hint="fix them where `python -m pip config debug` says they are set",
        ) from None
    return context


def _trusted_mounts(settings: PipSettings) -> dict[str, httpx2.BaseTransport]:
    """Unverified transports for pip's trusted hosts that still use its proxy and client cert.

    (unearth's own skip both.)
    """
    if not settings.trusted_hosts:
        return {}
    context = _ssl_context(settings, insecure=True)
    environment = urllib.request.getproxies()
    mounts: dict[str, httpx2.BaseTransport] = {}
    for host in settings.trusted_hosts:
        for scheme in ("http", "https"):
            proxy = settings.proxy or environment.get(scheme) or environment.get("all")
            if proxy and not settings.proxy and urllib.request.proxy_bypass(host.split(":")[0]):
                proxy = None
            mounts[f"{scheme}://{host}"] = httpx2.HTTPTransport(verify=context, proxy=proxy)
    return mounts


def _sources(settings: PipSettings, distribution: str) -> list[tuple[str, str]]:
    """(kind, location) in pip's order: find-links first, then the indexes."""
    project = canonicalize_name(distribution)
    pages = [posixpath.join(url, project) + "/" for url in settings.index_urls]
    return [("find-links", where) for where in settings.find_links] + [
        ("index", page) for page in pages
    ]


def _pick(links: list[Link], artifact: PinnedFile) -> Link:
    named = [link for link in links if link.filename == artifact.filename]
    if not named:
        raise _Miss(f"does not list {artifact.filename}", "absent")
    for link in named:
        advertised = (link.hash_option or {}).get("sha256")
        if not advertised or artifact.sha256 in advertised:
            return link
    listed = (named[0].hash_option or {}).get("sha256")
    raise _Miss(f"lists {artifact.filename} with sha256 {listed}, not the pinned one", "hash")


def _index_links(client: Client, page: str) -> list[Link]:
    link = Link(page)
    if link.is_file:
        path = link.file_path
        path = path / "index.html" if path.is_dir() else path
        if not path.is_file():
            raise _Miss("no such page", "missing")
        link = Link(path.as_uri())
    # unearth's PyPIClient (our base) is its Fetcher at run time, but its httpx-derived
    # signatures do not match the Protocol to the letter: hence the ignores below.
    elif not is_secure_origin(client, link):  # type: ignore[arg-type]
        raise _Miss("not https and not a trusted-host, so pip ignores it too", "insecure")
    try:
        response = client.get(link.url, headers={"Accept": _ACCEPT})
    except httpx2.HTTPError as error:
        raise _transport_miss(error, client) from None
    _check_status(response)
    content_type = response.headers.get("Content-Type", "")
    index = IndexPage(Link(str(response.url)), response.content, response.encoding, content_type)
    try:
        if content_type.lower().startswith("application/vnd.pypi.simple.v1+json"):
            return list(parse_json_response(index))
        if content_type.lower().startswith(("text/html", "application/vnd.pypi.simple.v1+html")):
            return list(parse_html_page(index))
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise _Miss(f"not a valid index page ({type(error).__name__}: {error})", "bad") from None
    raise _Miss(f"answered {content_type or 'no Content-Type'}, not an index page", "bad")


def _find_links(client: Client, where: str) -> list[Link]:
    if "://" in where and not where.startswith("file:"):
        return _index_links(client, where)
    path = Link(where).file_path if where.startswith("file:") else Path(where)
    if not path.exists():
        raise _Miss("no such file or directory (pip ignores it too)", "missing")
    location = Link.from_path(path.resolve())
    return list(collect_links_from_location(client, location, expand=True))  # type: ignore[arg-type]


def _check_status(response: httpx2.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    kind = {401: "auth", 403: "auth", 404: "missing", 410: "missing"}.get(status, "bad")
    kind = "server" if status >= 500 else kind
    raise _Miss(f"HTTP {status} {response.reason_phrase}".rstrip(), kind)


def _transport_miss(error: httpx2.HTTPError, client: Client) -> _Miss:
    text = str(error) or type(error).__name__
    if isinstance(error, httpx2.TimeoutException):
        return _Miss(f"timed out after {client.timeout.read}s ({text})", "unreachable")
    if "SSL" in text or "CERTIFICATE" in text:
        return _Miss(f"TLS failed ({text})", "tls")
    if isinstance(error, httpx2.ConnectError | httpx2.ProxyError):
        return _Miss(f"cannot connect ({text})", "unreachable")
    return _Miss(f"{type(error).__name__}: {text}", "unreachable")
