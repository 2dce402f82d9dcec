"""The inference engine: continuous batching over llama.cpp, in process or isolated in a runner child.

`Engine` owns one model in this process; `RunnerClient` offers the same API
backed by a child process that owns the Engine (untrusted weights are only
ever opened there). Both hand out `RequestStream`s of `Chunk`s.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import DEFAULT_MAX_QUEUE, Engine, RequestHandle
    from .errors import (
        ContextOverflowError,
        EngineError,
        InvalidRequestError,
        LoadError,
        QueueFullError,
        RunnerDiedError,
    )
    from .runner_client import RunnerClient
    from .stream import RequestStream
    from .types import Chunk, DoneReason, GenerateRequest, LoadOptions, Metrics, Priority, RunnerStats, SamplingOptions

# Resolved on first use: importing `ingot.daemon.engine.types` (which clients do,
# for option and metric types) must not load llama.cpp through `.engine`.
_HOMES = {
    "DEFAULT_MAX_QUEUE": "engine",
    "Engine": "engine",
    "RequestHandle": "engine",
    "ContextOverflowError": "errors",
    "EngineError": "errors",
    "InvalidRequestError": "errors",
    "LoadError": "errors",
    "QueueFullError": "errors",
    "RunnerDiedError": "errors",
    "RunnerClient": "runner_client",
    "RequestStream": "stream",
    "Chunk": "types",
    "DoneReason": "types",
    "GenerateRequest": "types",
    "LoadOptions": "types",
    "Metrics": "types",
    "Priority": "types",
    "RunnerStats": "types",
    "SamplingOptions": "types",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)


__all__ = [
    "DEFAULT_MAX_QUEUE",
    "Chunk",
    "ContextOverflowError",
    "DoneReason",
    "Engine",
    "EngineError",
    "GenerateRequest",
    "InvalidRequestError",
    "LoadError",
    "LoadOptions",
    "Metrics",
    "Priority",
    "QueueFullError",
    "RequestHandle",
    "RequestStream",
    "RunnerClient",
    "RunnerDiedError",
    "RunnerStats",
    "SamplingOptions",
]
