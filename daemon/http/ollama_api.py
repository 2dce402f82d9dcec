"""The Ollama-compatible endpoints (`/api/...`), so tools written for Ollama work against ingot.

Streams are NDJSON, one object per line; the last generation line carries
Ollama's counters (total_duration, load_duration, prompt_eval_count,
prompt_eval_duration, eval_count, eval_duration, done_reason). An error after
the stream started arrives as a last line `{"error": "..."}`. As everywhere
in this package, the work is done by the daemon's servicers, called in-process.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf.timestamp_pb2 import Timestamp
from ingot.daemon.keepalive import parse_keep_alive
from ingot.daemon.prompt import compiled
from ingot.daemon.replies import format_of
from ingot.modelfile.template import DEFAULT_TEMPLATE_TEXT, TemplateError
from ingot.proto.ingot.v1 import common_pb2, inference_pb2, models_pb2, runtime_pb2
from ingot.registry.errors import ReferenceError as InvalidReferenceError
from ingot.registry.gguf_info import ArraySummary
from ingot.registry.reference import DEFAULT_TAG, Reference

from .calls import ServicerCall
from .errors import HttpError, documented_errors, ollama_error_payload
from .ollama_schema import (
    ChatRequest,
    ChatResponse,
    CopyRequest,
    DeleteRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    ListResponse,
    OllamaErrorBody,
    ProcessResponse,
    ProgressResponse,
    PullRequest,
    PushRequest,
    ShowRequest,
    ShowResponse,
    VersionResponse,
)
from .options import checked_options, format_text, keep_alive_text, option_entries, options_message
from .priority import with_priority
from .services import Servicers
from .streams import collect, first_message, peer_of, stream_reply
from .tools import call_arguments_json, ollama_call, think_fields, tools_to_proto
from .vectors import as_floats, shortened

__all__ = ["ollama_router"]

_NDJSON = "application/x-ndjson"
_PARAMETER_COLUMN = 30  # `ollama show --parameters` aligns values at this column

_ERRORS = documented_errors(
    OllamaErrorBody,
    bad_field="A bad field or option (the message names it).",
    not_found="No such model.",
)
_STORE_ERRORS = {code: _ERRORS[code] for code in (400, 401, 404)}


def _streamed(description: str, line: type) -> dict[int | str, dict[str, Any]]:
    return {
        **_ERRORS,
        200: {
            "description": description,
            "content": {_NDJSON: {"schema": {"$ref": f"#/components/schemas/{line.__name__}"}}},
        },
    }


def _line(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _rfc3339(stamp: Timestamp) -> str | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(tzinfo=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _model_name(body: Any) -> str:
    name = body.model or body.name
    if not name or not name.strip():
        raise HttpError(400, "model is required, e.g. {\"model\": \"llama3\"}", param="model")
    return str(name)


def _options(body: Any) -> common_pb2.Options:
    if body.options is not None and not isinstance(body.options, dict):
        raise HttpError(400, "options must be an object of parameter names and values", param="options")
    return options_message(checked_options(option_entries(body.options, prefix="options.")))


def _refuse(flag: Any, field: str, what: str) -> None:
    if flag:
        raise HttpError(400, f"{field}: {what} is not supported by ingot", param=field)


def _set_think(message: Any, value: bool | str | None) -> None:
    think, level = think_fields(value)
    if think is not None:
        message.think = think
    message.think_level = level


def _chat_message(item: Any, index: int) -> common_pb2.ChatMessage:
    _refuse(item.images, f"messages[{index}].images", "image input")
    message = common_pb2.ChatMessage(
        role=item.role, content=item.content or "", thinking=item.thinking or "", tool_name=item.tool_name or "",
        tool_call_id=item.tool_call_id or "",
    )
    for position, call in enumerate(item.tool_calls or ()):
        param = f"messages[{index}].tool_calls[{position}].function.arguments"
        message.tool_calls.append(common_pb2.ToolCall(
            id=call.id or "", index=call.function.index if call.function.index is not None else position,
            name=call.function.name, arguments_json=call_arguments_json(call.function.arguments, param)))
    return message


def _reply_message(pieces: list[common_pb2.ChatMessage]) -> dict[str, Any]:
    """Ollama's `message`: thinking and tool_calls only when there are some."""
    out: dict[str, Any] = {"role": "assistant", "content": "".join(p.content for p in pieces)}
    thinking = "".join(p.thinking for p in pieces)
    if thinking:
        out["thinking"] = thinking
    calls = [ollama_call(c) for p in pieces for c in p.tool_calls]
    if calls:
        out["tool_calls"] = calls
    return out


