"""NVIDIA readings: NVML first (the child process detection uses), ``nvidia-smi`` queries as the fallback.

``nvidia-smi --query-gpu=uuid,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,power.limit
--format=csv,noheader,nounits`` gives one line per card (percent, MiB, °C, W; ``[N/A]`` or
``[Not Supported]`` where a board has no sensor), and ``--query-compute-apps=pid,gpu_uuid,used_memory``
one line per compute process (nothing at all when there are none). Both list cards in PCI bus order.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Any

from .nvidia import MIB, int_or_none, nvml_answer, text_or_none
from .readings import DeviceProcess, DeviceReading
from .sources import ProbeError, ProbeSources

__all__ = ["GPU_QUERY", "parse_compute_apps_csv", "parse_telemetry_csv", "read_nvidia"]

GPU_QUERY = ("uuid", "utilization.gpu", "memory.used", "memory.total", "temperature.gpu", "power.draw", "power.limit")
APPS_QUERY = ("pid", "gpu_uuid", "used_memory")


def read_nvidia(sources: ProbeSources) -> tuple[list[DeviceReading], str | None, list[str]]:
    problems: list[str] = []
    if sources.nvml_library:
        try:
            answer = nvml_answer(sources)
            if answer is not None:
                return [_from_nvml_device(d) for d in answer.get("devices", [])], "nvml", problems
        except ProbeError as exc:
            problems.append(f"NVML telemetry: {exc}")
    smi = sources.which("nvidia-smi")
    if smi is None:
        return [], None, problems
    try:
        readings = parse_telemetry_csv(
            sources.run([smi, f"--query-gpu={','.join(GPU_QUERY)}", "--format=csv,noheader,nounits"])
        )
    except ProbeError as exc:
        problems.append(f"nvidia-smi telemetry: {exc}")
        return [], None, problems
    try:
        apps = parse_compute_apps_csv(
            sources.run([smi, f"--query-compute-apps={','.join(APPS_QUERY)}", "--format=csv,noheader,nounits"])
        )
    except ProbeError as exc:
        problems.append(f"nvidia-smi compute processes: {exc}")
        return readings, "nvidia-smi", problems
    with_processes = [replace(r, processes=tuple(apps.get((r.uuid or "").lower(), ()))) for r in readings]
    return with_processes, "nvidia-smi", problems


def _from_nvml_device(device: dict[str, Any]) -> DeviceReading:
    processes = device.get("processes")
    power, limit = device.get("power_mw"), device.get("power_limit_mw")
    utilization = device.get("utilization")
    return DeviceReading(
        uuid=device.get("uuid"),
        utilization=None if utilization is None else utilization / 100,
        memory_used_bytes=device.get("used"),
        memory_total_bytes=device.get("total"),
        temperature_celsius=None if device.get("temperature") is None else float(device["temperature"]),
        power_watts=None if power is None else power / 1000,
        power_limit_watts=None if limit is None else limit / 1000,
        processes=None
        if processes is None
        else tuple(DeviceProcess(pid=int(p["pid"]), used_bytes=p.get("used")) for p in processes),
    )


def _rows(text: str, width: int) -> list[list[str]]:
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(text), skipinitialspace=True), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != width:
            raise ProbeError(f"line {number} has {len(row)} fields, expected {width}: {','.join(row)!r}")
        rows.append([cell.strip() for cell in row])
    return rows


def parse_telemetry_csv(text: str) -> list[DeviceReading]:
    """Parse the ``--query-gpu`` telemetry query (``GPU_QUERY``, ``nounits``)."""
    readings = []
    for uuid, util, used, total, temp, power, limit in _rows(text, len(GPU_QUERY)):
        used_mib, total_mib, percent = int_or_none(used), int_or_none(total), _float_or_none(util)
        readings.append(
            DeviceReading(
                uuid=text_or_none(uuid),
                utilization=None if percent is None else percent / 100,
                memory_used_bytes=None if used_mib is None else used_mib * MIB,
                memory_total_bytes=None if total_mib is None else total_mib * MIB,
                temperature_celsius=_float_or_none(temp),
                power_watts=_float_or_none(power),
                power_limit_watts=_float_or_none(limit),
            )
        )
    return readings


def parse_compute_apps_csv(text: str) -> dict[str, list[DeviceProcess]]:
    """Parse ``--query-compute-apps=pid,gpu_uuid,used_memory`` into processes per (lower-case) GPU UUID."""
    by_gpu: dict[str, list[DeviceProcess]] = {}
    for pid, uuid, used in _rows(text, len(APPS_QUERY)):
        number = int_or_none(pid)
        if number is None:
            continue
        mib = int_or_none(used)
        by_gpu.setdefault(uuid.lower(), []).append(DeviceProcess(pid=number, used_bytes=None if mib is None else mib * MIB))
    return by_gpu


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"
