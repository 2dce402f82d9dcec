"""Clients that stop reading a stream: cancelled after the write-stall timeout, their slots freed.

A daemon of its own with one slot (and room to queue), so two streams whose
clients read nothing would hold the model for minutes; a normal chat must
still be served within the timeout of the test.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from ingot.daemon.http import HttpServer, start_http_server
from ingot.daemon.limits import ClientLimits
from ingot.daemon.server import Daemon
from ingot.proto.ingot.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from ingot.registry.home import IngotHome

from http_helpers import MODEL, WAIT_S, RequestLog, start_daemon

STALL_S = 1.0
ENDLESS = {"num_predict": 1_000_000}
# A client that reads nothing, with a receive buffer that fills after a few events (the kernel's
# default fills too, after a few hundred kilobytes: slower, not different).
SMALL_RCVBUF = 4096


@dataclass(frozen=True)
class OneSlot:
    daemon: Daemon
    http: HttpServer


@pytest.fixture(scope="module")
def one_slot(home: IngotHome, short_tmp: object) -> Iterator[OneSlot]:
    from pathlib import Path

    socket_dir = Path(str(short_tmp)) / "one-slot"
    socket_dir.mkdir()
    limits = ClientLimits(write_stall_seconds=STALL_S)
    daemon = start_daemon(home, socket_dir, parallel=1, max_queue=4, limits=limits)
    http = start_http_server(daemon.http_services(), host="127.0.0.1", port=0,
                             limits=limits)
    try:
        yield OneSlot(daemon, http)
    finally:
        http.stop(grace_seconds=1.0)
        daemon.shutdown(grace_seconds=1.0)


def _stop_reading_after_sending(port: int, path: str, body: dict[str, object]) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)  # before connect: it sets the window
    sock.connect(("127.0.0.1", port))
    data = json.dumps(body).encode()
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
    return sock


def _closed_by_the_server(sock: socket.socket) -> bool:
    """Read what was buffered: True when the daemon ended the connection (EOF or reset)."""
    sock.settimeout(WAIT_S)
    try:
        while sock.recv(1 << 16):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def _chat(content: str, **options: int) -> dict[str, object]:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "options": options}


def _read_response_head(sock: socket.socket) -> bytes:
    """Only the status line and headers (sent with the first event: the generation holds the slot)."""
    sock.settimeout(WAIT_S)
    head = b""
    while b"\r\n\r\n" not in head:
        piece = sock.recv(1)
        assert piece, "the daemon closed the connection before answering"
        head += piece
    return head


def test_http_streams_whose_clients_read_nothing_are_cancelled(one_slot: OneSlot, request_log: RequestLog) -> None:
    port = one_slot.http.port
    first = _stop_reading_after_sending(port, "/v1/chat/completions", {**_chat("go", **ENDLESS), "stream": True})
    stalled = [first]
    try:
        assert _read_response_head(first).startswith(b"HTTP/1.1 200")  # streaming in the only slot
        stalled.append(_stop_reading_after_sending(port, "/api/chat", _chat("go", **ENDLESS)))  # NDJSON, queued
        # Without the timeout both streams hold the only slot for minutes and this times out.
        reply = httpx.post(f"{one_slot.http.url}/api/chat", json={**_chat("hi", num_predict=3), "stream": False},
                           timeout=WAIT_S)
        assert reply.status_code == 200
        assert reply.json()["message"]["content"]
        peers = {f"http:127.0.0.1:{sock.getsockname()[1]}" for sock in stalled}
        cancelled = request_log.wait_for(2, rpc="Chat", outcome="cancelled")  # logged as what they were
        assert {line["peer"] for line in cancelled} == peers
        # Only now read what is left: the daemon has closed both connections.
        assert all(_closed_by_the_server(sock) for sock in stalled)
    finally:
        for sock in stalled:
            sock.close()
    assert one_slot.daemon.scheduler.drain(WAIT_S)


def test_grpc_stream_whose_client_reads_nothing_is_cancelled(one_slot: OneSlot, request_log: RequestLog) -> None:
    # A client whose HTTP/2 window stays small (no BDP probing): reading nothing soon stops the server's sends.
    options = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
    target = f"unix:{one_slot.daemon.config.socket_path}"
    cancelled_before = one_slot.daemon.write_stalls.cancelled
    with grpc.insecure_channel(target, options=options) as idle, grpc.insecure_channel(target) as busy:
        request = inference_pb2.ChatRequest(
            model=MODEL, messages=[common_pb2.ChatMessage(role="user", content="go")],
            options=common_pb2.Options(num_predict=ENDLESS["num_predict"]),
        )
        stream = inference_pb2_grpc.InferenceStub(idle).Chat(request)
        assert next(stream).message.content is not None  # under way; from here on nobody reads it
        normal = inference_pb2.ChatRequest(
            model=MODEL, messages=[common_pb2.ChatMessage(role="user", content="hi")],
            options=common_pb2.Options(num_predict=3),
        )
        answer = "".join(r.message.content for r in inference_pb2_grpc.InferenceStub(busy).Chat(normal,
                                                                                               timeout=WAIT_S))
        assert answer
        assert one_slot.daemon.write_stalls.cancelled == cancelled_before + 1
        with pytest.raises(grpc.RpcError) as caught:
            for _ in stream:
                pass
        assert caught.value.code() is grpc.StatusCode.CANCELLED
    request_log.wait_for(1, rpc="Chat", outcome="cancelled", peer="unix:")
