"""Prometheus metrics of the HTTP front door, in a registry of its own (no process-global state).

Counted as requests finish:

* `ingot_http_requests_total{api,route,method,status}` and
  `ingot_http_requests_in_flight`;
* `ingot_tokens_total{model,kind}` (kind: prompt or completion) and
  `ingot_generations_total{api,model,done_reason}` -- cancelled ones too;
* `ingot_time_to_first_token_seconds{model}` and
  `ingot_generation_tokens_per_second{model}` histograms.

Read from the scheduler at scrape time (so they cover gRPC clients too):

* `ingot_loaded_models` -- models with a runner ready to serve;
* `ingot_queue_depth{model}` -- requests admitted per model, running or
  waiting for a slot (the queue `--max-queue` bounds).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingot.daemon.lifecycle import ModelState
from ingot.daemon.scheduler import Scheduler
from ingot.proto.ingot.v1 import common_pb2
from ingot.registry.errors import ReferenceError as InvalidReferenceError
from ingot.registry.reference import Reference

__all__ = ["HttpMetrics", "RequestMetricsMiddleware"]

_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TPS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _short(name: str) -> str:
    try:
        return Reference.parse(name).short
    except InvalidReferenceError:
        return name


class _SchedulerCollector(Collector):
    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        running = self._scheduler.running()
        loaded = GaugeMetricFamily("ingot_loaded_models", "Models with a runner loaded and ready to serve.")
        loaded.add_metric([], sum(1 for s in running if s.state is ModelState.READY))
        depth = GaugeMetricFamily(
            "ingot_queue_depth",
            "Requests admitted per model, running or waiting for a slot (bounded by --max-queue).",
            labels=["model"],
        )
        for snapshot in running:
            # Short names (`llama3`), as the generation metrics and every reply show them.
            depth.add_metric([_short(snapshot.name)], snapshot.active_requests)
        yield loaded
        yield depth


class HttpMetrics:
    def __init__(self, scheduler: Scheduler) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ingot_http_requests", "HTTP requests answered.", ["api", "route", "method", "status"],
            registry=self.registry,
        )
        self.in_flight = Gauge("ingot_http_requests_in_flight", "HTTP requests being served.", registry=self.registry)
        self.tokens = Counter("ingot_tokens", "Tokens processed for HTTP requests.", ["model", "kind"],
                              registry=self.registry)
        self.generations = Counter(
            "ingot_generations", "Generations finished, by how they ended.", ["api", "model", "done_reason"],
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "ingot_time_to_first_token_seconds", "From a request's arrival to its first generated token.",
            ["model"], buckets=_TTFT_BUCKETS, registry=self.registry,
        )
        self.tokens_per_second = Histogram(
            "ingot_generation_tokens_per_second", "Decode speed of each generation (eval_count / eval_duration).",
            ["model"], buckets=_TPS_BUCKETS, registry=self.registry,
        )
        self.registry.register(_SchedulerCollector(scheduler))

    def observe_generation(self, api: str, model: str, done_reason: str, metrics: common_pb2.Metrics) -> None:
        """Count one finished generation (its final message's metrics)."""
        self.generations.labels(api, model, done_reason or "unknown").inc()
        self.tokens.labels(model, "prompt").inc(metrics.prompt_eval_count)
        self.tokens.labels(model, "completion").inc(metrics.eval_count)
        if metrics.eval_count and metrics.time_to_first_token_ns:
            self.time_to_first_token.labels(model).observe(metrics.time_to_first_token_ns / 1e9)
        if metrics.eval_count and metrics.eval_duration_ns:
            self.tokens_per_second.labels(model).observe(metrics.eval_count / (metrics.eval_duration_ns / 1e9))

    def observe_embedding(self, model: str, metrics: common_pb2.Metrics) -> None:
        self.tokens.labels(model, "prompt").inc(metrics.prompt_eval_count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


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
