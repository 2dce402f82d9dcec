"""Result records: the Batch API's output line, ``{"id", "custom_id", "response", "error"}``.

A request that got an answer -- success or an error status -- has
``response: {"status_code", "request_id", "body"}`` and ``error: null``; a bad
input line has ``response: null`` and ``error: {"code", "message", "line",
"param"}``. Successes go to the output file, the rest to the errors file.
"""

from __future__ import annotations

import uuid
from typing import Any

from .execute import RETRYABLE, Outcome
from .lines import BadLine

__all__ = ["bad_line_record", "is_bad_line", "is_retryable", "result_record"]


def result_record(custom_id: str, outcome: Outcome) -> dict[str, Any]:
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": {"status_code": outcome.status_code, "request_id": f"req_{uuid.uuid4().hex}", "body": outcome.body},
        "error": None,
    }


def bad_line_record(bad: BadLine) -> dict[str, Any]:
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": bad.custom_id,
        "response": None,
        "error": {"code": bad.code, "message": bad.message, "line": bad.line, "param": bad.param},
    }


def is_bad_line(record: dict[str, Any]) -> bool:
    """Bad-line records are found again by every run (the input may have been fixed meanwhile)."""
    return record.get("response") is None


def is_retryable(record: dict[str, Any]) -> bool:
    """A failure a rerun tries again (queue full, runner died, daemon stopping, deadline)."""
    response = record.get("response")
    return isinstance(response, dict) and response.get("status_code") in RETRYABLE
