"""The daemon's device readings: taken on demand (a scrape, the page, `ingot ps`), at most every few seconds.

Readings run probe commands (an NVML child, nvidia-smi, sysfs reads); two scrapers
or a page refreshing every second must not multiply them, so a reading younger
than `min_interval_s` is handed out again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ingot.daemon.hardware import CpuUsage, HardwareReport, ProbeSources, TelemetryReport, read_telemetry

__all__ = ["DeviceMonitor"]


class DeviceMonitor:
    def __init__(
        self,
        sources: ProbeSources,
        hardware: Callable[[], HardwareReport],
        *,
        min_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sources = sources
        self._hardware = hardware
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._usage = CpuUsage()
        self._lock = threading.Lock()
        self._last: TelemetryReport | None = None
        self._last_at = 0.0

    def read(self) -> TelemetryReport:
        with self._lock:  # one reading at a time; the others wait for it and share it
            now = self._clock()
            if self._last is None or now - self._last_at >= self._min_interval_s:
                self._last = read_telemetry(self._sources, self._hardware(), cpu_usage=self._usage)
                self._last_at = now
            return self._last
