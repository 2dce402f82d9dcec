"""Prometheus metrics of the HTTP front door, registered in the daemon's registry (`ingot.daemon.monitoring`).

Counted here, per HTTP request: `ingot_http_requests_total{api,route,method,status}`
(route is the route template, so raw paths cannot blow up the label space) and
`ingot_http_requests_in_flight`. Everything about inference -- requests by model,
API and outcome, tokens, latencies, queues, loads, devices -- is counted by the
servicers and the scheduler for gRPC and HTTP alike; see docs/http.md, "Metrics".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["HttpMetrics", "RequestMetricsMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "ingot_http_requests", "HTTP requests answered.", ["api", "route", "method", "status"],
            registry=registry,
        )
        self.in_flight = Gauge("ingot_http_requests_in_flight", "HTTP requests being served.", registry=registry)


def _api_of(path: str) -> str:
    if path == "/v1" or path.startswith("/v1/"):
        return "openai"
    if path.startswith("/api/"):
        return "ollama"
    return "ingot"


class RequestMetricsMiddleware:
    """Counts every HTTP request by route template (not raw path, so labels stay few) and status."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app fails before answering

        async def send_and_note(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(_api_of(scope["path"]), template, scope["method"], str(status)).inc()
