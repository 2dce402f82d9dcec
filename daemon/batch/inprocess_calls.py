"""`Calls` on the daemon's own servicers, in-process: what /v1/batches jobs run their requests through.

The same servicer methods the gRPC and HTTP doors call, with an
`InProcessContext` per call, so a batch request is scheduled, logged and
cancelled exactly like any other.
"""

from __future__ import annotations

import threading
from typing import Any

from ingot.daemon.http.calls import CallAborted, InProcessContext
from ingot.daemon.http.errors import from_aborted
from ingot.daemon.servicers import InferenceServicer
from ingot.proto.ingot.v1 import inference_pb2

from .execute import CallFailed

__all__ = ["InProcessCalls"]


class InProcessCalls:
    def __init__(self, servicer: InferenceServicer, *, peer: str) -> None:
        self._servicer = servicer
        self._peer = peer
        self._lock = threading.Lock()
        self._live: set[InProcessContext] = set()

    def _run(self, method: Any, request: Any) -> Any:
        context = InProcessContext(self._peer)
        with self._lock:
            self._live.add(context)
        try:
            result = method(request, context)
            return list(result) if not isinstance(result, inference_pb2.EmbedResponse) else result
        except CallAborted as exc:
            error = from_aborted(exc)
            raise CallFailed(error.status, error.message, code=error.code) from None
        finally:
            context.end()
            with self._lock:
                self._live.discard(context)

    def chat(self, request: inference_pb2.ChatRequest) -> list[inference_pb2.ChatResponse]:
        return self._run(self._servicer.Chat, request)  # type: ignore[no-any-return]

    def generate(self, request: inference_pb2.GenerateRequest) -> list[inference_pb2.GenerateResponse]:
        return self._run(self._servicer.Generate, request)  # type: ignore[no-any-return]

    def embed(self, request: inference_pb2.EmbedRequest) -> inference_pb2.EmbedResponse:
        return self._run(self._servicer.Embed, request)  # type: ignore[no-any-return]

    def cancel_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for context in live:
            context.end()
