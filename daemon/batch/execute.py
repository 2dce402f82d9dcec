"""One batch request: the Batch API body -> the servicers' messages -> the reply body an endpoint would give.

The translation both ways is the HTTP front door's own
(`ingot.daemon.http.openai_api`), so a batch line gets exactly the answer a
POST to its url would. Where the messages go is a `Calls`: gRPC stubs for
`ingot batch` (`GrpcCalls`), the servicers in-process for /v1/batches.
Every request is sent with batch priority.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from ingot.daemon.http.errors import HttpError, openai_error_payload, validation_error
from ingot.daemon.http.openai_api import (
    chat_reply,
    chat_request,
    completion_reply,
    completion_requests,
    embed_request,
    embedding_reply,
)
from ingot.daemon.http.openai_schema import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from ingot.proto.ingot.v1 import common_pb2, inference_pb2

from .lines import CHAT, COMPLETIONS, EMBEDDINGS

__all__ = ["RETRYABLE", "CallFailed", "Calls", "Outcome", "Prepared", "check_body", "execute", "prepare"]

# Statuses worth another try: queue full, cancelled by a shutdown, runner died or daemon stopping, deadline.
RETRYABLE = frozenset({429, 499, 503, 504})


class CallFailed(Exception):
    """A call the daemon refused or failed, as the HTTP status the front door would answer."""

    def __init__(self, status: int, message: str, *, code: str | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.fatal = fatal  # the daemon is gone: every further call would fail alike


class Calls(Protocol):
    """Where batch requests run; each method raises CallFailed."""

    def chat(self, request: inference_pb2.ChatRequest) -> list[inference_pb2.ChatResponse]: ...

    def generate(self, request: inference_pb2.GenerateRequest) -> list[inference_pb2.GenerateResponse]: ...

    def embed(self, request: inference_pb2.EmbedRequest) -> inference_pb2.EmbedResponse: ...


@dataclass(frozen=True)
class Prepared:
    url: str
    body: BaseModel  # the validated request body
    messages: tuple[Any, ...]  # what goes to the servicers


@dataclass(frozen=True)
class Outcome:
    """A request's answer: the status and body the endpoint would reply with, and its token counts."""

    status_code: int
    body: dict[str, Any]
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code == 200

    @property
    def retryable(self) -> bool:
        return self.status_code in RETRYABLE


_SCHEMAS: dict[str, type[BaseModel]] = {
    CHAT: ChatCompletionRequest,
    COMPLETIONS: CompletionRequest,
    EMBEDDINGS: EmbeddingRequest,
}


def prepare(url: str, body: dict[str, Any]) -> Prepared:
    """Validate `body` for `url` and build its messages; HttpError (400) when the API would refuse it."""
    try:
        parsed = _SCHEMAS[url].model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None
    if getattr(parsed, "stream", False):
        raise HttpError(400, "stream is not supported in a batch: each result is one reply", param="stream")
    if isinstance(parsed, ChatCompletionRequest):
        messages: tuple[Any, ...] = (chat_request(parsed),)
    elif isinstance(parsed, CompletionRequest):
        messages = tuple(completion_requests(parsed))
    else:
        assert isinstance(parsed, EmbeddingRequest)
        messages = (embed_request(parsed),)
    for message in messages:
        message.options.priority = common_pb2.PRIORITY_BATCH
    return Prepared(url, parsed, messages)


def check_body(url: str, body: dict[str, Any]) -> None:
    """`prepare` for checking input lines (the `lines.Check` shape)."""
    prepare(url, body)


def execute(prepared: Prepared, calls: Calls) -> Outcome:
    """Run one prepared request; failures become the error reply the endpoint would give."""
    created = int(time.time())
    try:
        body = prepared.body
        if isinstance(body, ChatCompletionRequest):
            reply: BaseModel = chat_reply(body, calls.chat(prepared.messages[0]), f"chatcmpl-{uuid.uuid4().hex}", created)
        elif isinstance(body, CompletionRequest):
            replies = [calls.generate(message) for message in prepared.messages]
            reply = completion_reply(body, replies, f"cmpl-{uuid.uuid4().hex}", created)
        else:
            assert isinstance(body, EmbeddingRequest)
            reply = embedding_reply(body, calls.embed(prepared.messages[0]))
    except CallFailed as exc:
        if exc.fatal:
            raise
        return _error(HttpError(exc.status, exc.message, code=exc.code))
    except HttpError as exc:
        return _error(exc)
    data = reply.model_dump(mode="json")
    usage = data.get("usage") or {}
    return Outcome(200, data, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))


def _error(error: HttpError) -> Outcome:
    return Outcome(error.status, openai_error_payload(error))