def _capabilities(template: str) -> list[str]:
    """Ollama's capability names: tools and thinking as the template shows them."""
    found = ["completion", "embedding"]
    try:
        fmt = format_of(compiled(template or DEFAULT_TEMPLATE_TEXT, "TEMPLATE"))
    except TemplateError:
        return found
    if fmt.tools:
        found.append("tools")
    if fmt.thinking is not None:
        found.append("thinking")
    return found


def _final_fields(done_reason: str, metrics: common_pb2.Metrics) -> dict[str, Any]:
    return {
        "done_reason": done_reason,
        "total_duration": metrics.total_duration_ns,
        "load_duration": metrics.load_duration_ns,
        "prompt_eval_count": metrics.prompt_eval_count,
        "prompt_eval_duration": metrics.prompt_eval_duration_ns,
        "eval_count": metrics.eval_count,
        "eval_duration": metrics.eval_duration_ns,
    }


def _unloads(keep_alive: str | None) -> bool:
    return keep_alive is not None and parse_keep_alive(keep_alive).seconds == 0


def _done_reason(message: Any, unloads: bool) -> str:
    # The servicers answer an empty prompt with "load"; Ollama says "unload" when keep_alive is 0.
    return "unload" if message.done_reason == "load" and unloads else message.done_reason


def _display_name(short: str) -> str:
    """Ollama always shows the tag (`llama3:latest`); a short reference leaves the default one out."""
    try:
        ref = Reference.parse(short)
    except InvalidReferenceError:
        return short
    if ref.digest is None and ref.tag == DEFAULT_TAG and not short.endswith(f":{DEFAULT_TAG}"):
        return f"{short}:{DEFAULT_TAG}"
    return short


def _bare_digest(digest: str) -> str:
    return digest.split(":", 1)[1] if digest.startswith("sha256:") else digest


def _details(details: models_pb2.ModelDetails) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": details.format or "gguf",
        "family": details.family,
        "families": [details.family] if details.family else None,
        "parameter_size": details.parameter_size,
        "quantization_level": details.quantization_level,
    }


def _parameters_text(options: common_pb2.Options) -> str:
    lines = []
    for field, value in options.ListFields():
        values = list(value) if field.name == "stop" else [value]
        for item in values:
            if isinstance(item, str):
                shown = json.dumps(item)
            else:
                shown = str(item).lower() if isinstance(item, bool) else str(item)
            lines.append(f"{field.name:<{_PARAMETER_COLUMN}} {shown}")
    return "\n".join(lines)


def _model_info(metadata: Any) -> dict[str, Any]:
    """GGUF header metadata the way `ollama show` lists it; long arrays (the vocabulary) are left empty."""
    info: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, ArraySummary):
            info[key] = []
        elif isinstance(value, tuple):
            info[key] = list(value)
        elif isinstance(value, float) and not math.isfinite(value):
            info[key] = None
        else:
            info[key] = value
    return info




class _GenerateStream:
    def __init__(self, model: str, unloads: bool) -> None:
        self._model = model
        self._unloads = unloads

    def message(self, message: inference_pb2.GenerateResponse) -> list[bytes]:
        payload: dict[str, Any] = {
            "model": self._model, "created_at": _now(), "response": message.response, "done": message.done,
        }
        if message.thinking:
            payload["thinking"] = message.thinking
        if message.done:
            payload.update(_final_fields(_done_reason(message, self._unloads), message.metrics))
        return [_line(payload)]

    def end(self) -> list[bytes]:
        return []

    def error(self, error: HttpError) -> list[bytes]:
        return [_line(ollama_error_payload(error))]


