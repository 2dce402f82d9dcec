"""TCP listeners: loopback without TLS, TLS plus token elsewhere, and the token interceptor."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from daemon_helpers import DaemonProcess
from self_signed import self_signed_certificate
from grpc_health.v1 import health_pb2

from ingot.cli.client import ClientError, connect
from ingot.proto.ingot.v1 import runtime_pb2

StartDaemon = Callable[..., DaemonProcess]
TOKEN = "s3cret-token"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def _serve_without_a_token(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`ingot serve ARGS` expected to refuse to start: it must return, not serve."""
    return subprocess.run(
        [sys.executable, "-m", "ingot.cli.main", "serve", *args],
        env={**os.environ, "INGOT_HOME": str(home), "INGOT_TOKEN": ""},
        capture_output=True, text=True, timeout=60,
    )


def test_listening_beyond_loopback_needs_tls_and_a_token(fresh_home: Path) -> None:
    result = _serve_without_a_token(fresh_home, "--listen", f"0.0.0.0:{_free_port()}")
    assert result.returncode == 2
    assert "TLS (--tls-cert and --tls-key)" in result.stderr and "token" in result.stderr
    assert "Traceback" not in result.stderr


def test_loopback_tcp_without_tls_and_one_daemon_per_socket(fresh_home: Path, start_daemon: StartDaemon) -> None:
    port = _free_port()
    first = start_daemon(fresh_home, "--listen", f"127.0.0.1:{port}")
    with connect({"INGOT_HOST": f"127.0.0.1:{port}", "INGOT_HOME": str(fresh_home)}) as client:
        client.check()
        assert client.runtime.Version(runtime_pb2.VersionRequest(), timeout=10).version

    second = subprocess.run(
        [sys.executable, "-m", "ingot.cli.main", "serve"],
        env={**os.environ, "INGOT_HOME": str(fresh_home)}, capture_output=True, text=True, timeout=60,
    )
    assert second.returncode == 1
    assert "already listening" in second.stderr and "Traceback" not in second.stderr
    assert first.health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1


def test_tls_and_token_are_enforced_on_tcp_only(
    fresh_home: Path, tls_pair: tuple[Path, Path], start_daemon: StartDaemon
) -> None:
    cert, key = tls_pair
    port = _free_port()
    daemon = start_daemon(
        fresh_home, "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key),
        env={"INGOT_TOKEN": TOKEN},
    )
    base = {"INGOT_HOST": f"127.0.0.1:{port}", "INGOT_HOME": str(fresh_home), "INGOT_TLS_CA": str(cert)}

    with connect({**base, "INGOT_TOKEN": TOKEN}) as client:
        client.check()
        assert client.runtime.Version(runtime_pb2.VersionRequest(), timeout=10).engine_version

    for token in ("", "wrong"):
        with connect({**base, "INGOT_TOKEN": token}) as client:
            # Health stays open for probes; everything else needs the token.
            assert client.health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1
            with pytest.raises(grpc.RpcError) as refused:
                client.runtime.ListRunning(runtime_pb2.ListRunningRequest(), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "INGOT_TOKEN" in refused.value.details()

    # Plain text to a TLS port does not get through.
    with connect({**base, "INGOT_TLS_CA": "", "INGOT_HOST": f"localhost:{port}"}) as client:
        with pytest.raises(ClientError):
            client.check(timeout=3)

    # The unix socket needs no token: its 0600 mode is the access control.
    assert daemon.runtime.ListRunning(runtime_pb2.ListRunningRequest(), timeout=10) is not None


def test_http_beyond_loopback_needs_tls_and_a_token(fresh_home: Path) -> None:
    result = _serve_without_a_token(fresh_home, "--http", f"0.0.0.0:{_free_port()}")
    assert result.returncode == 2
    assert "serving HTTP on 0.0.0.0" in result.stderr and "TLS (--tls-cert and --tls-key)" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_http_answers_the_openai_client_and_stops_with_the_daemon(
    fresh_home: Path, start_daemon: StartDaemon
) -> None:
    import httpx
    import openai

    port = _free_port()
    daemon = start_daemon(fresh_home, "--http", f"127.0.0.1:{port}", "--grace", "2")
    base = f"http://127.0.0.1:{port}"
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=60)

    try:
        models = [model.id for model in client.models.list()]
    except openai.APIConnectionError as exc:
        raise AssertionError(f"the HTTP listener on port {port} is not answering:\n{daemon.log()}") from exc
    assert models == ["counter"]
    reply = client.completions.create(model="counter", prompt="3 4 5", max_tokens=4, temperature=0)
    assert reply.usage is not None and reply.usage.completion_tokens == 4
    assert reply.choices[0].finish_reason == "length"
    # The same runner serves gRPC and HTTP: one loaded model, not two.
    assert [m.name for m in daemon.running()] == ["counter"]

    assert daemon.stop() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=5)


def test_serve_http_on_a_busy_port_fails_cleanly(fresh_home: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _serve_without_a_token(fresh_home, "--http", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
    assert not (fresh_home / "ingot.sock").exists()
