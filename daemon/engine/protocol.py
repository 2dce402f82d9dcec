"""The wire between `RunnerClient` (parent) and `runner_main` (child): length-prefixed JSON frames.

Frame: 4-byte big-endian length, then that many bytes of UTF-8 JSON (one object
with an ``op`` field). JSON and not pickle on purpose: the child opens
untrusted weights, and unpickling what a compromised child sends would run its
code in the daemon. Every message is plain data, decoded field by field into
the engine's dataclasses.

Messages (``id`` ties a reply to its request; many are in flight at once):

parent -> child: ``load`` {options, max_queue} (first), ``generate`` {id, request},
``cancel`` {id}, ``call`` {id, method, args}, ``close``.
child -> parent: ``ready`` {pid}, ``load_failed`` {error}, ``accepted`` {id},
``rejected`` {id, error}, ``chunks`` {items: [[id, chunk], ...]}, ``result`` {id,
value}, ``error`` {id, error}, ``closed``.

A ``chunks`` frame carries what one `llama_decode` produced for every stream
(the engine's ``flush`` hook), so 8 streams cost one write and one wake-up of
the daemon's reader per step, not 8. The reader takes whatever bytes are
waiting in one ``recv``, so frames that queued while it was busy are parsed
from one read.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import threading
from typing import Any

from .errors import (
    ContextOverflowError,
    EngineError,
    InvalidRequestError,
    LoadError,
    QueueFullError,
    RunnerDiedError,
)
from .types import Chunk, DoneReason, GenerateRequest, LoadOptions, Metrics, Priority, RunnerStats, SamplingOptions

__all__ = [
    "FrameChannel",
    "ProtocolError",
    "decode_chunk",
    "decode_error",
    "decode_load_options",
    "decode_request",
    "decode_stats",
    "encode_chunk",
    "encode_error",
    "encode_load_options",
    "encode_request",
    "encode_stats",
]

_HEADER = struct.Struct(">I")
# Large enough for a big embedding batch, small enough that a corrupt length cannot exhaust memory.
MAX_FRAME_BYTES = 256 * 1024 * 1024
_READ_SIZE = 1 << 16  # one recv takes up to this much of what is waiting


class ProtocolError(EngineError):
    """A frame that is not what the protocol allows (a bug, or a misbehaving runner)."""


class FrameChannel:
    """Send and receive frames on a connected stream socket; sends are serialized by a lock.

    `receive` is for one reader thread: it buffers what a ``recv`` brought beyond the frame.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()
        self._buffer = b""
        self._start = 0

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
        with self._send_lock:
            self.sock.sendall(_HEADER.pack(len(data)) + data)

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None when the peer closed the connection."""
        header = self._read_exactly(_HEADER.size)
        if header is None:
            return None
        (size,) = _HEADER.unpack(header)
        if size > MAX_FRAME_BYTES:
            raise ProtocolError(f"frame of {size} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
        body = self._read_exactly(size)
        if body is None:
            return None
        try:
            message = json.loads(body)
        except ValueError as exc:
            raise ProtocolError(f"frame is not JSON: {exc}") from None
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            raise ProtocolError("frame is not an object with an 'op'")
        return message

    def _read_exactly(self, size: int) -> bytes | None:
        # `_buffer[_start:]` is what the last recv brought beyond the frames read so far.
        if len(self._buffer) - self._start >= size:
            end = self._start + size
            data = self._buffer[self._start : end]
            self._start = end
            return data
        parts = [self._buffer[self._start :]]
        have = len(parts[0])
        while have < size:
            try:
                # At least _READ_SIZE: whatever frames wait behind this one come in the same read.
                part = self.sock.recv(min(max(size - have, _READ_SIZE), 1 << 20))
            except (ConnectionResetError, OSError):
                return None
            if not part:
                return None
            parts.append(part)
            have += len(part)
        data = b"".join(parts)
        if have == size:
            self._buffer, self._start = b"", 0
            return data
        self._buffer, self._start = data, size
        return data[:size]

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# -- dataclasses <-> plain data -------------------------------------------------------------------


def _build(cls: type, data: Any) -> Any:
    """`cls(**data)` that accepts only its fields and turns JSON lists back into tuples."""
    if not isinstance(data, dict):
        raise ProtocolError(f"expected an object for {cls.__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ProtocolError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
    return cls(**values)


def encode_load_options(options: LoadOptions) -> dict[str, Any]:
    return dataclasses.asdict(options)


def decode_load_options(data: Any) -> LoadOptions:
    return _build(LoadOptions, data)


def encode_request(request: GenerateRequest) -> dict[str, Any]:
    return dataclasses.asdict(request)


def decode_request(data: Any) -> GenerateRequest:
    if not isinstance(data, dict):
        raise ProtocolError("expected an object for GenerateRequest")
    fields = dict(data)
    fields["sampling"] = _build(SamplingOptions, fields.get("sampling", {}))
    if "priority" in fields:
        try:
            fields["priority"] = Priority(fields["priority"])
        except ValueError:
            raise ProtocolError(f"unknown priority {fields['priority']!r}") from None
    return _build(GenerateRequest, fields)


def encode_chunk(chunk: Chunk) -> dict[str, Any]:
    data: dict[str, Any] = {"text": chunk.text}
    if chunk.done:
        data["done"] = True
        data["done_reason"] = chunk.done_reason.value if chunk.done_reason else None
        data["metrics"] = dataclasses.asdict(chunk.metrics) if chunk.metrics else None
        data["error"] = chunk.error
    return data


def decode_chunk(data: Any) -> Chunk:
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ProtocolError("malformed chunk")
    if not data.get("done"):
        return Chunk(text=data["text"])
    reason = data.get("done_reason")
    metrics = data.get("metrics")
    return Chunk(
        text=data["text"],
        done=True,
        done_reason=DoneReason(reason) if reason else None,
        metrics=_build(Metrics, metrics) if metrics is not None else None,
        error=data.get("error"),
    )


def encode_stats(stats: RunnerStats) -> dict[str, Any]:
    return dataclasses.asdict(stats)


def decode_stats(data: Any) -> RunnerStats:
    return _build(RunnerStats, data)


# -- errors ---------------------------------------------------------------------------------------

_ERROR_KINDS: dict[str, type[EngineError]] = {
    cls.__name__: cls
    for cls in (EngineError, LoadError, RunnerDiedError, QueueFullError, ContextOverflowError, InvalidRequestError)
}


def encode_error(exc: BaseException) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, LoadError):
        data["out_of_memory"] = exc.out_of_memory
    if isinstance(exc, ContextOverflowError):
        data["prompt_tokens"] = exc.prompt_tokens
        data["n_ctx"] = exc.n_ctx
        data["reserved"] = exc.over_by - exc.prompt_tokens + exc.n_ctx
    return data


def decode_error(data: Any) -> EngineError:
    """The engine error the child raised; anything unexpected becomes a plain EngineError."""
    if not isinstance(data, dict):
        return EngineError("the runner reported a malformed error")
    message = str(data.get("message", "unknown runner error"))
    kind = _ERROR_KINDS.get(str(data.get("kind")))
    if kind is ContextOverflowError:
        try:
            return ContextOverflowError(int(data["prompt_tokens"]), int(data["n_ctx"]), int(data.get("reserved", 0)))
        except (KeyError, TypeError, ValueError):
            return EngineError(message)
    if kind is LoadError:
        return LoadError(message, out_of_memory=bool(data.get("out_of_memory", False)))
    if kind is None:
        return EngineError(f"{data.get('kind')}: {message}")
    return kind(message)
