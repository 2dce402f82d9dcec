"""The OpenAI-compatible endpoints: chat completions, completions, embeddings and models.

Each handler translates the request into the servicers' messages, runs the
servicer in-process (`ServicerCall`) and translates what comes back; nothing
here loads models or generates text. Streams are server-sent events ending in
`data: [DONE]`; with `stream_options.include_usage` the last event before it
carries `usage` and no choices.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from ingot.proto.ingot.v1 import common_pb2, inference_pb2, models_pb2
from ingot.registry.errors import ReferenceError as InvalidReferenceError
from ingot.registry.reference import Reference

from .calls import ServicerCall
from .errors import HttpError, documented_errors, openai_error_payload
from .openai_schema import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingList,
    EmbeddingRequest,
    ModelList,
    OpenAIErrorBody,
    OpenAIModel,
    ResponseFormat,
)
from .options import Entry, checked_options, keep_alive_text, option_entries, options_message
from .priority import with_priority
from .services import Servicers
from .streams import collect, first_message, peer_of, stream_reply
from .tools import call_arguments_json, openai_call, think_fields, tools_to_proto
from .vectors import as_base64, as_floats, shortened

__all__ = [
    "chat_reply",
    "chat_request",
    "completion_reply",
    "completion_requests",
    "embed_request",
    "embedding_reply",
    "openai_router",
]

FINGERPRINT = "ingot"
_SSE = "text/event-stream"
_DONE = b"data: [DONE]\n\n"
_ROLES = {"developer": "system"}  # OpenAI's newer name for the system role

_ERRORS = documented_errors(
    OpenAIErrorBody,
    bad_field="A bad field or option (`param` names it).",
    not_found="No such model in the daemon's store.",
)


def _streamed(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        **_ERRORS,
        200: {
            "description": description,
            "content": {
                _SSE: {"schema": {"type": "string", "description": "`data: {chunk}` events, then `data: [DONE]`"}}
            },
        },
    }


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def _finish_reason(done_reason: str, called: bool = False) -> str:
    if done_reason == "stop" and called:
        return "tool_calls"
    if done_reason in ("stop", "length"):
        return done_reason
    if done_reason == "cancelled":
        raise HttpError(503, "the request was cancelled: the daemon is shutting down; retry against it once it is back")
    raise HttpError(500, f"generation ended with an unexpected reason {done_reason!r}")


def _usage(metrics: common_pb2.Metrics) -> dict[str, int]:
    return {
        "prompt_tokens": metrics.prompt_eval_count,
        "completion_tokens": metrics.eval_count,
        "total_tokens": metrics.prompt_eval_count + metrics.eval_count,
    }


def _sampling_entries(body: ChatCompletionRequest | CompletionRequest, max_tokens: int | None) -> list[Entry]:
    """OpenAI's own fields, then Ollama options given top-level, then the `options` object (later wins)."""
    entries: list[Entry] = [
        ("temperature", "temperature", body.temperature),
        ("top_p", "top_p", body.top_p),
        ("seed", "seed", body.seed),
        ("stop", "stop", body.stop),
        ("frequency_penalty", "frequency_penalty", body.frequency_penalty),
        ("presence_penalty", "presence_penalty", body.presence_penalty),
        ("max_tokens", "num_predict", max_tokens),
    ]
    entries += option_entries(body.model_extra, only_known=True)
    if body.options is not None and not isinstance(body.options, dict):
        raise HttpError(400, "options must be an object of parameter names and values", param="options")
    entries += option_entries(body.options, prefix="options.")
    return entries


def _check_common(body: ChatCompletionRequest | CompletionRequest) -> None:
    if body.n not in (None, 1):
        raise HttpError(400, f"n={body.n} is not supported: ingot returns one choice per prompt", param="n")


def _response_format(value: ResponseFormat | None) -> str:
    if value is None or value.type == "text":
        return ""
    if value.type == "json_object":
        return "json"
    schema = value.json_schema.json_schema if value.json_schema is not None else None
    if not schema:
        raise HttpError(
            400, "response_format of type json_schema needs json_schema.schema", param="response_format.json_schema"
        )
    return json.dumps(schema)


