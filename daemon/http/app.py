"""The FastAPI application: OpenAI- and Ollama-compatible routes, health, metrics, auth, error shapes.

`create_app(services, token=...)` builds it around the daemon's catalog and
scheduler. Besides the two API families it serves:

* `GET /health` -- 200 `{"status": "ok"}`, 503 while shutting down; always
  open, also when a token is required, so load balancers need no secret;
* `GET /metrics` -- Prometheus text format (see `ingot.daemon.http.metrics`);
* `GET /openapi.json` and `/docs` -- the API document, kept true by a
  schemathesis run in the test suite;
* `GET /` -- the web page for browsers (`ingot.daemon.http.webpage`), and
  `GET /ui/state`, the JSON it polls.

With a token, every path but /health and the page's static files wants `Authorization: Bearer TOKEN` (what the
openai client sends as its api_key) and answers 401 without it. Before that,
every path answers 403 to a `Host` the daemon does not know (DNS rebinding,
`hosts.py`) and 413 to a body over the cap (`body_limit.py`); see
`ingot.daemon.limits`.
"""

from __future__ import annotations

import hmac
from collections.abc import MutableMapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingot.daemon.auth import TOKEN_ENV
from ingot.daemon.monitoring import Monitoring
from ingot.daemon.limits import ClientLimits, HostPolicy

from .body_limit import BodyLimitMiddleware
from .calls import ClientGone
from .errors import HttpError, error_response, handle_http_error, handle_starlette_error, handle_validation_error
from .hosts import HostCheckMiddleware
from .metrics import ASGIApp, HttpMetrics, Receive, RequestMetricsMiddleware, Scope, Send
from .ollama_api import ollama_router
from .openai_api import openai_router
from .services import HttpServices, Servicers
from .webpage import STATIC_PATHS, web_router

if TYPE_CHECKING:
    from ingot.daemon.batch.jobs import BatchJobs

__all__ = ["create_app"]

_OPEN_PATHS = frozenset({"/health", *STATIC_PATHS})  # the page's files carry no data
_CLIENT_CLOSED_REQUEST = 499  # nginx's code: nobody reads it, but the request metrics and logs do

DESCRIPTION = """\
The ingot daemon over HTTP: OpenAI-compatible (`/v1/...`) and Ollama-compatible (`/api/...`) endpoints,
served by the same scheduler and runners as its gRPC API. Model options that Ollama's own OpenAI endpoint
cannot take (`num_ctx`, ...) are accepted as top-level fields or in an `options` object.
"""


class Health(BaseModel):
    status: str


class TokenAuthMiddleware:
    """Wants `Authorization: Bearer TOKEN` on every path but /health; compared in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        supplied = next((value for name, value in scope["headers"] if name == b"authorization"), None)
        if supplied is None or not hmac.compare_digest(supplied, self._expected):
            message = (
                f"this daemon requires a token: send 'Authorization: Bearer TOKEN' (the value of {TOKEN_ENV})"
                if supplied is None
                else f"the token was rejected; check {TOKEN_ENV}"
            )
            response = error_response(scope["path"], HttpError(401, message))
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _version() -> str:
    try:
        return metadata.version("ingot")
    except metadata.PackageNotFoundError:
        return "unknown"


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document without its 422 responses: request validation errors answer 400 here."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in document.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        schemas: MutableMapping[str, Any] = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
    return app.openapi_schema


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=_CLIENT_CLOSED_REQUEST)


def _batch_jobs(services: HttpServices, servicers: Servicers) -> BatchJobs:
    """/v1/batches jobs over the servicers in-process; started and stopped by `HttpServer`."""
    # Imported here: ingot.daemon.batch imports this package's OpenAI translations.
    from ingot.daemon.batch.inprocess_calls import InProcessCalls
    from ingot.daemon.batch.jobs import BatchJobs

    assert services.home is not None
    return BatchJobs(
        services.home.path("batches"),
        calls=lambda ident: InProcessCalls(servicers.inference, peer=f"batch:{ident}"),
        slots=lambda models: max(len(models), 1) * services.catalog.n_parallel,
    )


def create_app(
    services: HttpServices,
    *,
    token: str | None = None,
    limits: ClientLimits = ClientLimits(),
    listen_host: str = "127.0.0.1",
) -> FastAPI:
    monitoring = services.monitoring or Monitoring()
    monitoring.watch(services.scheduler)
    metrics = monitoring.shared("http", HttpMetrics)
    app = FastAPI(title="ingot", version=_version(), description=DESCRIPTION)
    app.state.stopping = False
    app.state.metrics = metrics
    app.include_router(openai_router(Servicers.over(services, monitoring, api="openai")))
    ollama_servicers = Servicers.over(services, monitoring, api="ollama")
    app.include_router(ollama_router(ollama_servicers))
    app.include_router(web_router(ollama_servicers, monitoring))  # its chat box talks Ollama's /api/chat
    app.state.batch_jobs = None
    if services.home is not None and not services.read_only:  # the Batch API keeps its state in the home
        from .batch_api import batch_router

        app.state.batch_jobs = _batch_jobs(services, Servicers.over(services, monitoring, api="batch"))
        app.include_router(batch_router(app.state.batch_jobs))
    app.add_exception_handler(HttpError, handle_http_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_starlette_error)
    app.add_exception_handler(ClientGone, _client_gone)
    if token:
        app.add_middleware(TokenAuthMiddleware, token=token)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    app.add_middleware(HostCheckMiddleware, policy=HostPolicy(listen_host, limits.allowed_hosts))
    # Added last, so it wraps everything and also counts 401s, 403s and 413s.
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get(
        "/health",
        response_model=Health,
        responses={503: {"model": Health, "description": "The daemon is shutting down."}},
        tags=["ingot"],
        summary="Liveness and readiness",
    )
    async def health() -> Response:
        if app.state.stopping:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics."}},
        tags=["ingot"],
        summary="Prometheus metrics",
    )
    async def prometheus_metrics() -> Response:
        return Response(monitoring.render(), media_type=CONTENT_TYPE_LATEST)

    return app
