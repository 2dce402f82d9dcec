"""`RunnerClient`: the engine's API, served by a child process that owns the model.

`RunnerClient.start` spawns ``python -m ingot.daemon.engine.runner_main`` (a
fresh interpreter via `subprocess`: no fork of a threaded daemon), hands it a
socket, sends the load options and waits until the model is loaded. Requests
are multiplexed over that one socket with ids; a reader thread routes replies
to their `RequestStream` or pending call.

When the child dies -- llama.cpp aborting on a bad tensor, the OOM killer, a
SIGKILL -- the socket reaches end-of-file at once: every in-flight stream and
call raises `RunnerDiedError` (with the exit status and the child's last
output lines), `alive()` turns False, and nothing else in the daemon is
touched. The child's stdout and stderr are drained continuously into a short
ring buffer, so a chatty child can never block on a full pipe.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import IO, Any

from .engine import DEFAULT_MAX_QUEUE
from .errors import EngineError, LoadError, RunnerDiedError
from .protocol import (
    FrameChannel,
    ProtocolError,
    decode_chunk,
    decode_error,
    decode_stats,
    encode_load_options,
    encode_request,
)
from .stream import RequestStream
from .types import GenerateRequest, LoadOptions, RunnerStats

__all__ = ["RunnerClient"]

_LOGGER = logging.getLogger("ingot.engine.runner")
_TAIL_LINES = 30


class RunnerClient:
    """One runner child process and the channel to it; thread safe."""

    def __init__(self, process: subprocess.Popen[bytes], channel: FrameChannel, options: LoadOptions) -> None:
        # Use RunnerClient.start(); this only wires up a process that already exists.
        self._process = process
        self._channel = channel
        self._options = options
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._streams: dict[int, RequestStream] = {}
        self._pending: dict[int, Future[Any]] = {}
        self._ready: Future[int] = Future()
        self._closing = False
        self._dead: RunnerDiedError | None = None
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        assert process.stdout is not None
        self._output_thread = threading.Thread(
            target=self._drain_output, args=(process.stdout,), name=f"ingot-runner-out:{process.pid}", daemon=True
        )
        self._reader_thread = threading.Thread(target=self._read, name=f"ingot-runner-read:{process.pid}", daemon=True)
        self._output_thread.start()
        self._reader_thread.start()

    # ------------------------------------------------------------------------------------------
    # lifecycle

    @classmethod
    def start(
        cls, options: LoadOptions, *, startup_timeout: float = 120.0, max_queue: int = DEFAULT_MAX_QUEUE
    ) -> RunnerClient:
        """Spawn a runner for `options` and wait until its model is loaded.

        Raises LoadError when the model cannot be loaded -- also when llama.cpp
        crashes the child while loading, or loading takes longer than
        `startup_timeout` -- with the child's last output in the message.
        """
        if not os.path.isfile(options.model_path):
            # Only a stat: the file's bytes are read in the child alone.
            raise LoadError(f"model file not found: {options.model_path}; check the path or pull the model again")
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "ingot.daemon.engine.runner_main", "--fd", str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # ggml's abort handler would attach gdb to print a backtrace: slow, and it
                # buries the one line that says what failed.
                env={**os.environ, "GGML_NO_BACKTRACE": "1"},
            )
        except OSError as exc:
            parent_sock.close()
            raise LoadError(f"could not start a runner process: {exc}") from exc
        finally:
            # The parent must not hold the child's end, or the child's death would never read as EOF.
            child_sock.close()
        client = cls(process, FrameChannel(parent_sock), options)
        try:
            client._channel.send({"op": "load", "options": encode_load_options(options), "max_queue": max_queue})
            client._ready.result(timeout=startup_timeout)
        except FutureTimeout:
            client.kill()
            raise LoadError(
                f"the runner did not finish loading {options.model_path} within {startup_timeout:.0f} s"
                f"{client._tail_text()}"
            ) from None
        except RunnerDiedError as exc:
            client.kill()
            raise LoadError(f"the runner crashed while loading {options.model_path}: {exc}") from None
        except LoadError:
            client.close()
            raise
        except OSError as exc:
            client.kill()
            raise LoadError(f"could not talk to the runner: {exc}{client._tail_text()}") from None
        except BaseException:  # e.g. KeyboardInterrupt: never leave a half-started child behind
            client.kill()
            raise
        return client

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def options(self) -> LoadOptions:
        return self._options

    def alive(self) -> bool:
        return self._dead is None and not self._closing and self._process.poll() is None

    def close(self, timeout: float = 5.0) -> None:
        """Ask the runner to finish (open requests end with reason error) and wait; kill it after `timeout`."""
        with self._lock:
            already = self._closing
            self._closing = True
        if not already and self._dead is None:
            try:
                self._channel.send({"op": "close"})
            except OSError:
                pass
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _LOGGER.warning("runner %d did not exit within %.1f s; killing it", self.pid, timeout)
            self._process.kill()
            self._process.wait()
        self._reader_thread.join()
        self._channel.close()

    def kill(self) -> None:
        """End the runner at once (SIGKILL); in-flight requests raise RunnerDiedError."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader_thread.join()
        self._channel.close()

    def __enter__(self) -> RunnerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------
    # the engine API

    def generate(self, request: GenerateRequest) -> RequestStream:
        """Start a generation in the runner; bad requests raise here, a dying runner mid-stream."""
        if not isinstance(request, GenerateRequest):
            raise TypeError(f"expected a GenerateRequest, got {type(request).__name__}")
        request_id = next(self._ids)
        stream = RequestStream(cancel=lambda: self._send_quietly({"op": "cancel", "id": request_id}))
        accepted: Future[Any] = Future()
        with self._lock:
            self._raise_if_unusable()
            self._streams[request_id] = stream
            self._pending[request_id] = accepted
        self._send({"op": "generate", "id": request_id, "request": encode_request(request)})
        try:
            accepted.result()
        except BaseException:
            with self._lock:
                self._streams.pop(request_id, None)
            raise
        return stream

    def embed(self, texts: Sequence[str], *, normalize: bool = True) -> list[list[float]]:
        if isinstance(texts, (str, bytes)):
            raise TypeError("embed() takes a sequence of strings; wrap a single text in a list")
        return self._call("embed", texts=list(texts), normalize=normalize)

    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = True) -> list[int]:
        return self._call("tokenize", text=text, add_bos=add_bos, special=special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._call("detokenize", tokens=list(tokens))

    def stats(self) -> RunnerStats:
        return decode_stats(self._call("stats"))

    # ------------------------------------------------------------------------------------------
    # plumbing

    def _call(self, method: str, **args: Any) -> Any:
        request_id = next(self._ids)
        result: Future[Any] = Future()
        with self._lock:
            self._raise_if_unusable()
            self._pending[request_id] = result
        self._send({"op": "call", "id": request_id, "method": method, "args": args})
        return result.result()

    def _raise_if_unusable(self) -> None:
        if self._closing:
            raise EngineError("the runner is closed")
        if self._dead is not None:
            raise self._dead

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._channel.send(message)
        except OSError:
            # The reader thread is failing everything in flight; wait for it to say why.
            self._reader_thread.join(timeout=10)
            raise self._dead or RunnerDiedError(f"runner {self.pid} is gone") from None

    def _send_quietly(self, message: dict[str, Any]) -> None:
        try:
            self._channel.send(message)
        except OSError:
            pass

    def _read(self) -> None:
        failure = ""
        try:
            while True:
                message = self._channel.receive()
                if message is None:
                    break
                self._route(message)
        except (ProtocolError, ValueError, KeyError, TypeError) as exc:
            failure = f"the runner sent a malformed message ({exc})"
            self._process.kill()
        except OSError as exc:  # the socket was closed under us (close()/kill())
            failure = str(exc)
        self._on_disconnect(failure)

    def _route(self, message: dict[str, Any]) -> None:
        op = message["op"]
        request_id = message.get("id")
        if op == "chunks":
            # One lock round for the whole frame (every stream's chunk of one llama_decode).
            chunks = [(item_id, decode_chunk(data)) for item_id, data in message["items"]]
            with self._lock:
                targets = [(self._streams.get(item_id), chunk) for item_id, chunk in chunks]
                for item_id, chunk in chunks:
                    if chunk.done:
                        self._streams.pop(item_id, None)
            for stream, chunk in targets:
                if stream is not None:
                    stream.push(chunk)
        elif op in ("accepted", "result", "rejected", "error"):
            with self._lock:
                future = self._pending.pop(request_id, None)  # type: ignore[arg-type]
                if op == "rejected":
                    self._streams.pop(request_id, None)  # type: ignore[arg-type]
            if future is None:
                raise ProtocolError(f"reply {op!r} for unknown id {request_id!r}")
            if op in ("rejected", "error"):
                future.set_exception(decode_error(message.get("error")))
            else:
                future.set_result(message.get("value"))
        elif op == "ready":
            self._ready.set_result(int(message["pid"]))
        elif op == "load_failed":
            error = decode_error(message.get("error"))
            if not isinstance(error, LoadError):
                error = LoadError(str(error))
            self._ready.set_exception(error)
        elif op == "closed":
            pass
        else:
            raise ProtocolError(f"unknown op {op!r}")

    def _on_disconnect(self, failure: str) -> None:
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # The channel is broken but the process lingers: it is of no use any more.
            self._process.kill()
            code = self._process.wait()
        self._output_thread.join(timeout=2)
        # A crash of a loaded runner, or one that takes requests with it, is worth a warning.
        loaded = self._ready.done() and self._ready.exception() is None
        died = RunnerDiedError(
            f"runner {self.pid} for {self._options.model_path} {_describe_exit(code)}"
            f"{f' ({failure})' if failure else ''}{self._tail_text()}"
        )
        with self._lock:
            self._dead = died
            streams = list(self._streams.values())
            pending = list(self._pending.values())
            self._streams.clear()
            self._pending.clear()
        unexpected = streams or pending or (loaded and not self._closing)
        _LOGGER.log(logging.WARNING if unexpected else logging.DEBUG, "%s", died)
        for stream in streams:
            stream.push(died)
        for future in pending:
            if not future.done():
                future.set_exception(died)
        if not self._ready.done():
            self._ready.set_exception(died)

    def _drain_output(self, pipe: IO[bytes]) -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip()
                if line:
                    self._tail.append(line)
                    _LOGGER.debug("runner %d: %s", self._process.pid, line)

    def _tail_text(self) -> str:
        # Give the drain thread a moment to catch the last lines of a dying child.
        deadline = time.monotonic() + 1.0
        while self._output_thread.is_alive() and self._process.poll() is not None and time.monotonic() < deadline:
            self._output_thread.join(timeout=0.05)
        lines = list(self._tail)[-8:]
        return ("; last output: " + " | ".join(lines)) if lines else ""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"
