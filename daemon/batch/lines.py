"""Reading a batch input file: OpenAI Batch API JSONL, or plain prompts with `--model`.

A Batch API line is ``{"custom_id", "method": "POST", "url", "body"}`` with
`url` one of `ENDPOINTS`. With a default model (`ingot batch --model M`) a
line may instead be a JSON string or an object with ``prompt``, ``messages``
or ``input`` (plus any body fields, and optionally ``custom_id``): it becomes
a request to the default endpoint, with ``custom_id`` ``line-N`` unless it
names one. Blank lines are skipped.

Every line is checked before anything runs, the body too (`prepare` builds
exactly what would be sent): a line that is not JSON, names an unknown url,
lacks a body or has one the API would refuse becomes a `BadLine` with its
line number; duplicate custom_ids raise `DuplicateCustomIdError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import DuplicateCustomIdError

__all__ = ["CHAT", "COMPLETIONS", "EMBEDDINGS", "ENDPOINTS", "BadLine", "BatchRequest", "ParsedInput", "parse_input"]

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
ENDPOINTS = (CHAT, COMPLETIONS, EMBEDDINGS)
_SHORTHAND_KEYS = {CHAT: ("prompt", "messages"), COMPLETIONS: ("prompt",), EMBEDDINGS: ("input",)}


@dataclass(frozen=True)
class BatchRequest:
    line: int  # 1-based line number in the input
    custom_id: str
    url: str
    body: dict[str, Any]


@dataclass(frozen=True)
class BadLine:
    line: int
    custom_id: str | None
    code: str  # invalid_json, invalid_line, missing_custom_id, invalid_method, invalid_url, missing_body, invalid_body
    message: str  # "FILE:LINE: what is wrong"
    param: str | None = None


@dataclass(frozen=True)
class ParsedInput:
    requests: list[BatchRequest]
    bad: list[BadLine]

    @property
    def lines_by_id(self) -> dict[str, int]:
        found = {r.custom_id: r.line for r in self.requests}
        found.update({b.custom_id: b.line for b in self.bad if b.custom_id is not None})
        return found


class _Bad(Exception):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


# Checks a body for a url: raises with (status, message, param) the way the API would refuse it.
Check = Callable[[str, dict[str, Any]], None]


def parse_input(
    lines: Iterable[bytes],
    *,
    filename: str,
    check: Check,
    model: str | None = None,
    endpoint: str = CHAT,
    only_endpoint: str | None = None,
) -> ParsedInput:
    """Every line of `lines` as a request or a bad line; raises DuplicateCustomIdError.

    `check(url, body)` raises an exception with `.message` (and `.param`) for a
    body the API would refuse. `only_endpoint` (a /v1/batches job's endpoint)
    refuses lines for any other url.
    """
    requests: list[BatchRequest] = []
    bad: list[BadLine] = []
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        custom_id: str | None = None
        try:
            data = _decode(raw)
            if isinstance(data, dict) and isinstance(data.get("custom_id"), str) and data["custom_id"]:
                custom_id = data["custom_id"]  # known even when the rest of the line is bad
            custom_id, url, body = _shape(data, number, model=model, endpoint=endpoint)
            if only_endpoint is not None and url != only_endpoint:
                raise _Bad("invalid_url", f"url {url!r} differs from this batch's endpoint {only_endpoint!r}", "url")
            try:
                check(url, body)
            except Exception as exc:  # noqa: BLE001 - the check's refusal, whatever its type, names the problem
                message = getattr(exc, "message", None) or str(exc)
                param = getattr(exc, "param", None)
                raise _Bad("invalid_body", message, f"body.{param}" if param else "body") from None
        except _Bad as problem:
            bad.append(BadLine(number, custom_id, problem.code, f"{filename}:{number}: {problem.message}", problem.param))
        else:
            assert custom_id is not None
            requests.append(BatchRequest(number, custom_id, url, body))
        if custom_id is not None:
            if custom_id in seen:
                duplicates.append(f"{custom_id!r} on lines {seen[custom_id]} and {number}")
            else:
                seen[custom_id] = number
    if duplicates:
        more = f" (and {len(duplicates) - 3} more)" if len(duplicates) > 3 else ""
        raise DuplicateCustomIdError(
            f"{filename}: duplicate custom_id {'; '.join(duplicates[:3])}{more}",
            hint="results are matched to requests by custom_id: make each one unique",
        )
    return ParsedInput(requests, bad)


def _decode(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Bad("invalid_json", f"not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _Bad("invalid_json", f"not JSON: {exc}") from None


def _shape(data: Any, number: int, *, model: str | None, endpoint: str) -> tuple[str, str, dict[str, Any]]:
    """(custom_id, url, body) of one decoded line."""
    if model is not None and (isinstance(data, str) or (isinstance(data, dict) and "body" not in data)):
        return _shorthand(data, number, model=model, endpoint=endpoint)
    if not isinstance(data, dict):
        hint = "" if model is not None else " (plain prompts need --model)"
        raise _Bad("invalid_line", f"expected a JSON object with custom_id, method, url and body{hint}")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise _Bad("missing_custom_id", "custom_id must be a non-empty string", "custom_id")
    method = data.get("method", "POST")
    if method != "POST":
        raise _Bad("invalid_method", f"method must be POST, got {method!r}", "method")
    url = data.get("url")
    if url not in ENDPOINTS:
        raise _Bad("invalid_url", f"url must be one of {', '.join(ENDPOINTS)}, got {url!r}", "url")
    body = data.get("body")
    if body is None:
        raise _Bad("missing_body", "the line has no body", "body")
    if not isinstance(body, dict):
        raise _Bad("invalid_body", "body must be a JSON object", "body")
    if model is not None and "model" not in body:
        body = {**body, "model": model}
    return custom_id, str(url), body


def _shorthand(data: Any, number: int, *, model: str, endpoint: str) -> tuple[str, str, dict[str, Any]]:
    keys = _SHORTHAND_KEYS[endpoint]
    if isinstance(data, str):
        fields: dict[str, Any] = {keys[0]: data}
    else:
        fields = dict(data)
    custom_id = fields.pop("custom_id", f"line-{number}")
    if not isinstance(custom_id, str) or not custom_id:
        raise _Bad("missing_custom_id", "custom_id must be a non-empty string", "custom_id")
    if not any(key in fields for key in keys):
        raise _Bad("invalid_line", f"expected a JSON string or an object with {' or '.join(keys)} for {endpoint}")
    body = {"model": model, **fields}
    if endpoint == CHAT and "prompt" in body:
        prompt = body.pop("prompt")
        if "messages" in body:
            raise _Bad("invalid_line", "give prompt or messages, not both", "prompt")
        body["messages"] = [{"role": "user", "content": prompt}]
    return custom_id, endpoint, body
