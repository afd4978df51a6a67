"""Pinned artifacts come from the sources pip is configured with, and no secret is ever shown.

Every test serves the toy's artifacts from a package index on loopback that it starts itself
(Basic auth, file URLs relative to the project page, as PEP 503 and 691 allow) and sets pip's
configuration through ``PIP_*`` variables alone: ``PIP_CONFIG_FILE=/dev/null`` hides the
machine's own pip.conf files, so the same tests hold here and in CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from fp4stack.core.download import fetch
from fp4stack.core.errors import SourceError
from fp4stack.core.pipconfig import parse_config_list
from fp4stack.core.redact import redact

from ..toy_upstream import toy_line
from .loopback_index import TOKEN, USER, Index


@pytest.fixture
def served(toy):
    """The toy's pinned files moved from its cache onto a loopback index."""
    files = {p.name: p.read_bytes() for p in toy.cache.iterdir() if p.is_file()}
    for name in files:
        (toy.cache / name).unlink()
    index = Index(files)
    yield index
    index.close()


def _sdist(toy):
    return toy_line(toy).source_artifact


def _fetch(toy):
    return fetch("toy", _sdist(toy), toy.cache)


def _failure(toy) -> str:
    with pytest.raises(SourceError) as caught:
        _fetch(toy)
    text = f"{caught.value}\nhint: {caught.value.hint}"
    assert TOKEN not in text and "\n" not in str(caught.value)
    assert not list(toy.cache.glob("toy-1.0.tar.gz*")), "nothing may be left in the cache"
    return text


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("page", ["json", "html"])
def test_token_in_the_index_url_and_relative_file_urls(pip_env, toy, served, page):
    served.page = page
    pip_env.setenv("PIP_INDEX_URL", served.url())
    path = _fetch(toy)
    assert path.read_bytes() == served.files["toy-1.0.tar.gz"]
    assert [p for p, _ in served.requests if p.startswith("/files/")] == ["/files/toy-1.0.tar.gz"]
    assert all(auth == f"Basic {served.auth}" for _, auth in served.requests[-2:])


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_one_error_without_the_token(pip_env, toy, served, status):
    if status == 401:
        pip_env.setenv("PIP_INDEX_URL", served.url(f"{USER}:wrong-{TOKEN}@"))
    else:
        served.page = "status:403"
        pip_env.setenv("PIP_INDEX_URL", served.url())
    text = _failure(toy)
    assert f"HTTP {status}" in text and f"{USER}:****@127.0.0.1" in text
    assert "check the user and token" in text


def test_unreachable_index_is_one_error_without_the_token(pip_env, toy, served):
    pip_env.setenv("PIP_INDEX_URL", f"http://{USER}:{TOKEN}@127.0.0.1:{_closed_port()}/simple")
    text = _failure(toy)
    assert "cannot connect" in text and "reachable" in text


def test_project_missing_file_unlisted_and_bad_json_are_each_named(pip_env, toy, served):
    pip_env.setenv("PIP_INDEX_URL", served.url())
    served.projects = set()
    assert "simple/toy/: HTTP 404" in _failure(toy)
    served.projects = {"toy"}
    del served.files["toy-1.0.tar.gz"]
    assert "does not list toy-1.0.tar.gz" in _failure(toy)
    served.files = dict(served.served)
    served.page = "badjson"
    assert "not a valid index page" in _failure(toy)


def test_truncated_or_tampered_download_is_refused_and_not_kept(pip_env, toy, served):
    pip_env.setenv("PIP_INDEX_URL", served.url())
    served.truncate = True
    assert "toy-1.0.tar.gz" in _failure(toy)
    served.truncate = False
    served.served["toy-1.0.tar.gz"] = b"not the pinned file"
    served.advertised.clear()
    assert "not the pinned" in _failure(toy)


def test_a_listing_with_another_sha256_is_not_downloaded(pip_env, toy, served):
    pip_env.setenv("PIP_INDEX_URL", served.url())
    served.advertised["toy-1.0.tar.gz"] = "0" * 64
    assert "with sha256" in _failure(toy)
    assert not [p for p, _ in served.requests if p.startswith("/files/")]


def test_extra_index_url_supplies_what_the_main_index_lacks(pip_env, toy, served):
    empty = Index({})
    try:
        empty.projects = set()
        pip_env.setenv("PIP_INDEX_URL", empty.url())
        pip_env.setenv("PIP_EXTRA_INDEX_URL", f"file:///nonexistent/simple {served.url()}")
        assert _fetch(toy).is_file()
    finally:
        empty.close()


def test_find_links_directory_without_any_index(pip_env, toy, served, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "toy-1.0.tar.gz").write_bytes(served.files["toy-1.0.tar.gz"])
    pip_env.setenv("PIP_FIND_LINKS", f"{tmp_path / 'missing'} {wheels}")
    pip_env.setenv("PIP_NO_INDEX", "1")
    assert _fetch(toy).read_bytes() == served.files["toy-1.0.tar.gz"]
    assert not served.requests