def _message_text(content: Any, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for index, part in enumerate(content):
        if part.type != "text":
            raise HttpError(
                400, f"content parts of type {part.type!r} are not supported; send text", param=f"{param}[{index}]"
            )
        texts.append(part.text or "")
    return "".join(texts)


_EFFORTS: dict[str, bool | str] = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high"}


def _think(body: ChatCompletionRequest) -> tuple[bool | None, str]:
    if body.think is not None:
        return think_fields(body.think)
    if body.reasoning_effort is None:
        return None, ""
    effort = _EFFORTS.get(body.reasoning_effort.strip().lower())
    if effort is None:
        raise HttpError(400, f"reasoning_effort {body.reasoning_effort!r}: use none, minimal, low, medium or high",
                        param="reasoning_effort")
    return (effort, "") if isinstance(effort, bool) else (None, effort)


def _tool_choice(body: ChatCompletionRequest) -> common_pb2.ToolChoice:
    choice = body.tool_choice
    if choice is None or choice == "auto":
        return common_pb2.ToolChoice(mode=common_pb2.ToolChoice.AUTO)
    if choice == "none":
        return common_pb2.ToolChoice(mode=common_pb2.ToolChoice.NONE)
    if choice == "required":
        return common_pb2.ToolChoice(mode=common_pb2.ToolChoice.REQUIRED)
    return common_pb2.ToolChoice(mode=common_pb2.ToolChoice.FUNCTION, function=choice.function.name)


def _called_name(body: ChatCompletionRequest, before: int, call_id: str | None) -> str:
    """The function a tool result answers, found by its call id (as Ollama does)."""
    if not call_id:
        return ""
    for item in reversed(body.messages[:before]):
        for call in item.tool_calls or ():
            if call.id == call_id:
                return call.function.name
    return ""


def _message(body: ChatCompletionRequest, index: int) -> common_pb2.ChatMessage:
    item = body.messages[index]
    message = common_pb2.ChatMessage(
        role=_ROLES.get(item.role, item.role),
        content=_message_text(item.content, f"messages[{index}].content"),
        thinking=item.reasoning_content or item.reasoning or "",
        tool_call_id=item.tool_call_id or "",
    )
    for position, call in enumerate(item.tool_calls or ()):
        param = f"messages[{index}].tool_calls[{position}].function.arguments"
        message.tool_calls.append(common_pb2.ToolCall(
            id=call.id or "", index=position, name=call.function.name,
            arguments_json=call_arguments_json(call.function.arguments, param)))
    if item.role == "tool":
        message.tool_name = item.name or _called_name(body, index, item.tool_call_id)
    return message


def chat_request(body: ChatCompletionRequest) -> inference_pb2.ChatRequest:
    _check_common(body)
    if body.logprobs:
        raise HttpError(400, "logprobs are not supported by ingot", param="logprobs")
    if not body.messages:
        raise HttpError(400, "messages must hold at least one message", param="messages")
    max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    options = checked_options(_sampling_entries(body, max_tokens))
    think, think_level = _think(body)
    request = inference_pb2.ChatRequest(
        model=body.model,
        messages=[_message(body, i) for i in range(len(body.messages))],
        options=options_message(options),
        format=_response_format(body.response_format),
        tools=tools_to_proto(body.tools),
        tool_choice=_tool_choice(body),
        think_level=think_level,
    )
    if think is not None:
        request.think = think
    if body.parallel_tool_calls is not None:
        request.parallel_tool_calls = body.parallel_tool_calls
    keep_alive = keep_alive_text(body.keep_alive)
    if keep_alive is not None:
        request.keep_alive = keep_alive
    return request


def completion_requests(body: CompletionRequest) -> list[inference_pb2.GenerateRequest]:
    _check_common(body)
    if body.echo:
        raise HttpError(400, "echo is not supported by ingot", param="echo")
    if body.suffix:
        raise HttpError(400, "suffix (fill-in-the-middle) is not supported by ingot", param="suffix")
    if body.logprobs is not None:
        raise HttpError(400, "logprobs are not supported by ingot", param="logprobs")
    prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    if not prompts:
        raise HttpError(400, "prompt must be a text or a non-empty list of texts", param="prompt")
    if body.stream and len(prompts) > 1:
        raise HttpError(400, "a streamed completion takes one prompt; send the others separately", param="prompt")
    options = options_message(checked_options(_sampling_entries(body, body.max_tokens)))
    keep_alive = keep_alive_text(body.keep_alive)
    requests = []
    for text in prompts:
        request = inference_pb2.GenerateRequest(
            model=body.model, prompt=text, raw=body.raw is not False, options=options
        )
        if keep_alive is not None:
            request.keep_alive = keep_alive
        requests.append(request)
    return requests


class _SseEnding:
    """How every OpenAI stream ends: `data: [DONE]`, after an error event when it failed."""

    def end(self) -> list[bytes]:
        return [_DONE]

    def error(self, error: HttpError) -> list[bytes]:
        return [_sse(openai_error_payload(error)), _DONE]


class _ChatStream(_SseEnding):
    """Writes `chat.completion.chunk` events."""

    def __init__(self, ident: str, created: int, model: str, include_usage: bool) -> None:
        self._head = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                      "system_fingerprint": FINGERPRINT}
        self._include_usage = include_usage
        self._role_sent = False
        self._calls = 0

    def _event(self, delta: dict[str, Any], finish: str | None) -> bytes:
        payload: dict[str, Any] = {
            **self._head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            payload["usage"] = None
        return _sse(payload)

    def _deltas(self, reply: common_pb2.ChatMessage) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = []
        if reply.thinking:
            deltas.append({"reasoning_content": reply.thinking})
        if reply.content:
            deltas.append({"content": reply.content})
        for call in reply.tool_calls:
            # As OpenAI streams a call: index, id, type and name first with empty arguments, then the arguments.
            index = self._calls
            self._calls += 1
            deltas.append({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                           "function": {"name": call.name, "arguments": ""}}]})
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": call.arguments_json}}]})
        if not self._role_sent:
            self._role_sent = True
            first = deltas[0] if deltas else {"content": ""}
            deltas[:1] = [{"role": "assistant", **first}]
        return deltas

    def message(self, message: inference_pb2.ChatResponse) -> list[bytes]:
        out = [self._event(delta, None) for delta in self._deltas(message.message)]
        if message.done:
            out.append(self._event({}, _finish_reason(message.done_reason, self._calls > 0)))
            if self._include_usage:
                out.append(_sse({**self._head, "choices": [], "usage": _usage(message.metrics)}))
        return out


