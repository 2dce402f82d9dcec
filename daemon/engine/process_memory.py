"""Resident memory of the current process, for `RunnerStats.rss_bytes`."""

from __future__ import annotations

import os
import resource
import sys

__all__ = ["rss_bytes"]


def rss_bytes() -> int:
    """Current resident set size; the peak where the platform has no cheap "current" figure."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB
