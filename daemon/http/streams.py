"""Turning a servicer call into an HTTP reply: one JSON body, or a stream (SSE / NDJSON).

A streamed reply starts only once the first message is there, so an error
before any output (unknown model, bad option, queue full) still gets its
proper status code; an error after that can only travel inside the stream,
in the API's own shape. A client that disconnects -- while waiting or
mid-stream -- cancels the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse

from .calls import CallAborted, ClientGone, ServicerCall, unless_disconnected
from .errors import HttpError, from_aborted

__all__ = ["Renderer", "collect", "first_message", "peer_of", "stream_reply"]

Message = TypeVar("Message")


class Renderer(Protocol):
    """How one endpoint writes its stream: a piece per message, a tail, and an in-stream error."""

    def message(self, message: Any) -> list[bytes]: ...

    def end(self) -> list[bytes]: ...

    def error(self, error: HttpError) -> list[bytes]: ...


def peer_of(request: Request) -> str:
    client = request.client
    return f"http:{client.host}:{client.port}" if client is not None else "http"


async def first_message(request: Request, call: ServicerCall[Message]) -> Message | None:
    """The call's first message (None when it sent none); HttpError when it failed, ClientGone if the client left."""
    try:
        return await unless_disconnected(request, call.next())
    except CallAborted as exc:
        raise from_aborted(exc) from None
    except ClientGone:
        call.cancel()
        raise


async def collect(request: Request, call: ServicerCall[Message]) -> list[Message]:
    """Every message of the call (for non-streamed replies), cancelling it if the client leaves."""
    try:
        return await unless_disconnected(request, call.all())
    except CallAborted as exc:
        raise from_aborted(exc) from None
    except ClientGone:
        call.cancel()
        raise


async def _pieces(first: Any, call: ServicerCall[Any], renderer: Renderer) -> AsyncIterator[bytes]:
    try:
        message = first
        while message is not None:
            # Messages that came while this one was written go out with it, in one write.
            pieces = list(renderer.message(message))
            for waiting in call.ready():
                pieces += renderer.message(waiting)
            if pieces:
                yield b"".join(pieces)
            message = await call.next()
        for piece in renderer.end():
            yield piece
    except CallAborted as exc:
        for piece in renderer.error(from_aborted(exc)):
            yield piece
    except HttpError as exc:
        for piece in renderer.error(exc):
            yield piece
    finally:
        # Reached when the stream ends, fails, or the response task is
        # cancelled because the client disconnected: stop the work.
        call.cancel()


def stream_reply(first: Any, call: ServicerCall[Any], renderer: Renderer, *, media_type: str) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_pieces(first, call, renderer), media_type=media_type, headers=headers)
