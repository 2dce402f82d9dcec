"""Capping request bodies: 413 before a byte of an oversized body is parsed.

A declared `Content-Length` over the cap is refused at once, without reading
the body. A body without one (chunked) is read up to the cap and refused as
soon as it passes it; one within the cap is handed on to the app as if it had
just arrived. Either way the daemon holds at most the cap in memory per
request, and the JSON parser, validation and tokenizer never see more.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from .errors import HttpError, error_response
from .metrics import ASGIApp, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware"]


def _too_large(limit: int, size: int | None) -> HttpError:
    what = f"{size} bytes" if size is not None else "over the limit"
    return HttpError(
        413,
        f"the request body is {what}; this daemon accepts at most {limit} bytes "
        "(raise http.max_body_bytes in config.yaml to allow more)",
        code="request_too_large",
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await error_response(scope["path"], _too_large(self.max_bytes, int(declared)))(scope, receive, send)
            return
        if declared is not None:
            # The server enforces the declared length itself: nothing more can arrive.
            await self.app(scope, receive, send)
            return
        buffered: list[MutableMapping[str, Any]] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break  # the client left; the app will see the disconnect
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await error_response(scope["path"], _too_large(self.max_bytes, None))(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> MutableMapping[str, Any]:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)
