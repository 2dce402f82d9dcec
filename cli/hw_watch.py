"""`ingot hw --watch`: every device's readings, refreshed until Ctrl-C (a rich live table, or JSON lines).

Readings come from the same probes and injectable sources as `ingot hw`
(`ingot.daemon.hardware.read_telemetry`). When a daemon answers, its loaded
models are shown on the devices that hold their memory: measured where the
driver lists processes, else as planned (marked `~`).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ingot.daemon.hardware import CpuUsage, ProbeSources, TelemetryReport, detect_hardware, read_telemetry
from ingot.daemon.monitoring.attribution import DeviceModel, ModelPlacement, models_on_devices

__all__ = ["render_table", "watch"]

GIB = 1024**3


def watch(*, interval_s: float, count: int, as_json: bool, timeout_s: float) -> int:
    sources = ProbeSources.from_env(os.environ, timeout_s=timeout_s)
    hardware = detect_hardware(os.environ, timeout_s=timeout_s, probe_engine_support=False)
    usage = CpuUsage()
    read_telemetry(sources, hardware, cpu_usage=usage)  # the baseline CPU utilisation is measured from
    shown = 0
    try:
        if as_json:
            while count <= 0 or shown < count:
                time.sleep(interval_s)
                report = read_telemetry(sources, hardware, cpu_usage=usage)
                print(json.dumps(_as_json(report, _loaded_models())), flush=True)
                shown += 1
            return 0
        console = Console()
        with Live(console=console, auto_refresh=False, transient=False) as live:
            while count <= 0 or shown < count:
                time.sleep(interval_s)
                report = read_telemetry(sources, hardware, cpu_usage=usage)
                live.update(render_table(report, models_on_devices(report, _loaded_models())), refresh=True)
                shown += 1
    except KeyboardInterrupt:
        return 0
    return 0


def _loaded_models() -> list[ModelPlacement]:
    """The running daemon's loaded models, or none when no daemon answers (the readings still show)."""
    try:
        import grpc

        from ingot.cli.client import ClientError, connect
        from ingot.proto.ingot.v1 import runtime_pb2

        with connect() as client:
            reply = client.runtime.ListRunning(runtime_pb2.ListRunningRequest(), timeout=2)
    except (ClientError, grpc.RpcError, OSError):
        return []
    return [
        ModelPlacement(name=m.name, pid=m.pid, device_bytes={d.device: d.bytes for d in m.devices})
        for m in reply.models
        if m.pid
    ]


def _as_json(report: TelemetryReport, placements: list[ModelPlacement]) -> dict[str, Any]:
    data = report.to_dict()
    held = models_on_devices(report, placements)
    for device in data["devices"]:
        device["models"] = [
            {"model": m.model, "bytes": m.bytes, "measured": m.measured} for m in held.get(device["key"], ())
        ]
    return data


def render_table(report: TelemetryReport, held: dict[str, tuple[DeviceModel, ...]]) -> Table:
    table = Table(title=time.strftime("ingot hw --watch  %H:%M:%S"), title_justify="left")
    for header in ("DEVICE", "NAME", "UTIL", "MEMORY", "TEMP", "POWER", "MODELS"):
        table.add_column(header, justify="right" if header in ("UTIL", "TEMP", "POWER") else "left")
    for device in report.devices:
        used, total = device.memory_used_bytes, device.memory_total_bytes
        memory = "-" if total is None else f"{'?' if used is None else f'{used / GIB:.1f}'} / {total / GIB:.1f} GiB"
        power = "-" if device.power_watts is None else f"{device.power_watts:.0f} W"
        if device.power_watts is not None and device.power_limit_watts:
            power += f" / {device.power_limit_watts:.0f}"
        models = ", ".join(f"{m.model} {'' if m.measured else '~'}{m.bytes / GIB:.1f} GiB" for m in held.get(device.key, ()))
        table.add_row(
            device.key,
            device.name,
            "-" if device.utilization is None else f"{device.utilization:.0%}",
            memory,
            "-" if device.temperature_celsius is None else f"{device.temperature_celsius:.0f} °C",
            power,
            models or "-",
        )
    for problem in report.problems:
        table.caption = (table.caption + "\n" if table.caption else "") + problem
    return table
