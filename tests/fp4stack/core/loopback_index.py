"""A PEP 503/691 package index on loopback, with Basic auth, for download and install tests."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import ssl
import threading

USER, TOKEN = "ci", "tok-s3cret-7f2a"


class Index:
    """One PEP 503/691 index: /simple/<project>/ pages and /files/<name> downloads."""

    def __init__(self, files: dict[str, bytes], tls: ssl.SSLContext | None = None) -> None:
        self.files = dict(files)
        self.served = dict(files)  # what a download returns; a test may tamper with it
        self.projects = {"toy"}
        self.auth: str | None = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        self.page = "json"  # json | html | badjson | status:<code>
        self.truncate = False
        self.advertised: dict[str, str] = {}
        self.yanked: set[str] = set()  # files listed as withdrawn (PEP 592)
        self.requests: list[tuple[str, str | None]] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.index = self  # type: ignore[attr-defined]
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, credentials: str = f"{USER}:{TOKEN}@", scheme: str = "http") -> str:
        return f"{scheme}://{credentials}127.0.0.1:{self.port}/simple"

    def sha256(self, name: str) -> str:
        return self.advertised.get(name, hashlib.sha256(self.files[name]).hexdigest())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers as the Index on the server; a request in absolute form is served as a proxy."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        index: Index = self.server.index  # type: ignore[attr-defined]
        path = self.path.split("://", 1)[-1].partition("/")[2]
        path = path if "://" in self.path else self.path.lstrip("/")
        index.requests.append((self.path, self.headers.get("Authorization")))
        if index.auth and self.headers.get("Authorization") != f"Basic {index.auth}":
            self._answer(401, b"login", "text/plain", {"WWW-Authenticate": 'Basic realm="x"'})
        elif path.startswith("simple/"):
            self._page(index, path.split("/")[1])
        elif path.startswith("files/") and path[6:] in index.served:
            self._file(index.served[path[6:]], index.truncate)
        else:
            self._answer(404, b"no", "text/plain")

    def do_HEAD(self) -> None:
        """uv asks for a wheel's headers first (to range-read its metadata); no ranges here."""
        index: Index = self.server.index  # type: ignore[attr-defined]
        name = self.path.rpartition("/files/")[2]
        status = 200 if "/files/" in self.path and name in index.served else 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(index.served.get(name, b""))))
        self.end_headers()

    def _page(self, index: Index, project: str) -> None:
        if index.page.startswith("status:"):
            return self._answer(int(index.page[7:]), b"no", "text/plain")
        if project not in index.projects:
            return self._answer(404, b"no", "text/plain")
        if index.page == "html":
            links = "".join(
                f'<a href="../../files/{n}#sha256={index.sha256(n)}">{n}</a>' for n in index.files
            )
            return self._answer(200, f"<html><body>{links}</body></html>".encode(), "text/html")
        files = [
            {
                "filename": n,
                "url": f"../../files/{n}",
                "hashes": {"sha256": index.sha256(n)},
                "yanked": n in index.yanked,
            }
            for n in index.files
        ]
        body = json.dumps({"meta": {"api-version": "1.0"}, "name": project, "files": files})
        if index.page == "badjson":
            body = body[: len(body) // 2]
        self._answer(200, body.encode(), "application/vnd.pypi.simple.v1+json")

    def _file(self, data: bytes, truncate: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if truncate else data)
        self.close_connection = True

    def _answer(self, status: int, body: bytes, kind: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
