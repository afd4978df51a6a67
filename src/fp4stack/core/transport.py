"""How fp4stack talks HTTP to the sources pip is configured with: the transport alone.

One client per job, set up from pip's settings (``pipconfig``) as pip sets up its session:
credentials from the URL, netrc or keyring (never by prompting), pip's cert and client cert,
its proxy, unverified but proxied transports for its trusted hosts, and its retries of
connection failures and transient 5xx answers. The client is unearth's (PDM's package
finder), on httpx2. What the client is asked for (which page, which file) is ``finder``'s
business; this module also streams a file to disk, and turns what went wrong on the wire
into a :class:`Miss` whose kind picks the hint shown to the user.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
from unearth import auth as unearth_auth
from unearth.fetchers import PyPIClient

from fp4stack.core.errors import SourceError
from fp4stack.core.pipconfig import PipSettings
from fp4stack.core.redact import redact

_RETRY_STATUS = {500, 502, 503, 520, 527}  # pip's: transient proxy / CDN / S3 answers
_RETRY_HINT = "run it again; if it keeps failing, check the network or proxy to the index"
_CHUNK = 1 << 20

# Miss kind -> hint, for what can go wrong on the wire; ``finder`` adds the kinds of a lookup.
HINTS = {
    "unreachable": "is the index up and reachable from here? (pip's index-url, "
    "extra-index-url and proxy settings are used: `python -m pip config list`)",
    "auth": "the index refused the credentials: check the user and token in the index URL, "
    "~/.netrc or your keyring",
    "missing": "check the index URL (`python -m pip config list`) and that it serves the project",
    "bad": "the index answered with something that is not a package index page; "
    "check the index URL",
    "server": "the index failed with a server error (pip's retries were used up); try later",
    "tls": "pip's cert / client-cert settings (or the system CA store) do not fit this server",
}


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


class Miss(Exception):
    """One source had no usable answer; ``kind`` picks the hint. Its text is redacted."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(redact(reason))
        self.kind = kind


def session(settings: PipSettings) -> contextlib.AbstractContextManager[Client]:
    """An open client configured as pip is; unearth's log warnings are kept off the screen."""
    return _quiet(Client(settings))


def download(client: Client, url: str, destination: Path) -> None:
    """Stream ``url`` into ``destination`` as served (no content decoding), all of it.

    :raises SourceError: on an HTTP error, a broken connection or a short body.
    """
    written = 0
    expected: int | None = None
    try:
        with client.get_stream(url, headers={"Accept-Encoding": "identity"}) as response:
            check_status(response)
            length = response.headers.get("Content-Length", "").strip()
            expected = int(length) if length.isdigit() else None
            with destination.open("wb") as handle:
                for chunk in response.iter_raw(_CHUNK):
                    handle.write(chunk)
                    written += len(chunk)
    except Miss as miss:
        raise SourceError(f"download of {url} failed: {miss}", hint=HINTS[miss.kind]) from None
    except httpx2.HTTPError as error:
        raise SourceError(
            f"download of {url} broke off: {wire_miss(error, client)}", hint=_RETRY_HINT
        ) from None
    if expected is not None and written != expected:
        raise SourceError(
            f"download of {url} was cut short: {written} of {expected} bytes", hint=_RETRY_HINT
        )


def check_status(response: httpx2.Response) -> None:
    """Nothing for a success or redirect; a :class:`Miss` for an HTTP error status."""
    status = response.status_code
    if status < 400:
        return
    kind = {401: "auth", 403: "auth", 404: "missing", 410: "missing"}.get(status, "bad")
    kind = "server" if status >= 500 else kind
    raise Miss(f"HTTP {status} {response.reason_phrase}".rstrip(), kind)


def wire_miss(error: httpx2.HTTPError, client: Client) -> Miss:
    """The :class:`Miss` for a request that got no HTTP answer (timeout, TLS, connection)."""
    text = str(error) or type(error).__name__
    if isinstance(error, httpx2.TimeoutException):
        return Miss(f"timed out after {client.timeout.read}s ({text})", "unreachable")
    if "SSL" in text or "CERTIFICATE" in text:
        return Miss(f"TLS failed ({text})", "tls")
    if isinstance(error, httpx2.ConnectError | httpx2.ProxyError):
        return Miss(f"cannot connect ({text})", "unreachable")
    return Miss(f"{type(error).__name__}: {text}", "unreachable")


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
