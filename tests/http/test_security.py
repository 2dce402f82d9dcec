"""Who may talk to the HTTP listener: loopback by default, TLS and a bearer token otherwise."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from ingot.daemon.http import HttpConfigError, HttpServer, check_http_listen, start_http_server
from ingot.daemon.server import TLSFiles

from http_helpers import MODEL, WAIT_S, Served

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A self-signed certificate for 127.0.0.1, made by the openssl command-line tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return TLSFiles(cert=cert, key=key)


@pytest.fixture
def guarded(served: Served, tls_files: TLSFiles) -> Iterator[HttpServer]:
    services = served.daemon.http_services()
    server = start_http_server(services, host="127.0.0.1", port=0, tls=tls_files, token=TOKEN)
    try:
        yield server
    finally:
        server.stop(grace_seconds=0.5)


def test_token_and_tls_are_enforced(guarded: HttpServer, tls_files: TLSFiles) -> None:
    assert guarded.url.startswith("https://127.0.0.1:")
    trust = ssl.create_default_context(cafile=str(tls_files.cert))
    with httpx.Client(base_url=guarded.url, verify=trust, timeout=WAIT_S) as http:
        assert http.get("/health").status_code == 200  # open to probes without a secret
        missing = http.get("/api/tags")
        wrong = http.get("/v1/models", headers={"Authorization": "Bearer nope"})
        metrics = http.get("/metrics")
    assert missing.status_code == wrong.status_code == metrics.status_code == 401
    assert "INGOT_TOKEN" in missing.json()["error"]
    assert wrong.json()["error"]["type"] == "authentication_error"
    assert missing.headers["www-authenticate"] == "Bearer"
    # The official clients pass the token the way they always do.
    verify = httpx.Client(verify=trust, timeout=WAIT_S)
    with openai.OpenAI(base_url=f"{guarded.url}/v1", api_key=TOKEN, http_client=verify, max_retries=0) as client:
        assert MODEL in [m.id for m in client.models.list()]
    with ollama.Client(host=guarded.url, headers={"Authorization": f"Bearer {TOKEN}"},
                       verify=trust, timeout=WAIT_S) as client:
        assert f"{MODEL}:latest" in [m.model for m in client.list().models]
    with pytest.raises(httpx.ConnectError):
        # Plain HTTP clients and clients that do not trust the certificate get nowhere.
        httpx.get(f"{guarded.url}/health", timeout=WAIT_S)


def test_off_loopback_needs_tls_and_token(tls_files: TLSFiles) -> None:
    with pytest.raises(HttpConfigError, match="requires TLS .* and a token"):
        check_http_listen("0.0.0.0", 11435, tls=None, token=None)
    with pytest.raises(HttpConfigError, match="requires a token"):
        check_http_listen("192.0.2.10", 11435, tls=tls_files, token=None)
    check_http_listen("0.0.0.0", 11435, tls=tls_files, token=TOKEN)
    check_http_listen("127.0.0.1", 11435, tls=None, token=None)
    check_http_listen("::1", 11435, tls=None, token=None)
    with pytest.raises(HttpConfigError, match="does not exist"):
        check_http_listen("127.0.0.1", 1, tls=TLSFiles(Path("/nonexistent.pem"), tls_files.key), token=TOKEN)


def test_port_in_use_is_a_clear_error(served: Served) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(HttpConfigError, match=f"cannot listen on 127.0.0.1:{port}.*in use"):
            start_http_server(served.daemon.http_services(), host="127.0.0.1",
                              port=port)
