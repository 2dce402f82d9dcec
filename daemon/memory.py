"""How much memory a new model may take right now: free host RAM and free GPU memory.

The scheduler asks a `MemoryProbe` before every load (the daemon's probe reads
the hardware report); a `--max-memory` cap is applied there, on top of what
the machine reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["FreeMemory", "MemoryProbe"]


@dataclass(frozen=True)
class FreeMemory:
    ram_bytes: int
    vram_bytes: int  # all GPUs together; 0 without GPUs


class MemoryProbe(Protocol):
    def free(self) -> FreeMemory: ...
