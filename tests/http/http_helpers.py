"""Helpers for the HTTP tests: the served model and daemon, Prometheus samples, the gRPC reference answer, stream lines."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from ingot.daemon.server import Daemon, ServeConfig
from ingot.proto.ingot.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from ingot.registry.home import IngotHome
from ingot.registry.synthetic import CHAT_TEMPLATES, SyntheticSpec

from served import Served

MODEL = "counter"
PARALLEL = 2
MAX_QUEUE = 2
# Big enough that a counting stream nobody stops runs for seconds, not milliseconds.
NUM_CTX = 16384
# A bound on any single wait, so a bug fails a test instead of hanging it.
WAIT_S = 30.0

COUNTING_SPEC = SyntheticSpec(counting=True, n_ctx=NUM_CTX, chat_template=CHAT_TEMPLATES["chatml"], name="counter")


def start_daemon(home: IngotHome, socket_dir: Path, **limits: object) -> Daemon:
    # Unix socket paths are limited to 107 bytes: keep them out of pytest's long tmp names.
    config = ServeConfig(home=home, socket_path=socket_dir / "d.sock", **limits)  # type: ignore[arg-type]
    daemon = Daemon(config)
    daemon.start()
    return daemon


def metric(http: httpx.Client, name: str, **labels: str) -> float:
    """The value of one sample on /metrics (0 when the labelled series does not exist yet)."""
    reply = http.get("/metrics")
    assert reply.status_code == 200
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def grpc_chat(socket_path: Path, model: str, content: str, num_predict: int) -> str:
    """The same chat over the daemon's gRPC API: the reference every HTTP answer must match."""
    with grpc.insecure_channel(f"unix:{socket_path}") as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        request = inference_pb2.ChatRequest(
            model=model,
            messages=[common_pb2.ChatMessage(role="user", content=content)],
            options=common_pb2.Options(num_predict=num_predict),
        )
        return "".join(reply.message.content for reply in stub.Chat(request, timeout=60))


def grpc_generate(socket_path: Path, model: str, prompt: str, num_predict: int, *, raw: bool) -> str:
    with grpc.insecure_channel(f"unix:{socket_path}") as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        request = inference_pb2.GenerateRequest(
            model=model, prompt=prompt, raw=raw, options=common_pb2.Options(num_predict=num_predict)
        )
        return "".join(reply.response for reply in stub.Generate(request, timeout=60))


def ndjson(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.strip():
            yield json.loads(line)


class RequestLog(logging.Handler):
    """The request log lines (`ingot.requests`) as their fields; `wait_for` blocks until a matching one."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.lines.append(dict(getattr(record, "fields", {})))
            self._changed.notify_all()

    def wait_for(self, count: int, **fields: object) -> list[dict[str, object]]:
        def matching() -> list[dict[str, object]]:
            return [line for line in self.lines if all(line.get(k) == v for k, v in fields.items())]

        with self._changed:
            assert self._changed.wait_for(lambda: len(matching()) >= count, WAIT_S), self.lines
            return matching()
