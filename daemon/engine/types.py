"""The engine's boundary: what the daemon asks a runner for and what comes back.

These dataclasses cross the process boundary between the daemon and a runner
child, so they hold only plain data (no handles, no callables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class LoadOptions:
    """How a runner loads its model; a change to any field means a reload."""

    model_path: str
    n_ctx: int = 2048  # per sequence slot
    n_parallel: int = 4  # sequence slots decoded together
    interactive_slots: int = 0  # of those, how many batch requests never take (0 to n_parallel - 1)
    n_batch: int = 512
    n_gpu_layers: int = 0
    main_gpu: int = 0
    tensor_split: tuple[float, ...] = ()
    n_threads: int | None = None
    use_mmap: bool = True
    embedding: bool = False
    adapters: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class SamplingOptions:
    """Per-request sampling, already validated (Modelfile PARAMETERs + overrides)."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    num_predict: int = -1  # -1: until a stop condition or the context is full
    stop: tuple[str, ...] = ()
    json_output: bool = False  # constrain output to JSON with a grammar
    grammar: str | None = None  # GBNF, overrides json_output


class Priority(str, Enum):
    """Who waits for a request: a person (interactive) or a job (batch); see docs/batch.md."""

    INTERACTIVE = "interactive"
    BATCH = "batch"


class DoneReason(str, Enum):
    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    add_bos: bool = True  # False when the rendered template already starts with BOS text
    # Tokens of the prompt that may be dropped from the front when it does not
    # fit (the daemon decides; 0 = never truncate, overflow is an error).
    truncatable_after: int = 0
    # Interactive requests take free slots first and may pause batch ones (see engine.admission).
    priority: Priority = Priority.INTERACTIVE


@dataclass(frozen=True)
class Metrics:
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # reused from an earlier request's prefix
    completion_tokens: int = 0
    truncated_tokens: int = 0
    time_to_first_token_ns: int = 0
    prompt_eval_ns: int = 0
    eval_ns: int = 0
    total_ns: int = 0


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed reply; the last one has done=True and metrics."""

    text: str
    done: bool = False
    done_reason: DoneReason | None = None
    metrics: Metrics | None = None
    error: str | None = None


@dataclass(frozen=True)
class RunnerStats:
    """What a live runner reports about itself (for `ingot ps`)."""

    pid: int
    model_path: str
    n_ctx: int
    n_parallel: int
    active_requests: int
    queued_requests: int
    kv_cache_bytes: int
    model_bytes: int
    n_gpu_layers: int
    rss_bytes: int
    # The queue by priority: waiting for a slot, in a slot, and batch sequences paused so far.
    waiting_interactive: int = 0
    waiting_batch: int = 0
    running_interactive: int = 0
    running_batch: int = 0
    preemptions: int = 0
