"""Structured logs: one line per request (model, tokens, durations, outcome), as text or JSON.

`configure_logging("json")` makes every record of the `ingot` loggers one JSON
object per line on stderr; fields given through `extra={"fields": {...}}` become
top-level keys. Request lines come from `RequestRecord.emit()`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ingot.daemon.constants import LOG_FORMATS
from ingot.daemon.status import status_for

__all__ = ["LOG_FORMATS", "RequestRecord", "configure_logging", "logged"]

_request_log = logging.getLogger("ingot.requests")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        return text


def _text_value(value: object) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c.isspace() or c in "\"=" for c in text)) else text


def configure_logging(fmt: str = "text", *, level: int = logging.INFO) -> None:
    """Send the `ingot` loggers to stderr in `fmt` ("text" or "json")."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("ingot")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


@dataclass
class RequestRecord:
    """What one request did; filled in by the servicer, written once by `emit`."""

    rpc: str
    model: str = ""
    outcome: str = "ok"  # "ok", or the gRPC status code name in lower case
    error: str = ""
    started_ns: int = field(default_factory=time.monotonic_ns)
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    truncated_tokens: int = 0
    time_to_first_token_ns: int = 0
    eval_ns: int = 0  # decoding time of the completion tokens
    queue_ns: int = 0
    load_ns: int = 0
    done_reason: str = ""
    peer: str = ""
    api: str = "grpc"  # the door it came in by: "grpc", "openai", "ollama"
    settled: bool = False  # outcome decided (see `settle`)
    counted: bool = False  # handed to the metrics sink (see `count`)

    def emit(self) -> None:
        total_ns = time.monotonic_ns() - self.started_ns
        fields: dict[str, Any] = {
            "rpc": self.rpc,
            "model": self.model,
            "outcome": self.outcome,
            "total_ms": round(total_ns / 1e6, 3),
        }
        if self.prompt_tokens or self.completion_tokens:
            fields.update(
                prompt_tokens=self.prompt_tokens,
                cached_prompt_tokens=self.cached_prompt_tokens,
                completion_tokens=self.completion_tokens,
                truncated_tokens=self.truncated_tokens,
                ttft_ms=round(self.time_to_first_token_ns / 1e6, 3),
            )
        if self.queue_ns:
            fields["queue_ms"] = round(self.queue_ns / 1e6, 3)
        if self.load_ns:
            fields["load_ms"] = round(self.load_ns / 1e6, 3)
        if self.done_reason:
            fields["done_reason"] = self.done_reason
        if self.error:
            fields["error"] = self.error
        if self.peer:
            fields["peer"] = self.peer
        level = logging.INFO if self.outcome in ("ok", "cancelled") else logging.WARNING
        _request_log.log(level, "request", extra={"fields": fields})


def settle(record: RequestRecord, error: BaseException | None) -> None:
    """Decide the request's outcome from how it ended (once: the first caller wins)."""
    if record.settled:
        return
    record.settled = True
    if isinstance(error, GeneratorExit):
        record.outcome = "cancelled"
    elif isinstance(error, Exception):
        status = status_for(error)
        record.outcome = status.code.name.lower()
        record.error = status.message


def count(record: RequestRecord, sink: Callable[[RequestRecord], None] | None) -> None:
    """Hand the settled record to `sink` (the request metrics), once."""
    if sink is None or record.counted:
        return
    record.counted = True
    try:
        sink(record)
    except Exception:  # noqa: BLE001 - metrics must never fail a request
        logging.getLogger("ingot.daemon").exception("recording request metrics failed")


@contextmanager
def logged(
    record: RequestRecord, *, sink: Callable[[RequestRecord], None] | None = None
) -> Iterator[RequestRecord]:
    """Write `record` once the request ends, with its outcome (ok, cancelled, or the status code),
    and hand it to `sink` (the request metrics) unless that happened already."""
    try:
        yield record
    except BaseException as exc:
        settle(record, exc)
        raise
    finally:
        settle(record, None)
        record.emit()
        count(record, sink)
