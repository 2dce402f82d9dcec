"""HTTP statuses and error bodies: the one place an error becomes an HTTP response.

Servicer failures arrive as a gRPC status (mapped from the exception once, in
`ingot.daemon.status`) and become:

| gRPC status          | HTTP | typical cause                                          |
|----------------------|------|--------------------------------------------------------|
| INVALID_ARGUMENT     | 400  | bad option, reference, keep_alive, format; prompt too long |
| OUT_OF_RANGE         | 400  |                                                        |
| UNAUTHENTICATED      | 401  |                                                        |
| PERMISSION_DENIED    | 403  | the registry refused the daemon's credentials          |
| NOT_FOUND            | 404  | no such model in the store (or in the registry)        |
| ALREADY_EXISTS       | 409  |                                                        |
| ABORTED              | 409  |                                                        |
| CANCELLED            | 499  | the client went away (nobody reads this reply)         |
| RESOURCE_EXHAUSTED   | 429  | the model's request queue is full                      |
| RESOURCE_EXHAUSTED, reason template_budget | 400 | the model's template went over its render budget |
| UNIMPLEMENTED        | 501  |                                                        |
| UNAVAILABLE          | 503  | runner died, daemon shutting down, store busy, registry unreachable |
| FAILED_PRECONDITION  | 503  | the model does not fit in memory or cannot be loaded   |
| DEADLINE_EXCEEDED    | 504  |                                                        |
| DATA_LOSS, INTERNAL, UNKNOWN | 500 |                                                   |

OpenAI endpoints (`/v1/...`) answer in OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`; every other path in
Ollama's, `{"error": "message"}`. 429 and 503 carry `Retry-After`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingot.daemon.status import REASON_KEY, TEMPLATE_BUDGET

from .calls import CallAborted

__all__ = [
    "documented_errors",
    "HttpError",
    "error_response",
    "from_aborted",
    "handle_http_error",
    "handle_starlette_error",
    "handle_validation_error",
    "is_openai_path",
    "ollama_error_payload",
    "openai_error_payload",
    "validation_error",
]

_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.FAILED_PRECONDITION: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    429: "rate_limit_error",
}

_DEFAULT_CODES = {
    401: "invalid_api_key",
    429: "queue_full",
    503: "unavailable",
}

_RETRY_AFTER_SECONDS = "1"


class HttpError(Exception):
    """An error reply: status, one-line message, and for OpenAI the offending parameter and a code."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code if code is not None else _DEFAULT_CODES.get(status)


_OPTION = re.compile(r"option '([^']+)': ")


def from_aborted(error: CallAborted) -> HttpError:
    if (REASON_KEY, TEMPLATE_BUDGET) in error.trailing:
        # Not "try again later" (429): this request will fail the same way every time.
        return HttpError(400, error.message, code="template_budget_exceeded")
    status = _STATUS.get(error.code, 500)
    code = "model_not_found" if error.code is grpc.StatusCode.NOT_FOUND else None
    # A servicer's InvalidOptionError names its field first ("option 'tools[0].function.name': ...").
    named = _OPTION.match(error.message) if status == 400 else None
    return HttpError(status, error.message, param=named.group(1) if named else None, code=code)


def _json_error(error: Any, body: Any) -> HttpError:
    """A body that is not JSON: the line and column in the message, no `param` (OpenAI says null too)."""
    offset = error.get("loc", ("body", 0))[-1]
    reason = (error.get("ctx") or {}).get("error") or "invalid JSON"
    where = ""
    if isinstance(offset, int) and isinstance(body, (str, bytes)):
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        where = f" at line {line}, column {column}"
    return HttpError(
        400,
        f"the request body is not valid JSON{where}: {reason}; send a JSON object with "
        "'Content-Type: application/json'",
    )


def validation_error(errors: Sequence[Any], body: Any = None) -> HttpError:
    """FastAPI's request validation errors as one 400 naming the first bad field."""
    if errors and errors[0].get("type") == "json_invalid":
        return _json_error(errors[0], body)
    parts: list[str] = []
    param: str | None = None
    for error in errors[:3]:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        where = ".".join(location) or "body"
        param = param or where
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return HttpError(400, "invalid request: " + "; ".join(parts) + more, param=param)


def is_openai_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def openai_error_payload(error: HttpError) -> dict[str, Any]:
    kind = _OPENAI_TYPES.get(error.status, "server_error" if error.status >= 500 else "invalid_request_error")
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}


def ollama_error_payload(error: HttpError) -> dict[str, Any]:
    return {"error": error.message}


def error_response(path: str, error: HttpError) -> JSONResponse:
    payload = openai_error_payload(error) if is_openai_path(path) else ollama_error_payload(error)
    headers = {"Retry-After": _RETRY_AFTER_SECONDS} if error.status in (429, 503) else None
    return JSONResponse(payload, status_code=error.status, headers=headers)


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HttpError)
    return error_response(request.url.path, exc)


def _not_json(content_type: str) -> HttpError:
    return HttpError(
        400,
        f"the request body must be JSON sent with 'Content-Type: application/json', not {content_type!r} "
        "(curl -d sends a form unless given -H 'Content-Type: application/json')",
        param=None,
    )


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    content_type = request.headers.get("content-type", "")
    whole_body = bool(errors) and tuple(errors[0].get("loc", ())) == ("body",)
    if whole_body and content_type and "json" not in content_type.split(";")[0].lower():
        return error_response(request.url.path, _not_json(content_type))
    return error_response(request.url.path, validation_error(errors, exc.body))


async def handle_starlette_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path} (see /docs or /openapi.json)"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    response = error_response(request.url.path, HttpError(exc.status_code, message))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def documented_errors(body: type, *, bad_field: str, not_found: str) -> dict[int | str, dict[str, Any]]:
    """The error replies an inference route may give, for its OpenAPI entry, in one API's error `body` shape."""
    return {
        400: {"model": body, "description": bad_field},
        401: {"model": body, "description": "A token is configured and the request did not carry it."},
        404: {"model": body, "description": not_found},
        429: {"model": body, "description": "The model's request queue is full; retry later."},
        503: {"model": body, "description": "The model cannot run now (runner died, out of memory, shutting down)."},
    }
