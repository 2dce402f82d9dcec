"""The runner child: ``python -m ingot.daemon.engine.runner_main --fd N``.

It owns one `Engine` and serves the parent's `RunnerClient` over the socket
inherited as file descriptor N (protocol in `protocol.py`). It is the only
process that opens model weights, so a GGUF that makes llama.cpp abort takes
down this process and nothing else. It exits when the parent says ``close``
or when the socket reaches end-of-file (the parent is gone).

Generation chunks are written from the engine thread: its sinks collect the
chunks of one `llama_decode` and its ``flush`` hook writes them as one
``chunks`` frame (`Outbox`). Embeddings and other calls run on a small worker
pool so a long embedding batch never delays reading the next message (a
cancel, say).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .engine import Engine, RequestHandle
from .errors import EngineError, InvalidRequestError, LoadError
from .protocol import (
    FrameChannel,
    ProtocolError,
    decode_load_options,
    decode_request,
    encode_chunk,
    encode_error,
    encode_stats,
)
from .types import Chunk

__all__ = ["Outbox", "main"]

_LOGGER = logging.getLogger("ingot.engine.runner")


class Outbox:
    """Chunks of many requests, sent as one ``chunks`` frame per `flush` (engine thread only, no lock)."""

    def __init__(self, channel: FrameChannel) -> None:
        self._channel = channel
        self._items: list[list[Any]] = []

    def add(self, request_id: int, chunk: Chunk) -> None:
        self._items.append([request_id, encode_chunk(chunk)])

    def flush(self) -> None:
        if not self._items:
            return
        items, self._items = self._items, []
        try:
            self._channel.send({"op": "chunks", "items": items})
        except OSError:
            pass  # the parent is gone; serve() sees end-of-file next


class _Live:
    """A generation in flight; a cancel may arrive before submit() has returned its handle."""

    def __init__(self) -> None:
        self.handle: RequestHandle | None = None
        self.cancel_requested = False


class _Server:
    def __init__(self, channel: FrameChannel, engine: Engine, outbox: Outbox) -> None:
        self._channel = channel
        self._engine = engine
        self._outbox = outbox
        self._live: dict[int, _Live] = {}
        self._live_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingot-runner-call")

    def serve(self) -> None:
        try:
            while True:
                message = self._channel.receive()
                if message is None:
                    return  # the parent is gone
                op = message["op"]
                if op == "generate":
                    self._generate(message)
                elif op == "cancel":
                    self._cancel(message.get("id"))
                elif op == "call":
                    self._pool.submit(self._call, message)
                elif op == "close":
                    self._shutdown()
                    self._send({"op": "closed"})
                    return
                else:
                    raise ProtocolError(f"unknown op {op!r}")
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._engine.close()  # ends every open request with a final chunk first
        self._pool.shutdown(wait=True)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._channel.send(message)
        except OSError:
            pass  # the parent is gone; serve() sees end-of-file next

    def _cancel(self, request_id: Any) -> None:
        with self._live_lock:
            live = self._live.get(request_id)
            if live is None:
                return
            live.cancel_requested = True
            handle = live.handle
        if handle is not None:
            handle.cancel()

    def _generate(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        live = _Live()
        try:
            if not isinstance(request_id, int):
                raise InvalidRequestError("generate needs an integer id")
            request = decode_request(message.get("request"))

            def sink(chunk: Chunk) -> None:
                if chunk.done:
                    with self._live_lock:
                        self._live.pop(request_id, None)
                self._outbox.add(request_id, chunk)

            with self._live_lock:
                self._live[request_id] = live
            handle = self._engine.submit(request, sink)
        except (EngineError, TypeError, ValueError) as exc:
            with self._live_lock:
                self._live.pop(request_id, None)  # type: ignore[arg-type]
            self._send({"op": "rejected", "id": request_id, "error": encode_error(_as_engine_error(exc))})
            return
        with self._live_lock:
            live.handle = handle
            cancel_now = live.cancel_requested
        self._send({"op": "accepted", "id": request_id})
        if cancel_now:
            handle.cancel()

    def _call(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        try:
            value = self._dispatch(str(message.get("method")), message.get("args") or {})
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            self._send({"op": "error", "id": request_id, "error": encode_error(_as_engine_error(exc))})
            return
        self._send({"op": "result", "id": request_id, "value": value})

    def _dispatch(self, method: str, args: dict[str, Any]) -> Any:
        engine = self._engine
        if method == "embed":
            return engine.embed(list(args["texts"]), normalize=bool(args.get("normalize", True)))
        if method == "tokenize":
            return engine.tokenize(
                args["text"], add_bos=bool(args.get("add_bos", True)), special=bool(args.get("special", True))
            )
        if method == "detokenize":
            return engine.detokenize(list(args["tokens"]))
        if method == "stats":
            return encode_stats(engine.stats())
        raise InvalidRequestError(f"unknown runner method {method!r}")


def _as_engine_error(exc: BaseException) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    return InvalidRequestError(f"{type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingot.daemon.engine.runner_main", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="file descriptor of the socket to the daemon")
    args = parser.parse_args(argv)
    # The daemon decides when a runner ends; a Ctrl-C meant for it must not kill runners mid-request.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    channel = FrameChannel(socket.socket(fileno=args.fd))
    try:
        hello = channel.receive()
        if hello is None:
            return 0
        if hello.get("op") != "load":
            raise ProtocolError(f"expected 'load' first, got {hello.get('op')!r}")
        try:
            options = decode_load_options(hello.get("options"))
            outbox = Outbox(channel)
            engine = Engine(options, max_queue=int(hello.get("max_queue", 512)), flush=outbox.flush)
        except (EngineError, TypeError, ValueError) as exc:
            error = exc if isinstance(exc, EngineError) else LoadError(f"bad load options: {exc}")
            channel.send({"op": "load_failed", "error": encode_error(error)})
            return 1
        channel.send({"op": "ready", "pid": os.getpid()})
        _Server(channel, engine, outbox).serve()
        return 0
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main())
