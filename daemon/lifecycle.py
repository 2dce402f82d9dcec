"""A loaded model's life: its state enum, what it was loaded from and how, and its bookkeeping.

    (none) ──(no room yet: WAITING)──load──▶ LOADING ──ok──▶ READY ──expire / evict / Unload / reload / runner died──▶ UNLOADING ──▶ STOPPED
                        └──failed──────────────────────────────────────────────────────────────────────────▲

Only the scheduler mutates a `LoadedModel`, always under its lock; everything
else sees immutable `RunningSnapshot`s.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ingot.daemon.engine.types import LoadOptions, RunnerStats
from ingot.daemon.keepalive import KeepAlive
from ingot.daemon.options import LoadSettings
from ingot.daemon.queue_state import QueueState

__all__ = ["LoadPlan", "LoadedModel", "ModelSpec", "ModelState", "Runner", "RunningSnapshot"]


class ModelState(enum.Enum):
    # Only in snapshots: requests are admitted for a model that has no runner
    # yet because memory or --max-loaded make them wait for another to go idle.
    WAITING = "waiting"
    LOADING = "loading"
    READY = "ready"
    UNLOADING = "unloading"
    STOPPED = "stopped"


class Runner(Protocol):
    """What the scheduler needs of a runner (ingot.daemon.engine.RunnerClient)."""

    @property
    def pid(self) -> int: ...

    def alive(self) -> bool: ...

    def close(self, timeout: float = 5.0) -> None: ...

    def kill(self) -> None: ...

    def stats(self) -> RunnerStats: ...


@dataclass(frozen=True)
class ModelSpec:
    """A model as a request wants it loaded; two specs with equal `reload_key` share a runner."""

    name: str  # the normalized reference; the scheduler's key
    digest: str
    model_path: str
    adapters: tuple[str, ...]
    settings: LoadSettings
    n_parallel: int
    embedding: bool = False

    @property
    def reload_key(self) -> tuple[object, ...]:
        # The requested settings, never the planner's output: free VRAM moving
        # between two requests must not reload a model.
        return (self.digest, self.model_path, self.adapters, self.settings, self.n_parallel, self.embedding)


@dataclass(frozen=True)
class LoadPlan:
    """How a spec will be loaded and what that is expected to cost."""

    options: LoadOptions
    ram_bytes: int  # host memory: CPU-side weights, KV cache and buffers
    vram_bytes: int  # GPU memory, all devices together
    mapped_bytes: int  # the part of ram_bytes that is the mmap'ed weights file (page cache)
    total_layers: int
    notes: tuple[str, ...] = ()
    # Where the memory goes, per device key ("cpu", "cuda:0", ...), as planned.
    device_bytes: tuple[tuple[str, int], ...] = ()
    # The next rung of the out-of-memory retry ladder (fewer GPU layers, then a
    # smaller batch); None when there is nothing left to try.
    next_attempt: Callable[[], LoadPlan | None] | None = field(default=None, compare=False, repr=False)


@dataclass
class LoadedModel:
    """The scheduler's record of one model (mutable, guarded by the scheduler's lock)."""

    spec: ModelSpec
    plan: LoadPlan
    state: ModelState = ModelState.LOADING
    runner: Runner | None = None
    options: LoadOptions | None = None  # what it was actually loaded with (after OOM fallbacks)
    active: int = 0  # leases held on this runner
    last_used: float = 0.0  # monotonic
    expires_at: float | None = None  # monotonic; None while busy or kept forever
    keep_alive: KeepAlive | None = None
    loaded_at: float = 0.0  # wall clock
    load_started_ns: int = 0  # monotonic, when LOADING began
    load_finished_ns: int = 0  # monotonic, when it became READY
    stopping: bool = False  # a thread has taken the job of closing the runner
    error: BaseException | None = None  # why a load failed, for the requests that waited on it


@dataclass(frozen=True)
class RunningSnapshot:
    """What ListRunning / `ingot ps` shows of one model."""

    name: str
    digest: str
    state: ModelState
    ram_bytes: int
    vram_bytes: int
    gpu_layers: int
    total_layers: int
    expires_at: float | None  # wall clock
    keep_forever: bool
    active_requests: int
    context_length: int
    parallel: int
    pid: int
    load_count: int
    loaded_at: float  # wall clock, 0 while loading
    settings: LoadSettings | None  # None while WAITING
    slots_busy: int = 0  # requests decoding in the runner right now (from the runner itself)
    queue: QueueState | None = None  # its requests by priority
    device_bytes: tuple[tuple[str, int], ...] = ()  # planned memory per device key ("cpu", "cuda:0", ...)
