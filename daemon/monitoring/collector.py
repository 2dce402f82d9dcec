"""What `/metrics` reads at scrape time: the scheduler's queues and slots, model memory, device gauges.

Names (see docs/http.md, "Metrics"):

* `ingot_loaded_models`; per model `ingot_requests_active` (admitted: decoding or
  waiting), `ingot_queue_depth{model,priority}` (admitted and waiting for a slot --
  what an autoscaler should watch), `ingot_slots`, `ingot_slots_busy`,
  `ingot_model_tokens_per_second` (last minute), `ingot_model_memory_bytes{model,device}`;
* per device (`device` is `cpu`, `cuda:0`, `rocm:1`, `metal:0`): `ingot_device_info`
  (always 1; name, backend, uuid as labels), `ingot_device_utilization_ratio` (0..1),
  `ingot_device_memory_used_bytes`, `ingot_device_memory_total_bytes`,
  `ingot_device_temperature_celsius`, `ingot_device_power_watts`,
  `ingot_device_power_limit_watts`. A figure the device does not report is absent, not 0.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingot.daemon.engine.types import Priority
from ingot.daemon.lifecycle import ModelState, RunningSnapshot
from ingot.daemon.scheduler import Scheduler

from .attribution import ModelPlacement, models_on_devices
from .devices import DeviceMonitor
from .names import short_name
from .rates import TokenRates

__all__ = ["SchedulerCollector", "placements"]

def placements(snapshots: list[RunningSnapshot]) -> list[ModelPlacement]:
    return [
        ModelPlacement(name=short_name(s.name), pid=s.pid, device_bytes=dict(s.device_bytes))
        for s in snapshots
        if s.state is not ModelState.WAITING
    ]


def _queue_depths(snapshot: RunningSnapshot) -> dict[str, int]:
    """Requests admitted and not in a slot (loading, or waiting for one), by priority."""
    queue = snapshot.queue
    if queue is None:
        return {p.value: 0 for p in Priority} | {Priority.INTERACTIVE.value: snapshot.active_requests}
    return {p.value: max(0, queue.admitted.of(p) - queue.running.of(p)) for p in Priority}


class SchedulerCollector(Collector):
    def __init__(self, scheduler: Scheduler, rates: TokenRates, devices: DeviceMonitor | None) -> None:
        self._scheduler = scheduler
        self._rates = rates
        self._devices = devices

    def collect(self) -> Iterator[Metric]:
        snapshots = self._scheduler.running()
        yield from self._models(snapshots)
        if self._devices is not None:
            yield from self._device_gauges(snapshots)

    def _models(self, snapshots: list[RunningSnapshot]) -> Iterator[Metric]:
        loaded = GaugeMetricFamily("ingot_loaded_models", "Models with a runner loaded and ready to serve.")
        loaded.add_metric([], sum(1 for s in snapshots if s.state is ModelState.READY))
        active = GaugeMetricFamily(
            "ingot_requests_active", "Requests admitted per model: decoding or waiting (bounded by --max-queue).",
            labels=["model"],
        )
        depth = GaugeMetricFamily(
            "ingot_queue_depth", "Requests admitted and waiting for a slot (or for the model's load), by priority.",
            labels=["model", "priority"],
        )
        slots = GaugeMetricFamily("ingot_slots", "Request slots of a loaded model (--parallel).", labels=["model"])
        busy = GaugeMetricFamily("ingot_slots_busy", "Slots decoding a request right now.", labels=["model"])
        rate = GaugeMetricFamily(
            "ingot_model_tokens_per_second", "Tokens generated per second over the last minute.", labels=["model"]
        )
        for snapshot in snapshots:
            model = short_name(snapshot.name)
            active.add_metric([model], snapshot.active_requests)
            for priority, waiting in _queue_depths(snapshot).items():
                depth.add_metric([model, priority], waiting)
            if snapshot.state is ModelState.READY:
                slots.add_metric([model], snapshot.parallel)
                busy.add_metric([model], snapshot.slots_busy)
            rate.add_metric([model], self._rates.per_second(model))
        yield from (loaded, active, depth, slots, busy, rate)

    def _device_gauges(self, snapshots: list[RunningSnapshot]) -> Iterator[Metric]:
        assert self._devices is not None
        report = self._devices.read()
        info = GaugeMetricFamily(
            "ingot_device_info", "A device the daemon can see (always 1).", labels=["device", "backend", "name", "uuid"]
        )
        gauges = {
            "utilization": GaugeMetricFamily(
                "ingot_device_utilization_ratio", "Share of time the device was busy (0 to 1).", labels=["device"]
            ),
            "memory_used_bytes": GaugeMetricFamily(
                "ingot_device_memory_used_bytes", "Device memory in use, by anyone (host RAM for cpu).", labels=["device"]
            ),
            "memory_total_bytes": GaugeMetricFamily(
                "ingot_device_memory_total_bytes", "Device memory (host RAM for cpu, cgroup limit applied).",
                labels=["device"],
            ),
            "temperature_celsius": GaugeMetricFamily(
                "ingot_device_temperature_celsius", "Device temperature.", labels=["device"]
            ),
            "power_watts": GaugeMetricFamily("ingot_device_power_watts", "Power draw.", labels=["device"]),
            "power_limit_watts": GaugeMetricFamily(
                "ingot_device_power_limit_watts", "Enforced power limit.", labels=["device"]
            ),
        }
        memory = GaugeMetricFamily(
            "ingot_model_memory_bytes",
            "Memory a loaded model holds per device: measured where the driver lists processes, else as planned.",
            labels=["model", "device"],
        )
        for device in report.devices:
            info.add_metric([device.key, device.backend, device.name, device.uuid or ""], 1)
            for field, family in gauges.items():
                value = getattr(device, field)
                if value is not None:
                    family.add_metric([device.key], float(value))
        for key, models in models_on_devices(report, placements(snapshots)).items():
            for held in models:
                memory.add_metric([held.model, key], held.bytes)
        yield info
        yield from gauges.values()
        yield memory
