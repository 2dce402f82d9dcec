"""The typed results of a telemetry reading (see ``telemetry``), shared by the backend probes."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DeviceProcess", "DeviceReading", "DeviceTelemetry", "TelemetryReport"]


@dataclass(frozen=True)
class DeviceProcess:
    """A process holding memory on a device; ``used_bytes`` None when the driver does not say how much."""

    pid: int
    used_bytes: int | None = None


@dataclass(frozen=True)
class DeviceReading:
    """What one backend probe read for one physical device, before it is matched to a ``GPUDevice``."""

    uuid: str | None = None
    utilization: float | None = None  # 0..1
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    power_limit_watts: float | None = None
    processes: tuple[DeviceProcess, ...] | None = None  # None: this source cannot list processes


@dataclass(frozen=True)
class DeviceTelemetry:
    """One device's readings, keyed like ``GPUDevice.key`` (``cpu`` for the host's CPUs and RAM)."""

    key: str
    backend: str  # "cuda" | "rocm" | "metal" | "cpu"
    name: str
    source: str  # where the readings came from: "nvml", "nvidia-smi", "sysfs", "rocm-smi", "ioreg", "procfs", ...
    uuid: str | None = None
    utilization: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    power_limit_watts: float | None = None
    processes: tuple[DeviceProcess, ...] | None = None


@dataclass(frozen=True)
class TelemetryReport:
    devices: tuple[DeviceTelemetry, ...]
    problems: tuple[str, ...] = ()
    taken_at: float = field(default_factory=time.time)  # wall clock

    def device(self, key: str) -> DeviceTelemetry | None:
        return next((d for d in self.devices if d.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
