"""Live device readings: utilisation, memory, temperature, power and the processes holding memory.

``read_telemetry(sources, hardware)`` reads every device of a ``HardwareReport``
once more, through the same injectable sources as detection (see
``sources``), and keys each reading by the device's ``key`` (``cuda:0``,
``rocm:1``, ``metal:0``, ``cpu``), so a reading always names the device the
planner and llama.cpp number that way. Where each figure comes from:

========  ===================================================================================
NVIDIA    NVML (in a child process); ``nvidia-smi --query-gpu`` / ``--query-compute-apps``
AMD       sysfs: ``gpu_busy_percent``, ``mem_info_vram_*``, hwmon ``temp1_input`` (m°C),
          ``power1_average`` or ``power1_input`` (µW), KFD ``proc/PID/vram_GPUID``;
          ``rocm-smi --json`` as the fallback
Apple     ``ioreg -c IOAccelerator`` (utilisation, GPU memory in use); temperature and power
          need root (``powermetrics``) and are reported as unknown
CPU       ``/proc/stat`` (utilisation between two readings), ``/proc/meminfo`` (RAM), hwmon
          (``k10temp`` / ``coretemp``); macOS: ``sysctl`` / ``vm_stat``
========  ===================================================================================

A figure a device does not report is None, never 0. A probe that fails adds a
line to ``problems`` and the other devices are still read.
"""

from __future__ import annotations

from typing import Callable, Mapping

from .cpu_telemetry import CpuUsage, read_cpu
from .metal_telemetry import read_metal
from .nvidia_telemetry import read_nvidia
from .readings import DeviceProcess, DeviceReading, DeviceTelemetry, TelemetryReport
from .report import GPUDevice, HardwareReport
from .rocm_telemetry import read_rocm
from .sources import ProbeSources

__all__ = ["CpuUsage", "DeviceProcess", "DeviceReading", "DeviceTelemetry", "TelemetryReport", "read_telemetry"]


# A backend probe: the readings of every physical device it sees, in the order detection lists them,
# the name of the source that answered (None when none did), and problems.
BackendProbe = Callable[[ProbeSources], tuple[list[DeviceReading], str | None, list[str]]]

_PROBES: Mapping[str, BackendProbe] = {"cuda": read_nvidia, "rocm": read_rocm, "metal": read_metal}


def read_telemetry(
    sources: ProbeSources, hardware: HardwareReport, *, cpu_usage: CpuUsage | None = None
) -> TelemetryReport:
    """Read every device of ``hardware`` now. ``cpu_usage`` carries the previous CPU reading (utilisation
    is the share of busy time since then); without one, CPU utilisation is unknown."""
    problems: list[str] = []
    devices: list[DeviceTelemetry] = []
    for backend, probe in _PROBES.items():
        gpus = hardware.gpus_for(backend)
        if not gpus:
            continue
        try:
            readings, source, found = probe(sources)
        except Exception as exc:  # noqa: BLE001 - one failing probe must not hide the other devices
            readings, source, found = [], None, [f"{backend} telemetry failed: {type(exc).__name__}: {exc}"]
        problems.extend(found)
        devices.extend(_match(gpus, readings, source))
    try:
        devices.insert(0, read_cpu(sources, hardware.cpu, cpu_usage))
    except Exception as exc:  # noqa: BLE001
        problems.append(f"CPU telemetry failed: {type(exc).__name__}: {exc}")
    return TelemetryReport(devices=tuple(devices), problems=tuple(problems))


def _match(gpus: tuple[GPUDevice, ...], readings: list[DeviceReading], source: str | None) -> list[DeviceTelemetry]:
    """Pair readings with the visible devices: by UUID where both have one, else by position.

    Position is only right when no visible-devices variable hides a card; every NVIDIA
    card has a UUID, and AMD cards do on kernels that expose ``unique_id``.
    """
    known = {(g.uuid or "").lower() for g in gpus if g.uuid}
    by_uuid = {r.uuid.lower(): r for r in readings if r.uuid and r.uuid.lower() in known}
    rest = [r for r in readings if not (r.uuid and r.uuid.lower() in known)]
    out = []
    for gpu in gpus:
        reading = by_uuid.get((gpu.uuid or "").lower()) or (rest.pop(0) if rest else DeviceReading())
        out.append(
            DeviceTelemetry(
                key=gpu.key,
                backend=gpu.backend,
                name=gpu.name,
                source=source or "none",
                uuid=gpu.uuid,
                utilization=reading.utilization,
                memory_used_bytes=reading.memory_used_bytes,
                memory_total_bytes=reading.memory_total_bytes or gpu.total_bytes or None,
                temperature_celsius=reading.temperature_celsius,
                power_watts=reading.power_watts,
                power_limit_watts=reading.power_limit_watts,
                processes=reading.processes,
            )
        )
    return out
