"""Dropping clients that stop reading a reply: the HTTP half of the write-stall timeout.

A stream whose client reads nothing still holds a model's slot: five SSE
clients that never read blocked a 4-slot model for as long as they stayed
connected. Waiting for a write to block is not enough to notice them: on
Linux the kernel's send buffer grows to megabytes, minutes of tokens. What
does stop at once is the client's acknowledgements: its kernel acknowledges
data only while its (small, since nobody reads it) receive buffer has room.

`WriteStallGuard` wraps the server's `send` for each request and, while a
reply is being sent, watches the connection every quarter of the timeout:
when bytes wait to be sent or acknowledged and the peer has acknowledged
nothing new (`TCP_INFO`'s `tcpi_bytes_acked`) for `seconds`, or when one
write has been blocked for `seconds` (the check where `TCP_INFO` is missing),
the connection is aborted. The app then sees the client disconnect, which
cancels the call and frees the slot as any disconnect does. A stream that
waits for its next token has nothing outstanding and is never cut off; a
client that reads slowly keeps acknowledging and is not either.

It must wrap the app uvicorn calls (outside Starlette's own middleware) to
reach the connection's transport; where it cannot (another server), a
blocked write raises, which makes the server close the connection instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import termios
import time
from collections.abc import MutableMapping
from typing import Any

from .metrics import ASGIApp, Receive, Scope, Send

__all__ = ["WriteStallGuard", "WriteStalled"]

_log = logging.getLogger("ingot.daemon.http")

# struct tcp_info (linux/tcp.h): __u64 tcpi_bytes_acked sits at byte 120 since Linux 4.1.
_TCP_INFO_SIZE = 256
_BYTES_ACKED_AT = 120


class WriteStalled(ConnectionError):
    """The client read nothing for the write-stall timeout."""


class _Connection:
    """The transport under uvicorn's `send`, and what its socket says about the peer's progress."""

    def __init__(self, send: Send) -> None:
        # uvicorn's `send` is a bound method of the request cycle, which holds the asyncio transport.
        self.transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        self._fd = sock.fileno() if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) else -1

    def acked(self) -> int | None:
        """Bytes the peer has acknowledged so far; None where the kernel does not say."""
        if self._fd < 0 or not hasattr(socket, "TCP_INFO"):
            return None
        try:
            raw = _tcp_info(self._fd)
        except OSError:
            return None
        if len(raw) < _BYTES_ACKED_AT + 8:
            return None
        return int(struct.unpack_from("<Q", raw, _BYTES_ACKED_AT)[0])

    def waiting(self) -> bool:
        """True while bytes wait in our buffer or the kernel's, unsent or unacknowledged."""
        if self.transport is not None and self.transport.get_write_buffer_size() > 0:
            return True
        if self._fd < 0:
            return False
        try:
            queued = struct.unpack("i", fcntl.ioctl(self._fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return False
        return bool(queued > 0)

    def abort(self) -> bool:
        abort = getattr(self.transport, "abort", None)
        if abort is None:
            return False
        abort()
        return True


def _tcp_info(fd: int) -> bytes:
    view = socket.socket(fileno=fd)
    try:
        return view.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    finally:
        view.detach()  # the fd stays uvicorn's


class WriteStallGuard:
    def __init__(self, app: ASGIApp, seconds: float, *, clock: Any = time.monotonic) -> None:
        self.app = app
        self.seconds = seconds
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        connection = _Connection(send)
        stalled = False
        monitor: asyncio.Task[None] | None = None

        def drop(why: str) -> bool:
            nonlocal stalled
            stalled = True
            client = scope.get("client") or ("?", 0)
            _log.warning("client %s:%s %s for %.0f s; dropping its connection (%s %s)", client[0], client[1],
                         why, self.seconds, scope.get("method"), scope.get("path"))
            return connection.abort()

        async def watch() -> None:
            last = connection.acked()
            if last is None:
                return  # no TCP_INFO here: the blocked-write timeout below is the only check
            since = self._clock()
            period = min(self.seconds / 4, 1.0)
            while not stalled:
                await asyncio.sleep(period)
                acked, now = connection.acked(), self._clock()
                if acked != last or not connection.waiting():
                    last, since = acked, now  # progress, or nothing to deliver (waiting for a token)
                elif now - since > self.seconds:
                    drop("acknowledged nothing")
                    return

        async def guarded(message: MutableMapping[str, Any]) -> None:
            nonlocal monitor
            if stalled:
                return  # the connection is gone; what is left of the reply goes nowhere
            if monitor is None and message["type"] == "http.response.start":
                monitor = asyncio.ensure_future(watch())
            try:
                await asyncio.wait_for(send(message), self.seconds)
            except asyncio.TimeoutError:
                if not stalled and not drop("could not be written to"):
                    raise WriteStalled(f"the client read nothing for {self.seconds:g} s") from None

        try:
            await self.app(scope, receive, guarded)
        finally:
            if monitor is not None:
                monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monitor
