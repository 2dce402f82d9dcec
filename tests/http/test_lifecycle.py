"""What happens around requests: a client that disconnects, a runner that dies, a daemon that shuts down, metrics."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from ingot.daemon.http import start_http_server
from ingot.registry.home import IngotHome

from http_helpers import MODEL, WAIT_S, RequestLog, Served, metric, ndjson, start_daemon

ENDLESS = {"num_predict": 1_000_000}  # the counting model never stops on its own: only a cancel ends this


def _runner_pid(served: Served) -> int:
    (snapshot,) = [s for s in served.daemon.scheduler.running() if s.name.endswith(f"/{MODEL}:latest")]
    return snapshot.pid


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_disconnect_mid_stream_frees_the_slot(served: Served, http: httpx.Client, api: str,
                                              request_log: RequestLog) -> None:
    cancelled_before = metric(http, "ingot_generations_total", api=api, model=MODEL, done_reason="cancelled")
    if api == "ollama":
        path, body = "/api/generate", {"model": MODEL, "prompt": "go", "options": ENDLESS}
    else:
        path, body = "/v1/completions", {"model": MODEL, "prompt": "go", "stream": True, "options": ENDLESS}
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as client:
        with client.stream("POST", path, json=body) as reply:
            assert reply.status_code == 200
            lines = reply.iter_lines()  # keep it: dropping the iterator closes the connection
            assert next(lines)  # generation is under way
            assert metric(http, "ingot_requests_active", model=MODEL) == 1
            assert metric(http, "ingot_slots_busy", model=MODEL) == 1
            assert metric(http, "ingot_queue_depth", model=MODEL, priority="interactive") == 0  # decoding, not waiting
            peer = f"http:127.0.0.1:{reply.extensions['network_stream'].get_extra_info('client_addr')[1]}"
        # Leaving the block closed the connection mid-stream.
    # drain() returns once every admitted request has released its slot: no sleeping, no polling.
    assert served.daemon.scheduler.drain(WAIT_S)
    assert metric(http, "ingot_requests_active", model=MODEL) == 0
    cancelled = metric(http, "ingot_generations_total", api=api, model=MODEL, done_reason="cancelled")
    assert cancelled == cancelled_before + 1
    (loaded,) = [m for m in http.get("/api/ps").json()["models"] if m["model"] == f"{MODEL}:latest"]
    assert loaded["expires_at"] is not None  # idle again: its keep-alive clock runs
    # The request log says what happened to it, as docs/http.md promises.
    (line,) = request_log.wait_for(1, peer=peer)
    assert line["outcome"] == "cancelled"
    assert line["done_reason"] == "cancelled"


def test_disconnect_before_the_reply_cancels_a_non_streamed_request(served: Served, http: httpx.Client) -> None:
    warm = http.post(
        "/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 1}}
    )
    assert warm.status_code == 200  # loaded: the request below reaches generation well within its timeout
    body = {"model": MODEL, "prompt": "go", "stream": False, "options": ENDLESS}
    cancelled_before = metric(http, "ingot_generations_total", api="ollama", model=MODEL, done_reason="cancelled")
    with httpx.Client(base_url=served.url, timeout=0.5) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.post("/api/generate", json=body)
    assert served.daemon.scheduler.drain(WAIT_S)
    assert metric(http, "ingot_generations_total", api="ollama", model=MODEL, done_reason="cancelled") == (
        cancelled_before + 1
    )


def test_runner_death_mid_stream_is_reported_in_stream_then_recovered(served: Served, http: httpx.Client) -> None:
    body = {"model": MODEL, "prompt": "go", "options": ENDLESS}
    with http.stream("POST", "/api/generate", json=body) as reply:
        lines = ndjson(reply.iter_lines())
        assert next(lines)["done"] is False
        os.kill(_runner_pid(served), signal.SIGKILL)
        rest = list(lines)
    assert "error" in rest[-1] and "runner" in rest[-1]["error"]
    assert served.daemon.scheduler.drain(WAIT_S)
    again = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False,
                                               "options": {"num_predict": 2}})
    assert again.status_code == 200 and again.json()["eval_count"] == 2  # a fresh runner took over


@pytest.fixture
def stopping(home: IngotHome, short_tmp: Path) -> Iterator[str]:
    """A second daemon over the same store whose scheduler already refuses work (it is shutting down)."""
    folder = short_tmp / "stopping"
    folder.mkdir(exist_ok=True)
    daemon = start_daemon(home, folder)
    server = start_http_server(daemon.http_services(), host="127.0.0.1", port=0)
    daemon.scheduler.begin_shutdown()
    try:
        yield server.url
    finally:
        server.stop(grace_seconds=0.5)
        daemon.shutdown(grace_seconds=0.5)


def test_shutting_down_is_503_in_both_shapes(stopping: str) -> None:
    with openai.OpenAI(base_url=f"{stopping}/v1", api_key="x", max_retries=0, timeout=WAIT_S) as client:
        with pytest.raises(openai.InternalServerError) as raised:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 503
    assert raised.value.response.headers["retry-after"] == "1"
    assert isinstance(raised.value.body, dict) and raised.value.body["type"] == "server_error"
    assert "shutting down" in raised.value.body["message"]
    with httpx.Client(base_url=stopping, timeout=WAIT_S) as http:
        reply = http.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 503 and "shutting down" in reply.json()["error"]


def test_health_and_request_metrics(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    before = metric(http, "ingot_http_requests_total", api="ollama", route="/api/tags", method="GET", status="200")
    assert http.get("/api/tags").status_code == 200
    after = metric(http, "ingot_http_requests_total", api="ollama", route="/api/tags", method="GET", status="200")
    assert after == before + 1
    # Unknown paths are counted under one label, so scanners cannot blow up the label space.
    assert http.get("/no/such/path").status_code == 404
    assert metric(http, "ingot_http_requests_total", route="unmatched", status="404") >= 1


def test_generation_metrics(http: httpx.Client) -> None:
    tokens_before = metric(http, "ingot_generated_tokens_total", model=MODEL, api="openai")
    ttft_before = metric(http, "ingot_time_to_first_token_seconds_count", model=MODEL)
    reply = http.post("/v1/chat/completions", json={
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7,
    })
    assert reply.status_code == 200
    assert metric(http, "ingot_generated_tokens_total", model=MODEL, api="openai") == tokens_before + 7
    assert metric(http, "ingot_time_to_first_token_seconds_count", model=MODEL) == ttft_before + 1
    assert metric(http, "ingot_generation_tokens_per_second_count", model=MODEL) >= 1
    assert metric(http, "ingot_generations_total", api="openai", model=MODEL, done_reason="length") >= 1
    assert metric(http, "ingot_loaded_models") >= 1


def test_stopping_the_listener_cancels_endless_streams(served: Served) -> None:
    """request_stop(grace): streams still running when the grace period ends are cancelled, their slots freed."""
    server = start_http_server(
        served.daemon.http_services(), host="127.0.0.1", port=0
    )
    with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
        with client.stream("POST", "/api/generate", json={"model": MODEL, "prompt": "go", "options": ENDLESS}) as reply:
            lines = reply.iter_lines()
            assert next(lines)
            server.request_stop(grace_seconds=0.2)
            assert server.join(WAIT_S)
    assert served.daemon.scheduler.drain(WAIT_S)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=WAIT_S)
