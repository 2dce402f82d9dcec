"""The inference engine: continuous batching over llama.cpp, in process or isolated in a runner child.

`Engine` owns one model in this process; `RunnerClient` offers the same API
backed by a child process that owns the Engine (untrusted weights are only
ever opened there). Both hand out `RequestStream`s of `Chunk`s.
"""

from __future__ import annotations

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
from .types import Chunk, DoneReason, GenerateRequest, LoadOptions, Metrics, RunnerStats, SamplingOptions

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
    "QueueFullError",
    "RequestHandle",
    "RequestStream",
    "RunnerClient",
    "RunnerDiedError",
    "RunnerStats",
    "SamplingOptions",
]
