"""A real daemon serving a package whose template runs away: that request fails clearly, everyone else is served.

The runaway TEMPLATE calls named templates two at a time 26 levels deep
(2**26 calls: no output, no loop, only time), so it is the render-time limit
(5 s, from config.yaml) that stops it -- while a normal chat on another model,
started after it, is answered before it fails. A second package's template
asks for a billion loop turns and is refused at once: the HTTP checks use it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from daemon_helpers import DaemonProcess, make_package
from oci_registry_server import free_port

from ingot.proto.ingot.v1 import common_pb2, inference_pb2

NAMES = "abcdefghijklmnopqrstuvwxyz"
RUNAWAY = (
    "".join(f'{{{{ define "{a}" }}}}{{{{ template "{b}" . }}}}{{{{ template "{b}" . }}}}{{{{ end }}}}'
            for a, b in zip(NAMES, NAMES[1:]))
    + f'{{{{ define "{NAMES[-1]}" }}}}{{{{ end }}}}{{{{ template "a" . }}}}{{{{ range .Messages }}}}{{{{ .Content }}}}{{{{ end }}}}'
)


def _chat(daemon: DaemonProcess, model: str, content: str) -> str:
    request = inference_pb2.ChatRequest(
        model=model, messages=[common_pb2.ChatMessage(role="user", content=content)],
        options=common_pb2.Options(num_predict=3, temperature=0))
    return "".join(chunk.message.content for chunk in daemon.inference.Chat(request, timeout=120))


@pytest.fixture
def budget_daemon(tmp_path_factory: pytest.TempPathFactory, counting_gguf: Path, start_daemon) -> tuple[DaemonProcess, int]:
    home = tmp_path_factory.mktemp("budget")
    make_package(home, "counter", counting_gguf, "PARAMETER temperature 0\n")
    make_package(home, "runaway", counting_gguf, f'TEMPLATE """{RUNAWAY}"""\n')
    make_package(home, "loopy", counting_gguf, "TEMPLATE {{ range .Messages }}{{ range 1000000000 }}x{{ end }}{{ end }}\n")
    (home / "config.yaml").write_text("templates:\n  max_render_time: 5s\n")
    port = free_port()
    return start_daemon(home, "--http", f"127.0.0.1:{port}", "--grace", "2"), port


def test_a_runaway_template_fails_its_request_while_the_daemon_serves_others(
    budget_daemon: tuple[DaemonProcess, int],
) -> None:
    daemon, port = budget_daemon
    for model in ("runaway", "counter"):  # load both first: a chat without messages only loads
        list(daemon.inference.Chat(inference_pb2.ChatRequest(model=model), timeout=120))
    failure: list[grpc.RpcError] = []
    failed_at: list[float] = []

    def runaway() -> None:
        try:
            _chat(daemon, "runaway", "hello")
        except grpc.RpcError as exc:
            failure.append(exc)
            failed_at.append(time.monotonic())

    thread = threading.Thread(target=runaway)
    thread.start()
    normal = _chat(daemon, "counter", "the")  # served while the runaway render spends its 5 s
    answered_at = time.monotonic()
    thread.join(timeout=120)
    assert normal, "the normal chat got no answer"
    assert failed_at and answered_at < failed_at[0], "the normal chat waited for the runaway render"

    [error] = failure
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error.details()
    assert "model runaway" in details and "max_render_time" in details and "5 s of render time" in details
    assert ("ingot-error-reason", "template_budget") in tuple(error.trailing_metadata())

    # HTTP: 400 (the request cannot succeed by retrying), in both dialects, naming the model and the limit.
    base = f"http://127.0.0.1:{port}"
    ollama = httpx.post(f"{base}/api/chat", timeout=120, json={
        "model": "loopy", "stream": False, "messages": [{"role": "user", "content": "hi"}]})
    assert ollama.status_code == 400, ollama.text
    assert "model loopy" in ollama.json()["error"] and "max_loop_iterations" in ollama.json()["error"]
    openai = httpx.post(f"{base}/v1/chat/completions", timeout=120, json={
        "model": "loopy", "messages": [{"role": "user", "content": "hi"}]})
    assert openai.status_code == 400, openai.text
    body = openai.json()["error"]
    assert body["code"] == "template_budget_exceeded" and "model loopy" in body["message"]

    # And the daemon still answers a normal chat afterwards, over both APIs.
    assert _chat(daemon, "counter", "the") == normal
    after = httpx.post(f"{base}/api/chat", timeout=120, json={
        "model": "counter", "stream": False, "messages": [{"role": "user", "content": "the"}],
        "options": {"num_predict": 3, "temperature": 0}})
    assert after.status_code == 200, after.text
    assert json.loads(after.text)["message"]["content"]
    assert daemon.process.poll() is None
