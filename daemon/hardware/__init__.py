"""Hardware detection: CPU, RAM, NVIDIA / AMD / Apple GPUs, and what the installed engine can use.

``detect_hardware(env)`` is the entry point; every probe reads through injectable
sources (``INGOT_SYSFS_ROOT``, ``PATH``, ``INGOT_PLATFORM``, ``INGOT_NVML``) so
the same code runs against recorded outputs in tests. See docs/hardware.md.
"""

from __future__ import annotations

from .detect import detect_hardware
from .engine import probe_engine, rebuild_command
from .report import (
    GPU_BACKENDS,
    CPUInfo,
    EngineDevice,
    EngineSupport,
    GPUDevice,
    HardwareReport,
    HardwareReportError,
)
from .readings import DeviceProcess, DeviceTelemetry, TelemetryReport
from .sources import ProbeError, ProbeSources
from .telemetry import CpuUsage, read_telemetry

__all__ = [
    "GPU_BACKENDS",
    "CPUInfo",
    "CpuUsage",
    "DeviceProcess",
    "DeviceTelemetry",
    "EngineDevice",
    "EngineSupport",
    "GPUDevice",
    "HardwareReport",
    "HardwareReportError",
    "ProbeError",
    "ProbeSources",
    "TelemetryReport",
    "detect_hardware",
    "probe_engine",
    "read_telemetry",
    "rebuild_command",
]