class _CompletionStream(_SseEnding):
    """Writes `text_completion` events."""

    def __init__(self, ident: str, created: int, model: str, include_usage: bool) -> None:
        self._head = {"id": ident, "object": "text_completion", "created": created, "model": model,
                      "system_fingerprint": FINGERPRINT}
        self._include_usage = include_usage

    def message(self, message: inference_pb2.GenerateResponse) -> list[bytes]:
        finish = _finish_reason(message.done_reason) if message.done else None
        if not message.response and finish is None:
            return []
        payload: dict[str, Any] = {
            **self._head,
            "choices": [{"index": 0, "text": message.response, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            payload["usage"] = None
        out = [_sse(payload)]
        if message.done and self._include_usage:
            out.append(_sse({**self._head, "choices": [], "usage": _usage(message.metrics)}))
        return out


def _vector(values: Any, dimensions: int | None, encoding: str | None) -> list[float] | str:
    vector = shortened(values, dimensions)
    return as_base64(vector) if encoding == "base64" else as_floats(vector)


def embed_request(body: EmbeddingRequest) -> inference_pb2.EmbedRequest:
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts:
        raise HttpError(400, "input must be a text or a non-empty list of texts", param="input")
    if body.dimensions is not None and body.dimensions < 1:
        raise HttpError(400, "dimensions must be at least 1", param="dimensions")
    if body.options is not None and not isinstance(body.options, dict):
        raise HttpError(400, "options must be an object of parameter names and values", param="options")
    options = checked_options(option_entries(body.model_extra, only_known=True)
                              + option_entries(body.options, prefix="options."))
    embed = inference_pb2.EmbedRequest(model=body.model, input=texts, options=options_message(options))
    keep_alive = keep_alive_text(body.keep_alive)
    if keep_alive is not None:
        embed.keep_alive = keep_alive
    return embed


# Replies from the servicers' messages: shared by the routes and by batches (ingot.daemon.batch).


def chat_reply(
    body: ChatCompletionRequest, messages: list[inference_pb2.ChatResponse], ident: str, created: int
) -> ChatCompletion:
    final = messages[-1]
    calls = [openai_call(c) for m in messages for c in m.message.tool_calls]
    content = "".join(m.message.content for m in messages)
    thinking = "".join(m.message.thinking for m in messages)
    return ChatCompletion(
        id=ident,
        created=created,
        model=body.model,
        system_fingerprint=FINGERPRINT,
        choices=[{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": content if content or not calls else None,
                "reasoning_content": thinking or None,
                "tool_calls": calls or None,
            },
            "finish_reason": _finish_reason(final.done_reason, bool(calls)),
        }],
        usage=_usage(final.metrics),
    )


def completion_reply(
    body: CompletionRequest, replies: list[list[inference_pb2.GenerateResponse]], ident: str, created: int
) -> Completion:
    """One choice per prompt, from each prompt's messages."""
    choices = []
    prompt_tokens = completion_tokens = 0
    for index, messages in enumerate(replies):
        final = messages[-1]
        choices.append({
            "index": index,
            "text": "".join(m.response for m in messages),
            "finish_reason": _finish_reason(final.done_reason),
        })
        prompt_tokens += final.metrics.prompt_eval_count
        completion_tokens += final.metrics.eval_count
    return Completion(
        id=ident,
        created=created,
        model=body.model,
        system_fingerprint=FINGERPRINT,
        choices=choices,
        usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
               "total_tokens": prompt_tokens + completion_tokens},
    )


def embedding_reply(body: EmbeddingRequest, reply: inference_pb2.EmbedResponse) -> EmbeddingList:
    return EmbeddingList(
        data=[
            {"index": i, "embedding": _vector(e.values, body.dimensions, body.encoding_format)}
            for i, e in enumerate(reply.embeddings)
        ],
        model=body.model,
        usage={"prompt_tokens": reply.metrics.prompt_eval_count, "total_tokens": reply.metrics.prompt_eval_count},
    )


def _owned_by(name: str) -> str:
    try:
        return Reference.parse(name).namespace
    except InvalidReferenceError:
        return "library"


def _same_model(listed: str, wanted: Reference) -> bool:
    try:
        return Reference.parse(listed).tagged == wanted.tagged
    except InvalidReferenceError:
        return False


def openai_router(servicers: Servicers) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

    @router.post(
        "/chat/completions",
        response_model=ChatCompletion,
        responses=_streamed("A chat completion, or with `stream: true` a stream of `chat.completion.chunk` events."),
        summary="Chat completion",
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        call: ServicerCall[inference_pb2.ChatResponse] = ServicerCall(
            servicers.inference.Chat, with_priority(chat_request(body), request), peer=peer_of(request)
        )
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            first = await first_message(request, call)
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return stream_reply(first, call, _ChatStream(ident, created, body.model, include_usage), media_type=_SSE)
        messages = await collect(request, call)
        return JSONResponse(chat_reply(body, messages, ident, created).model_dump(mode="json"))

    @router.post(
        "/completions",
        response_model=Completion,
        responses=_streamed("A completion, or with `stream: true` a stream of `text_completion` events."),
        summary="Text completion",
    )
    async def completions(body: CompletionRequest, request: Request) -> Response:
        requests = [with_priority(r, request) for r in completion_requests(body)]
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        calls: list[ServicerCall[inference_pb2.GenerateResponse]] = [
            ServicerCall(servicers.inference.Generate, r, peer=peer_of(request))
            for r in requests
        ]
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            first = await first_message(request, calls[0])
            return stream_reply(
                first, calls[0], _CompletionStream(ident, created, body.model, include_usage), media_type=_SSE
            )
        replies = []
        try:
            # The prompts run side by side, each in its own slot.
            for call in calls:
                replies.append(await collect(request, call))
        finally:
            for call in calls:
                call.cancel()
        return JSONResponse(completion_reply(body, replies, ident, created).model_dump(mode="json"))

    @router.post("/embeddings", response_model=EmbeddingList, responses=_ERRORS, summary="Embeddings")
    async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
        call: ServicerCall[inference_pb2.EmbedResponse] = ServicerCall(
            servicers.inference.Embed, with_priority(embed_request(body), request), peer=peer_of(request)
        )
        (reply,) = await collect(request, call)
        return JSONResponse(embedding_reply(body, reply).model_dump(mode="json"))

    async def _listed(request: Request) -> list[models_pb2.ModelSummary]:
        call: ServicerCall[models_pb2.ListResponse] = ServicerCall(
            servicers.models.List, models_pb2.ListRequest(), peer=peer_of(request)
        )
        (reply,) = await collect(request, call)
        return list(reply.models)

    def _model(summary: models_pb2.ModelSummary) -> OpenAIModel:
        return OpenAIModel(id=summary.name, created=summary.modified_at.seconds, owned_by=_owned_by(summary.name))

    @router.get("/models", response_model=ModelList, responses={401: _ERRORS[401]}, summary="List models")
    async def list_models(request: Request) -> Response:
        listed = ModelList(data=[_model(s) for s in await _listed(request)])
        return JSONResponse(listed.model_dump(mode="json"))

    @router.get(
        "/models/{model:path}",
        response_model=OpenAIModel,
        responses={401: _ERRORS[401], 404: _ERRORS[404]},
        summary="Describe a model",
    )
    async def get_model(model: str, request: Request) -> Response:
        missing = HttpError(404, f"model {model!r} not found; 'ingot list' shows the local models",
                            param="model", code="model_not_found")
        try:
            wanted = Reference.parse(model)
        except InvalidReferenceError:
            raise missing from None
        for summary in await _listed(request):
            if _same_model(summary.name, wanted):
                return JSONResponse(_model(summary).model_dump(mode="json"))
        raise missing

    return router
