"""CPU and RAM readings, always present: ``/proc/stat`` utilisation, RAM in use, a hwmon CPU temperature.

Utilisation is a share of time between two readings, so it needs the previous one:
a ``CpuUsage`` (owned by whoever reads repeatedly: the daemon, ``ingot hw --watch``)
keeps it. RAM in use is total minus available, with the cgroup limits detection
already applied. The temperature is the first hwmon sensor of a CPU driver
(``k10temp``, ``coretemp``, ``zenpower``, ``cpu_thermal``); CPU power (RAPL) needs root
on current kernels and is left unknown.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .readings import DeviceTelemetry
from .report import CPUInfo
from .sources import ProbeSources

__all__ = ["CpuTimes", "CpuUsage", "parse_proc_stat", "read_cpu"]

_CPU_SENSORS = ("k10temp", "coretemp", "zenpower", "cpu_thermal")


@dataclass(frozen=True)
class CpuTimes:
    busy: int
    total: int


def parse_proc_stat(text: str) -> CpuTimes | None:
    """The aggregate ``cpu`` line of ``/proc/stat``: busy is everything but idle and iowait."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(v) for v in fields[1:] if v.isdigit()]
            if len(ticks) < 4:
                return None
            # user nice system idle iowait irq softirq steal guest guest_nice; guest time is
            # already counted in user, so only the first eight add up to the total.
            total = sum(ticks[:8])
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
            return CpuTimes(busy=total - idle, total=total)
    return None


class CpuUsage:
    """Remembers the last ``/proc/stat`` reading so the next one can say how busy the CPUs were since."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: CpuTimes | None = None

    def update(self, now: CpuTimes | None) -> float | None:
        with self._lock:
            last, self._last = self._last, now if now is not None else self._last
        if now is None or last is None or now.total <= last.total:
            return None
        return max(0.0, min(1.0, (now.busy - last.busy) / (now.total - last.total)))


def read_cpu(sources: ProbeSources, cpu: CPUInfo, usage: CpuUsage | None) -> DeviceTelemetry:
    utilization = None
    temperature = None
    if sources.system == "Linux":
        times = parse_proc_stat(sources.read_text("/proc/stat") or "")
        utilization = usage.update(times) if usage is not None else None
        temperature = _cpu_temperature(sources)
    total = cpu.ram_total_bytes or None
    used = cpu.ram_total_bytes - cpu.ram_available_bytes if cpu.ram_total_bytes else None
    return DeviceTelemetry(
        key="cpu",
        backend="cpu",
        name=cpu.model,
        source="procfs" if sources.system == "Linux" else "sysctl",
        utilization=utilization,
        memory_used_bytes=used,
        memory_total_bytes=total,
        temperature_celsius=temperature,
    )


def _cpu_temperature(sources: ProbeSources) -> float | None:
    for hwmon in sources.glob("/sys/class/hwmon/hwmon*"):
        try:
            name = (hwmon / "name").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue
        if name not in _CPU_SENSORS:
            continue
        try:
            return int((hwmon / "temp1_input").read_text().strip()) / 1000
        except (OSError, ValueError):
            continue
    return None
