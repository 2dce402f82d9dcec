"""Apple GPU readings without root: the accelerator's ``PerformanceStatistics`` in the I/O Registry.

``ioreg -r -d 1 -w 0 -c IOAccelerator`` prints the GPU's registry entry (``AGXAcceleratorG13X``
and siblings), whose ``PerformanceStatistics`` dictionary carries ``"Device Utilization %"`` and
``"In use system memory"`` (bytes of unified memory the GPU holds). Temperature and power are
only reachable through ``powermetrics``, which needs root: they stay unknown. Per-process GPU
memory is not exposed either.
"""

from __future__ import annotations

import re

from .metal import is_apple_silicon
from .readings import DeviceReading
from .sources import ProbeError, ProbeSources

__all__ = ["parse_ioreg", "read_metal"]

_STATISTICS = re.compile(r'"PerformanceStatistics"\s*=\s*\{([^}]*)\}')
_UTILIZATION = re.compile(r'"Device Utilization %"\s*=\s*(\d+)')
_IN_USE = re.compile(r'"In use system memory"\s*=\s*(\d+)')


def read_metal(sources: ProbeSources) -> tuple[list[DeviceReading], str | None, list[str]]:
    if not is_apple_silicon(sources):
        return [], None, []
    ioreg = sources.which("ioreg")
    if ioreg is None:
        return [], None, ["Metal telemetry: ioreg is not on PATH"]
    try:
        reading = parse_ioreg(sources.run([ioreg, "-r", "-d", "1", "-w", "0", "-c", "IOAccelerator"]))
    except ProbeError as exc:
        return [], None, [f"Metal telemetry: {exc}"]
    return ([reading] if reading is not None else []), "ioreg", []


def parse_ioreg(text: str) -> DeviceReading | None:
    """The first accelerator's statistics; None when the output has none (a VM without a GPU)."""
    match = _STATISTICS.search(text)
    if match is None:
        return None
    statistics = match.group(1)
    utilization = _UTILIZATION.search(statistics)
    in_use = _IN_USE.search(statistics)
    return DeviceReading(
        utilization=None if utilization is None else int(utilization.group(1)) / 100,
        memory_used_bytes=None if in_use is None else int(in_use.group(1)),
    )