def test_netrc_credentials(pip_env, toy, served, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {TOKEN}\n")
    netrc.chmod(0o600)
    pip_env.setenv("NETRC", str(netrc))
    pip_env.setenv("PIP_INDEX_URL", served.url(""))
    assert _fetch(toy).is_file()


def test_keyring_credentials(pip_env, toy, served, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    keyring = bin_dir / "keyring"
    keyring.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"print('{USER}\\n{TOKEN}' if '--mode=creds' in sys.argv else '{TOKEN}')\n"
    )
    keyring.chmod(0o755)
    pip_env.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    pip_env.setenv("PIP_INDEX_URL", served.url(f"{USER}@"))
    assert _fetch(toy).is_file()
    pip_env.setenv("PIP_KEYRING_PROVIDER", "disabled")
    (toy.cache / "toy-1.0.tar.gz").unlink()
    assert "HTTP 401" in _failure(toy)


def test_proxy_and_trusted_host(pip_env, toy, served):
    pip_env.setenv("PIP_PROXY", f"http://127.0.0.1:{served.port}")
    pip_env.setenv("PIP_INDEX_URL", f"http://{USER}:{TOKEN}@index.invalid/simple")
    assert "trusted-host" in _failure(toy)
    pip_env.setenv("PIP_TRUSTED_HOST", "index.invalid")
    assert _fetch(toy).is_file()
    assert served.requests[-1][0] == "http://index.invalid/files/toy-1.0.tar.gz"


def _openssl(tmp_path: Path, name: str, subject: str) -> Path:
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    usage = f"subjectAltName=IP:{subject}" if subject[0].isdigit() else "keyUsage=digitalSignature"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={subject}",
         "-addext", usage],
        check=True, capture_output=True,
    )  # fmt: skip
    pem = tmp_path / f"{name}.pem"
    pem.write_text(key.read_text() + crt.read_text())
    return pem


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_cert_and_client_cert(pip_env, toy, tmp_path):
    server, client = _openssl(tmp_path, "server", "127.0.0.1"), _openssl(tmp_path, "client", "me")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(server)
    tls.verify_mode = ssl.CERT_REQUIRED
    tls.load_verify_locations(client)
    files = {p.name: p.read_bytes() for p in toy.cache.iterdir() if p.is_file()}
    (toy.cache / "toy-1.0.tar.gz").unlink()
    index = Index(files, tls=tls)
    try:
        pip_env.setenv("PIP_INDEX_URL", index.url(scheme="https"))
        pip_env.setenv("PIP_CERT", str(server))
        assert "toy-1.0.tar.gz not found" in _failure(toy)  # no client certificate
        pip_env.setenv("PIP_CLIENT_CERT", str(client))
        assert _fetch(toy).is_file()
    finally:
        index.close()


def test_pip_config_list_is_read_in_pips_override_order():
    settings = parse_config_list(
        "global.index-url='https://mirror.example/simple'\n"
        "global.extra-index-url='file:///a/simple  https://b.example/simple'\n"
        "install.find-links='/ignored/by/pip/download'\n"
        "download.find-links='/opt/wheels'\n"
        "global.timeout='5'\n"
        ":env:.default-timeout='180'\n"
        ":env:.no-index='yes'\n"
        "WARNING: some line pip printed\n"
    )
    assert settings.index_url == "https://mirror.example/simple"
    assert settings.extra_index_urls == ("file:///a/simple", "https://b.example/simple")
    assert settings.find_links == ("/opt/wheels",)
    assert settings.timeout == 180.0 and settings.no_index and settings.index_urls == ()
    with pytest.raises(SourceError, match="retries"):
        parse_config_list(":env:.retries='many'\n")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:tok@host/simple", "https://user:****@host/simple"),
        ("cannot list http://tok@h:1/x/ now", "cannot list http://****@h:1/x/ now"),
        ("'http://u:p@ss@h/'", "'http://u:****@h/'"),
        ("https://host/path?q=a@b and mail@x", "https://host/path?q=a@b and mail@x"),
    ],
)
def test_redact(text, shown):
    assert redact(text) == shown


def _cli(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fp4stack", "apply", "toy"],
        env={**os.environ, **env, "FP4STACK_ROOT": str(root)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_cli_run_downloads_then_fails_with_one_line_and_no_token(pip_env, toy, served):
    good = _cli(toy.root, {"PIP_INDEX_URL": served.url()})
    assert good.returncode == 0, good.stderr
    assert TOKEN not in good.stdout + good.stderr
    shutil.rmtree(toy.root / "build")  # a fresh clone: no cache, no applied tree
    port = _closed_port()
    bad = _cli(toy.root, {"PIP_INDEX_URL": f"http://{USER}:{TOKEN}@127.0.0.1:{port}/simple"})
    output = bad.stdout + bad.stderr
    assert bad.returncode == 1
    assert TOKEN not in output and "Traceback" not in output
    assert [line for line in output.splitlines() if line.startswith("ERROR:")] == [
        f"ERROR: toy-1.0.tar.gz not found: http://{USER}:****@127.0.0.1:{port}/simple/toy/: "
        "cannot connect ([Errno 111] Connection refused)"
    ]
