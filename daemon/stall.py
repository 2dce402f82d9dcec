"""Cancelling gRPC streams whose client reads nothing: the gRPC half of the write-stall timeout.

grpc's server hands each response of a stream to the transport and waits
until it is sent before asking the servicer for the next one. A client that
stops reading lets HTTP/2 flow control fill up, the send never completes and
the servicer thread sits at its `yield` -- holding the model's slot for as
long as the client keeps the connection open.

`WriteStallInterceptor` wraps every server-streaming method: between handing
a response over and being asked for the next, the stream is "writing".
`WriteStallWatchdog` (one thread per daemon) cancels any stream that has been
writing for longer than the timeout; the pending send fails, grpc drops the
stream, its `CallWatch` callbacks stop the runner and the slot frees. Time
spent waiting for the next token is not writing: a slow model is never cut
off, only a client that reads nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

__all__ = ["WriteStallInterceptor", "WriteStallWatchdog"]

_log = logging.getLogger("ingot.daemon")


class _Watched:
    """One stream: since when it has been writing (None while it is not)."""

    __slots__ = ("context", "method", "writing_since")

    def __init__(self, context: grpc.ServicerContext, method: str) -> None:
        self.context = context
        self.method = method
        self.writing_since: float | None = None


class WriteStallWatchdog:
    """Cancels streams that have been writing for more than `seconds`; `start()` then `stop()`."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._streams: set[_Watched] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cancelled = 0

    def start(self) -> None:
        if self.seconds > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ingot-write-stall", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def watch(self, context: grpc.ServicerContext, method: str) -> _Watched:
        entry = _Watched(context, method)
        with self._lock:
            self._streams.add(entry)
        return entry

    def forget(self, entry: _Watched) -> None:
        with self._lock:
            self._streams.discard(entry)

    def check(self) -> int:
        """Cancel every stream writing for too long; how many were cancelled."""
        now = self._clock()
        with self._lock:
            stalled = [e for e in self._streams
                       if e.writing_since is not None and now - e.writing_since > self.seconds]
            for entry in stalled:
                self._streams.discard(entry)
        for entry in stalled:
            _log.warning("client %s read nothing for %.0f s; cancelling its %s stream",
                         entry.context.peer(), self.seconds, entry.method)
            entry.context.cancel()
        self.cancelled += len(stalled)
        return len(stalled)

    def _run(self) -> None:
        # A stall is noticed within a quarter of the timeout (at most a second) after it passes.
        period = min(self.seconds / 4, 1.0)
        while not self._stop.wait(period):
            self.check()

    def guard(self, responses: Iterator[Any], context: grpc.ServicerContext, method: str) -> Iterator[Any]:
        """`responses`, marked as writing from each yield until grpc asks for the next."""
        entry = self.watch(context, method)
        try:
            for response in responses:
                entry.writing_since = self._clock()
                yield response
                entry.writing_since = None
        finally:
            self.forget(entry)
            close = getattr(responses, "close", None)
            if close is not None:
                close()  # GeneratorExit at the servicer's yield: its request is logged cancelled


class WriteStallInterceptor(grpc.ServerInterceptor):
    """Puts every server-streaming method of a grpc server under `watchdog`."""

    def __init__(self, watchdog: WriteStallWatchdog) -> None:
        self._watchdog = watchdog

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or not handler.response_streaming or self._watchdog.seconds <= 0:
            return handler
        method = handler_call_details.method
        guard = self._watchdog.guard
        if handler.request_streaming:
            inner_ss = handler.stream_stream

            def stream_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
                return guard(inner_ss(requests, context), context, method)

            return grpc.stream_stream_rpc_method_handler(
                stream_stream, handler.request_deserializer, handler.response_serializer
            )
        inner_us = handler.unary_stream

        def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            return guard(inner_us(request, context), context, method)

        return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer,
                                                    handler.response_serializer)
