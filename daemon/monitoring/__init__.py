"""What the daemon knows about itself: request and lifecycle metrics, token rates, device readings.

`Monitoring` is created once per daemon and handed to the scheduler (its events),
the servicers (every request, whichever door it came in by) and the HTTP front
door (`/metrics`, the web page). It owns one Prometheus registry: no global state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, generate_latest

from ingot.daemon.scheduler import Scheduler

from .attribution import DeviceModel, ModelPlacement, models_on_devices
from .collector import SchedulerCollector, placements
from .devices import DeviceMonitor
from .lifecycle import LifecycleMetrics
from .names import short_name
from .rates import TokenRates
from .requests import RequestMetrics

T = TypeVar("T")

__all__ = [
    "DeviceModel",
    "DeviceMonitor",
    "LifecycleMetrics",
    "ModelPlacement",
    "Monitoring",
    "RequestMetrics",
    "TokenRates",
    "models_on_devices",
    "placements",
    "short_name",
]


class Monitoring:
    def __init__(self, *, devices: DeviceMonitor | None = None) -> None:
        self.registry = CollectorRegistry()
        self.rates = TokenRates()
        self.requests = RequestMetrics(self.registry, self.rates)
        self.lifecycle = LifecycleMetrics(self.registry)
        self.devices = devices
        self._scheduler_registered = False
        self._shared: dict[str, Any] = {}

    def shared(self, key: str, make: Callable[[CollectorRegistry], T]) -> T:
        """One `make(registry)` per key: metrics of a front door that may be started more than once."""
        if key not in self._shared:
            self._shared[key] = make(self.registry)
        return self._shared[key]  # type: ignore[no-any-return]

    def watch(self, scheduler: Scheduler) -> None:
        """Read `scheduler` (queues, slots, memory) and the devices at every scrape."""
        if not self._scheduler_registered:
            self.registry.register(SchedulerCollector(scheduler, self.rates, self.devices))
            self._scheduler_registered = True

    def render(self) -> bytes:
        return generate_latest(self.registry)
