"""Which loaded models hold memory on which device: measured where the driver lists processes, else planned.

NVML, nvidia-smi and KFD list the processes holding memory on a GPU; a runner is
one process, so its pid finds its share. Where a device lists no processes (Apple,
the CPU, rocm-smi), the planner's placement stands in, marked as planned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ingot.daemon.hardware.readings import TelemetryReport

__all__ = ["DeviceModel", "ModelPlacement", "models_on_devices"]


@dataclass(frozen=True)
class ModelPlacement:
    """A loaded model as the attribution needs it: its runner's pid and its planned bytes per device key."""

    name: str
    pid: int
    device_bytes: Mapping[str, int]


@dataclass(frozen=True)
class DeviceModel:
    model: str
    bytes: int
    measured: bool  # False: the planner's estimate (the device does not list processes)


def models_on_devices(report: TelemetryReport, placements: Sequence[ModelPlacement]) -> dict[str, tuple[DeviceModel, ...]]:
    """Per device key, the models holding memory there, largest first."""
    out: dict[str, tuple[DeviceModel, ...]] = {}
    for device in report.devices:
        found = []
        for placement in placements:
            planned = placement.device_bytes.get(device.key, 0)
            if device.processes is None:
                if planned > 0:
                    found.append(DeviceModel(placement.name, planned, measured=False))
                continue
            process = next((p for p in device.processes if p.pid == placement.pid and placement.pid > 0), None)
            if process is None:
                continue  # the driver says this runner holds nothing here
            if process.used_bytes is None:
                found.append(DeviceModel(placement.name, planned, measured=False))
            else:
                found.append(DeviceModel(placement.name, process.used_bytes, measured=True))
        out[device.key] = tuple(sorted(found, key=lambda m: -m.bytes))
    return out
