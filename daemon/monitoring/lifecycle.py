"""Model lifecycle metrics: loads, load times, evictions and runner crashes, as the scheduler reports them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from ingot.daemon.scheduler import SchedulerEvents

from .names import short_name

__all__ = ["LifecycleMetrics"]

_LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class LifecycleMetrics(SchedulerEvents):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.loads = Counter(
            "ingot_model_loads", "Model loads, by outcome (ok or failed).", ["model", "outcome"], registry=registry
        )
        self.load_seconds = Histogram(
            "ingot_model_load_seconds", "Time from starting a runner to the model being ready.", ["model"],
            buckets=_LOAD_BUCKETS, registry=registry,
        )
        self.evictions = Counter(
            "ingot_model_evictions",
            "Idle models unloaded to make room for another, by reason (memory or max_loaded).",
            ["model", "reason"], registry=registry,
        )
        self.crashes = Counter(
            "ingot_runner_crashes", "Runner processes that died (mid-request or idle).", ["model"], registry=registry
        )

    def model_loaded(self, name: str, seconds: float) -> None:
        model = short_name(name)
        self.loads.labels(model, "ok").inc()
        self.load_seconds.labels(model).observe(max(seconds, 0.0))

    def model_load_failed(self, name: str) -> None:
        self.loads.labels(short_name(name), "failed").inc()

    def model_evicted(self, name: str, reason: str) -> None:
        self.evictions.labels(short_name(name), reason).inc()

    def runner_crashed(self, name: str) -> None:
        self.crashes.labels(short_name(name)).inc()
