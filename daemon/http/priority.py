"""The `X-Ingot-Priority` header: an HTTP request's scheduling priority (interactive unless it says batch).

The header sets the same `Options.priority` a gRPC client sets, so both doors
schedule alike; see docs/batch.md for what the priorities do.
"""

from __future__ import annotations

from typing import TypeVar

from starlette.requests import Request

from ingot.proto.ingot.v1 import common_pb2

from .errors import HttpError

__all__ = ["PRIORITY_HEADER", "with_priority"]

PRIORITY_HEADER = "X-Ingot-Priority"
_VALUES = {"interactive": common_pb2.PRIORITY_INTERACTIVE, "batch": common_pb2.PRIORITY_BATCH}

Message = TypeVar("Message")


def with_priority(message: Message, request: Request) -> Message:
    """`message` (a request with `options`) with the header's priority set; unchanged without the header."""
    value = request.headers.get(PRIORITY_HEADER)
    if value is None:
        return message
    priority = _VALUES.get(value.strip().lower())
    if priority is None:
        raise HttpError(
            400, f"invalid {PRIORITY_HEADER} header {value!r}: use 'interactive' or 'batch'", param=PRIORITY_HEADER
        )
    message.options.priority = priority  # type: ignore[attr-defined]
    return message
