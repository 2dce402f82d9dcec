"""Conversions between the daemon's values and the ingot.v1 messages (no logic beyond shape)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from ingot.daemon.engine.types import Metrics
from ingot.daemon.errors import InvalidOptionError
from ingot.daemon.lifecycle import ModelState, RunningSnapshot
from ingot.daemon.options import LoadSettings, options_to_proto
from ingot.daemon.queue_state import QueueState
from ingot.modelfile.template import ChatMessage, ToolCall
from ingot.proto.ingot.v1 import common_pb2, models_pb2, runtime_pb2
from ingot.registry.digest import Progress
from ingot.registry.package import Package
from ingot.registry.reference import Reference

__all__ = [
    "message_from_proto",
    "metrics_to_proto",
    "model_details",
    "progress_to_proto",
    "queue_to_proto",
    "running_to_proto",
    "timestamp",
]

_STATES = {
    ModelState.WAITING: runtime_pb2.MODEL_STATE_WAITING,
    ModelState.LOADING: runtime_pb2.MODEL_STATE_LOADING,
    ModelState.READY: runtime_pb2.MODEL_STATE_READY,
    ModelState.UNLOADING: runtime_pb2.MODEL_STATE_UNLOADING,
    ModelState.STOPPED: runtime_pb2.MODEL_STATE_UNSPECIFIED,
}


def message_from_proto(message: common_pb2.ChatMessage, index: int) -> ChatMessage:
    """A request's chat message for the templates; bad call arguments name their field."""
    calls = []
    for position, call in enumerate(message.tool_calls):
        where = f"messages[{index}].tool_calls[{position}].function"
        if not call.name:
            raise InvalidOptionError(f"{where}.name", "a tool call needs the function's name")
        try:
            arguments = json.loads(call.arguments_json) if call.arguments_json.strip() else {}
        except json.JSONDecodeError as exc:
            raise InvalidOptionError(f"{where}.arguments", f"not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(arguments, dict):
            raise InvalidOptionError(f"{where}.arguments", "must be a JSON object")
        calls.append(ToolCall(name=call.name, arguments=arguments, id=call.id, index=call.index or position))
    return ChatMessage(message.role, message.content, thinking=message.thinking, tool_calls=tuple(calls),
                       tool_name=message.tool_name, tool_call_id=message.tool_call_id)


def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def metrics_to_proto(
    metrics: Metrics | None,
    *,
    total_ns: int,
    load_ns: int,
    queue_ns: int,
    first_token_offset_ns: int,
    extra_truncated: int = 0,
) -> common_pb2.Metrics:
    """The final chunk's metrics; engine times count from its own submit, so the wait before is added."""
    m = metrics or Metrics()
    return common_pb2.Metrics(
        prompt_eval_count=m.prompt_tokens,
        cached_prompt_tokens=m.cached_prompt_tokens,
        eval_count=m.completion_tokens,
        truncated_tokens=m.truncated_tokens + extra_truncated,
        total_duration_ns=total_ns,
        load_duration_ns=load_ns,
        prompt_eval_duration_ns=m.prompt_eval_ns,
        eval_duration_ns=m.eval_ns,
        time_to_first_token_ns=(first_token_offset_ns + m.time_to_first_token_ns) if m.completion_tokens else 0,
        queue_duration_ns=queue_ns,
    )


def _settings_to_proto(settings: LoadSettings) -> common_pb2.Options:
    values: dict[str, Any] = {
        "num_ctx": settings.num_ctx,
        "num_batch": settings.num_batch,
        "num_gpu": settings.num_gpu,
        "main_gpu": settings.main_gpu,
        "use_mmap": settings.use_mmap,
        "num_thread": settings.num_thread or 0,
    }
    return options_to_proto(values)


def running_to_proto(snapshot: RunningSnapshot, *, tokens_per_second: float = 0.0) -> runtime_pb2.RunningModel:
    message = runtime_pb2.RunningModel(
        name=Reference.parse(snapshot.name).short,
        digest=snapshot.digest,
        state=_STATES[snapshot.state],
        size_bytes=snapshot.ram_bytes + snapshot.vram_bytes,
        vram_bytes=snapshot.vram_bytes,
        gpu_layers=snapshot.gpu_layers,
        total_layers=snapshot.total_layers,
        keep_forever=snapshot.keep_forever,
        active_requests=snapshot.active_requests,
        context_length=snapshot.context_length,
        parallel=snapshot.parallel,
        pid=snapshot.pid,
        load_count=snapshot.load_count,
        slots_busy=snapshot.slots_busy,
        tokens_per_second=tokens_per_second,
        devices=[runtime_pb2.DeviceMemory(device=key, bytes=size) for key, size in snapshot.device_bytes],
    )
    if snapshot.settings is not None:
        message.load_options.CopyFrom(_settings_to_proto(snapshot.settings))
    if snapshot.expires_at is not None:
        message.expires_at.CopyFrom(timestamp(snapshot.expires_at))
    if snapshot.loaded_at:
        message.loaded_at.CopyFrom(timestamp(snapshot.loaded_at))
    if snapshot.queue is not None:
        message.queue.CopyFrom(queue_to_proto(snapshot.queue))
    return message


def queue_to_proto(queue: QueueState) -> runtime_pb2.QueueDepth:
    return runtime_pb2.QueueDepth(
        admitted_interactive=queue.admitted.interactive,
        admitted_batch=queue.admitted.batch,
        waiting_interactive=queue.waiting.interactive,
        waiting_batch=queue.waiting.batch,
        running_interactive=queue.running.interactive,
        running_batch=queue.running.batch,
        preemptions=queue.preemptions,
    )


def progress_to_proto(progress: Progress) -> common_pb2.Progress:
    return common_pb2.Progress(
        status=progress.status,
        digest=progress.digest or "",
        total=max(progress.total, 0),
        completed=max(progress.completed, 0),
    )


def model_details(package: Package, *, context_length: int | None = None) -> models_pb2.ModelDetails:
    config: Mapping[str, Any] = package.config.get("config", {}) if isinstance(package.config, Mapping) else {}
    descriptor: Mapping[str, Any] = package.config.get("descriptor", {}) if isinstance(package.config, Mapping) else {}
    quantization = config.get("quantization") or config.get("precision") or ""
    return models_pb2.ModelDetails(
        format=str(config.get("format", "gguf")),
        family=str(config.get("architecture") or descriptor.get("family") or ""),
        parameter_size=str(config.get("paramSize", "")),
        quantization_level=str(quantization).upper() if quantization else "",
        context_length=context_length or 0,
    )


def parse_tagged_at(text: str | None) -> float | None:
    """A store tag's timestamp (ISO 8601, UTC) as seconds since the epoch."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
