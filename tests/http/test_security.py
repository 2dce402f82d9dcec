"""Who may talk to the HTTP listener: loopback by default, TLS and a bearer token otherwise."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from ingot.daemon.http import HttpConfigError, HttpServer, check_http_listen, start_http_server
from ingot.daemon.limits import ClientLimits
from ingot.daemon.server import TLSFiles

from http_helpers import MODEL, NUM_CTX, WAIT_S, Served
from self_signed import self_signed_certificate

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("tls"))
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


# ---- DNS rebinding: the Host header -------------------------------------------------------------------


def test_a_page_rebound_to_loopback_is_refused(served: Served, http: httpx.Client) -> None:
    # What a page on attacker.example sends once its name resolves to 127.0.0.1: its own name as Host.
    hostile = {"Host": "attacker.example"}
    copy = http.post("/api/copy", json={"source": MODEL, "destination": "stolen"}, headers=hostile)
    assert copy.status_code == 403
    assert "attacker.example" in copy.json()["error"] and "allowed_hosts" in copy.json()["error"]
    listed = http.get("/v1/models", headers={"Host": "attacker.example:11435"})
    assert listed.status_code == 403
    assert listed.json()["error"]["code"] == "host_not_allowed"
    assert http.post("/api/chat", headers=hostile, json={"model": MODEL, "messages": []}).status_code == 403
    # Nothing was copied.
    assert "stolen:latest" not in [m["model"] for m in http.get("/api/tags").json()["models"]]


@pytest.mark.parametrize("host", ["localhost", "localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}",
                                  "app.localhost:{port}", "LOCALHOST.", "192.168.1.20:{port}"])
def test_loopback_names_and_ip_literals_are_served(served: Served, http: httpx.Client, host: str) -> None:
    reply = http.get("/api/tags", headers={"Host": host.format(port=served.http.port)})
    assert reply.status_code == 200


def test_allowed_hosts_from_the_config_are_served(served: Served) -> None:
    services = served.daemon.http_services()
    limits = ClientLimits(allowed_hosts=("ingot.lan", "*.lab.example"))
    server = start_http_server(services, host="127.0.0.1", port=0, limits=limits)
    try:
        with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
            for name in ("ingot.lan", "gpu1.lab.example:8080", "localhost"):
                assert client.get("/api/tags", headers={"Host": name}).status_code == 200, name
            for name in ("lab.example.evil", "evil.lan", "attacker.example"):
                assert client.get("/api/tags", headers={"Host": name}).status_code == 403, name
    finally:
        server.stop(grace_seconds=0.5)


# ---- request bodies -----------------------------------------------------------------------------------


@pytest.fixture
def capped(served: Served) -> Iterator[HttpServer]:
    services = served.daemon.http_services()
    server = start_http_server(services, host="127.0.0.1", port=0, limits=ClientLimits(max_body_bytes=64 * 1024))
    try:
        yield server
    finally:
        server.stop(grace_seconds=0.5)


def _chat_body(content: str) -> dict[str, object]:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 2}


def test_a_body_over_the_cap_is_413_before_it_is_parsed(capped: HttpServer) -> None:
    with httpx.Client(base_url=capped.url, timeout=WAIT_S) as client:
        big = client.post("/v1/chat/completions", json=_chat_body("x" * 100_000))
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "request_too_large"
        assert "at most 65536 bytes" in big.json()["error"]["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"model": "counter", "messages": [{"role": "user", "content": "'
            for _ in range(20):
                yield b"y" * 8192
            yield b'"}]}'

        chunked = client.post("/api/chat", content=chunks(), headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413
        assert "max_body_bytes" in chunked.json()["error"]
        assert client.post("/v1/chat/completions", json=_chat_body("hi")).status_code == 200


def test_the_default_cap_is_16_mib() -> None:
    assert ClientLimits().max_body_bytes == 16 * 1024 * 1024


def test_a_prompt_too_long_by_its_bytes_is_refused_before_tokenizing(http: httpx.Client) -> None:
    # 1 MiB of text; no token of the model is long enough for that to fit 16384 tokens.
    text = "word " * (1 << 18)
    for path, body in (("/v1/chat/completions", _chat_body(text)),
                       ("/api/generate", {"model": MODEL, "prompt": text, "stream": False})):
        reply = http.post(path, json=body)
        assert reply.status_code == 400, reply.text
        message = reply.json()["error"]["message"] if path.startswith("/v1") else reply.json()["error"]
        assert "refused before tokenizing" in message
        assert f"context window is {NUM_CTX} tokens" in message


def test_malformed_json_names_line_and_column_not_an_offset(http: httpx.Client) -> None:
    body = b'{\n  "model": "counter",\n  "messages": [}\n}'
    reply = http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] is None  # as OpenAI answers; the place is in the message
    assert error["type"] == "invalid_request_error"
    assert "not valid JSON at line 3, column 16" in error["message"]
    ollama = http.post("/api/chat", content=body, headers={"Content-Type": "application/json"})
    assert ollama.status_code == 400
    assert "line 3, column 16" in ollama.json()["error"]


def test_a_form_body_says_to_send_json(http: httpx.Client) -> None:
    # What `curl -d '{...}'` sends without -H 'Content-Type: application/json'.
    body = '{"model": "counter", "messages": [{"role": "user", "content": "hi"}]}'
    reply = http.post("/v1/chat/completions", content=body,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 400
    assert "-H 'Content-Type: application/json'" in reply.json()["error"]["message"]
