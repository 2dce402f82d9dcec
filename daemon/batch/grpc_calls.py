"""`Calls` over the daemon's gRPC API: what `ingot batch` runs its requests through."""

from __future__ import annotations

import threading
from typing import Any

import grpc

from ingot.daemon.http.calls import CallAborted
from ingot.daemon.http.errors import from_aborted
from ingot.proto.ingot.v1 import inference_pb2, inference_pb2_grpc

from .execute import CallFailed

__all__ = ["GrpcCalls"]

# What gRPC itself says when the daemon is not there (not a status the daemon chose).
_GONE = ("failed to connect", "connection refused", "socket closed", "connection reset", "broken pipe")


def _failed(exc: grpc.RpcError) -> CallFailed:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else None) or str(code)
    error = from_aborted(CallAborted(code, details))
    fatal = code is grpc.StatusCode.UNAVAILABLE and any(text in details.lower() for text in _GONE)
    return CallFailed(error.status, error.message, code=error.code, fatal=fatal)


class GrpcCalls:
    """Batch calls on an `InferenceStub`; `cancel_all()` cancels every call in flight."""

    def __init__(self, stub: inference_pb2_grpc.InferenceStub, *, timeout: float | None = None) -> None:
        self._stub = stub
        self._timeout = timeout
        self._lock = threading.Lock()
        self._live: set[Any] = set()

    def _run(self, start: Any, request: Any, collect: Any) -> Any:
        call = start(request, timeout=self._timeout)
        with self._lock:
            self._live.add(call)
        try:
            return collect(call)
        except grpc.RpcError as exc:
            raise _failed(exc) from None
        finally:
            with self._lock:
                self._live.discard(call)

    def chat(self, request: inference_pb2.ChatRequest) -> list[inference_pb2.ChatResponse]:
        return self._run(self._stub.Chat, request, list)  # type: ignore[no-any-return]

    def generate(self, request: inference_pb2.GenerateRequest) -> list[inference_pb2.GenerateResponse]:
        return self._run(self._stub.Generate, request, list)  # type: ignore[no-any-return]

    def embed(self, request: inference_pb2.EmbedRequest) -> inference_pb2.EmbedResponse:
        return self._run(self._stub.Embed.future, request, lambda future: future.result())  # type: ignore[no-any-return]

    def cancel_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for call in live:
            call.cancel()