class _ChatStream(_GenerateStream):
    def message(self, message: inference_pb2.ChatResponse) -> list[bytes]:  # type: ignore[override]
        payload: dict[str, Any] = {
            "model": self._model,
            "created_at": _now(),
            "message": _reply_message([message.message]),
            "done": message.done,
        }
        if message.done:
            payload.update(_final_fields(_done_reason(message, self._unloads), message.metrics))
        return [_line(payload)]


class _ProgressStream:
    def message(self, message: common_pb2.Progress) -> list[bytes]:
        return [_line(_progress(message))]

    def end(self) -> list[bytes]:
        return []

    def error(self, error: HttpError) -> list[bytes]:
        return [_line(ollama_error_payload(error))]


def _progress(message: common_pb2.Progress) -> dict[str, Any]:
    payload: dict[str, Any] = {"status": message.status}
    if message.digest:
        payload["digest"] = message.digest
    if message.total:
        payload["total"] = message.total
        payload["completed"] = message.completed
    return payload


def ollama_router(servicers: Servicers) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Ollama-compatible"])

    async def answer(
        request: Request,
        method: Callable[..., Any],
        message: Any,
        *,
        model: str,
        keep_alive: Any,
        stream: bool | None,
        renderer: Callable[[str, bool], Any],
        whole: Callable[[list[Any]], dict[str, Any]],
    ) -> Response:
        """Run a Generate or Chat call: NDJSON lines, or with `stream: false` one JSON reply."""
        keep_alive_value = keep_alive_text(keep_alive)
        if keep_alive_value is not None:
            message.keep_alive = keep_alive_value
        unloads = _unloads(keep_alive_value)
        call: ServicerCall[Any] = ServicerCall(
            method, with_priority(message, request), peer=peer_of(request)
        )
        if stream is not False:
            first = await first_message(request, call)
            return stream_reply(first, call, renderer(model, unloads), media_type=_NDJSON)
        replies = await collect(request, call)
        final = replies[-1]
        reply: dict[str, Any] = {"model": model, "created_at": _now(), **whole(replies), "done": True}
        reply.update(_final_fields(_done_reason(final, unloads), final.metrics))
        return JSONResponse(reply)

    @router.post(
        "/generate",
        response_model=GenerateResponse,
        responses=_streamed("One JSON reply with `stream: false`; else NDJSON lines, the last with counters.",
                            GenerateResponse),
        summary="Generate a completion",
    )
    async def generate(body: GenerateRequest, request: Request) -> Response:
        model = _model_name(body)
        _refuse(body.suffix, "suffix", "fill-in-the-middle")
        _refuse(body.context, "context", "a token context (send the conversation to /api/chat instead)")
        _refuse(body.images, "images", "image input")
        message = inference_pb2.GenerateRequest(
            model=model, prompt=body.prompt or "", raw=bool(body.raw), options=_options(body),
            format=format_text(body.format),
        )
        _set_think(message, body.think)
        if body.system is not None:
            message.system = body.system
        if body.template is not None:
            message.template = body.template
        return await answer(
            request, servicers.inference.Generate, message, model=model, keep_alive=body.keep_alive,
            stream=body.stream, renderer=_GenerateStream,
            whole=lambda replies: {
                "response": "".join(m.response for m in replies),
                **({"thinking": t} if (t := "".join(m.thinking for m in replies)) else {}),
            },
        )

    @router.post(
        "/chat",
        response_model=ChatResponse,
        responses=_streamed("One JSON reply with `stream: false`; else NDJSON lines, the last with counters.",
                            ChatResponse),
        summary="Chat",
    )
    async def chat(body: ChatRequest, request: Request) -> Response:
        model = _model_name(body)
        messages = [_chat_message(item, index) for index, item in enumerate(body.messages or ())]
        message = inference_pb2.ChatRequest(
            model=model, messages=messages, options=_options(body), format=format_text(body.format),
            tools=tools_to_proto(body.tools),
        )
        _set_think(message, body.think)
        return await answer(
            request, servicers.inference.Chat, message, model=model, keep_alive=body.keep_alive,
            stream=body.stream, renderer=_ChatStream,
            whole=lambda replies: {"message": _reply_message([m.message for m in replies])},
        )

    async def _embed(request: Request, message: inference_pb2.EmbedRequest) -> inference_pb2.EmbedResponse:
        call: ServicerCall[inference_pb2.EmbedResponse] = ServicerCall(
            servicers.inference.Embed, with_priority(message, request), peer=peer_of(request)
        )
        (reply,) = await collect(request, call)
        return reply

    @router.post("/embed", response_model=EmbedResponse, responses=_ERRORS, summary="Embeddings")
    async def embed(body: EmbedRequest, request: Request) -> Response:
        model = _model_name(body)
        if body.dimensions is not None and body.dimensions < 1:
            raise HttpError(400, "dimensions must be at least 1", param="dimensions")
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        message = inference_pb2.EmbedRequest(model=model, input=texts, options=_options(body))
        if body.truncate is not None:
            message.truncate = body.truncate
        keep_alive = keep_alive_text(body.keep_alive)
        if keep_alive is not None:
            message.keep_alive = keep_alive
        reply = await _embed(request, message)
        return JSONResponse({
            "model": model,
            "embeddings": [as_floats(shortened(e.values, body.dimensions)) for e in reply.embeddings],
            "total_duration": reply.metrics.total_duration_ns,
            "load_duration": reply.metrics.load_duration_ns,
            "prompt_eval_count": reply.metrics.prompt_eval_count,
        })

    @router.post("/embeddings", response_model=EmbeddingsResponse, responses=_ERRORS,
                 summary="One embedding (legacy; use /api/embed)")
    async def embeddings(body: EmbeddingsRequest, request: Request) -> Response:
        model = _model_name(body)
        if not body.prompt:
            return JSONResponse({"embedding": []})
        # The legacy endpoint returns the raw pooled vector, not a unit one.
        message = inference_pb2.EmbedRequest(model=model, input=[body.prompt], options=_options(body), normalize=False)
        keep_alive = keep_alive_text(body.keep_alive)
        if keep_alive is not None:
            message.keep_alive = keep_alive
        reply = await _embed(request, message)
        return JSONResponse({"embedding": [float(v) for v in reply.embeddings[0].values]})

    async def _unary(request: Request, method: Any, message: Any) -> Any:
        call: ServicerCall[Any] = ServicerCall(method, message, peer=peer_of(request))
        (reply,) = await collect(request, call)
        return reply

    async def _listed(request: Request) -> list[models_pb2.ModelSummary]:
        reply = await _unary(request, servicers.models.List, models_pb2.ListRequest())
        return list(reply.models)

    @router.get("/tags", response_model=ListResponse, responses={401: _ERRORS[401]}, summary="List local models")
    async def tags(request: Request) -> Response:
        models = []
        for summary in await _listed(request):
            name = _display_name(summary.name)
            models.append({
                "name": name,
                "model": name,
                "modified_at": _rfc3339(summary.modified_at),
                "size": summary.size,
                "digest": _bare_digest(summary.digest),
                "details": _details(summary.details),
            })
        return JSONResponse({"models": models})

    @router.post("/show", response_model=ShowResponse, responses=_STORE_ERRORS, summary="Show a model")
    async def show(body: ShowRequest, request: Request) -> Response:
        model = _model_name(body)
        reply = await _unary(request, servicers.models.Show, models_pb2.ShowRequest(model=model))
        # The header metadata is read through the same catalog the servicer used (cached per weights digest).
        info = await asyncio.to_thread(lambda: servicers.catalog.info(servicers.catalog.package(model)))
        capabilities = await asyncio.to_thread(_capabilities, reply.template or info.chat_template or "")
        return JSONResponse({
            "modelfile": reply.modelfile,
            "parameters": _parameters_text(reply.parameters),
            "template": reply.template,
            "system": reply.system,
            "license": "\n\n".join(reply.license),
            "details": _details(reply.details),
            "model_info": _model_info(info.metadata),
            "capabilities": capabilities,
            "messages": [{"role": m.role, "content": m.content} for m in reply.messages],
        })

    @router.get("/ps", response_model=ProcessResponse, responses={401: _ERRORS[401]}, summary="List loaded models")
    async def ps(request: Request) -> Response:
        running = await _unary(request, servicers.runtime.ListRunning, runtime_pb2.ListRunningRequest())
        details = {s.name: s.details for s in await _listed(request)}
        models = []
        for loaded in running.models:
            name = _display_name(loaded.name)
            models.append({
                "name": name,
                "model": name,
                "size": loaded.size_bytes,
                "digest": _bare_digest(loaded.digest),
                "details": _details(details.get(loaded.name, models_pb2.ModelDetails())),
                "expires_at": None if loaded.keep_forever else _rfc3339(loaded.expires_at),
                "size_vram": loaded.vram_bytes,
                "context_length": loaded.context_length,
            })
        return JSONResponse({"models": models})

    async def _transfer(request: Request, method: Any, message: Any, stream: bool | None) -> Response:
        call: ServicerCall[common_pb2.Progress] = ServicerCall(method, message, peer=peer_of(request))
        if stream is not False:
            first = await first_message(request, call)
            return stream_reply(first, call, _ProgressStream(), media_type=_NDJSON)
        progress = await collect(request, call)
        return JSONResponse(_progress(progress[-1]))

    @router.post(
        "/pull",
        response_model=ProgressResponse,
        responses={**_streamed("Progress lines, the last `{\"status\": \"success\"}`.", ProgressResponse),
                   403: {"model": OllamaErrorBody, "description": "The registry refused the credentials."}},
        summary="Pull a model from its registry",
    )
    async def pull(body: PullRequest, request: Request) -> Response:
        message = models_pb2.PullRequest(model=_model_name(body), insecure=bool(body.insecure))
        return await _transfer(request, servicers.models.Pull, message, body.stream)

    @router.post(
        "/push",
        response_model=ProgressResponse,
        responses={**_streamed("Progress lines, the last `{\"status\": \"success\"}`.", ProgressResponse),
                   403: {"model": OllamaErrorBody, "description": "The registry refused the credentials."}},
        summary="Push a model to its registry",
    )
    async def push(body: PushRequest, request: Request) -> Response:
        message = models_pb2.PushRequest(model=_model_name(body), insecure=bool(body.insecure))
        return await _transfer(request, servicers.models.Push, message, body.stream)

    @router.post("/copy", response_class=Response, responses={200: {"description": "Copied."}, **_STORE_ERRORS},
                 summary="Copy a model (a new tag for the same package)")
    async def copy(body: CopyRequest, request: Request) -> Response:
        await _unary(request, servicers.models.Copy,
                     models_pb2.CopyRequest(source=body.source, destination=body.destination))
        return Response(status_code=200)

    @router.delete("/delete", response_class=Response, responses={200: {"description": "Deleted."}, **_STORE_ERRORS},
                   summary="Delete a model")
    async def delete(body: DeleteRequest, request: Request) -> Response:
        await _unary(request, servicers.models.Delete, models_pb2.DeleteRequest(model=_model_name(body)))
        return Response(status_code=200)

    @router.get("/version", response_model=VersionResponse, responses={401: _ERRORS[401]}, summary="Version")
    async def version(request: Request) -> Response:
        reply = await _unary(request, servicers.runtime.Version, runtime_pb2.VersionRequest())
        return JSONResponse({"version": reply.version})

    return router
