"""Tool calls in a model's reply: how a family writes them, and reading them from a stream.

A `ToolCallFormat` says what surrounds the calls (``<tool_call>`` ...
``</tool_call>`` for Hermes and Qwen, ``[TOOL_CALLS]`` for Mistral, nothing
for Llama 3.x's bare JSON, optionally after ``<|python_tag|>``) and, for the
grammar that makes a model write one, the exact text the template puts
around a call's name and arguments.

`ToolCallSplitter` reads a reply piece by piece. Text that may be the start
of a call is held back until it is known either way; a call is settled once
its JSON is complete and names one of the request's tools. Anything that
turns out not to be a call is given back as content, byte for byte, so no
text is lost or repeated; only whitespace right around a recognised call
and its closing tags is dropped.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .jsonscan import BracketScanner
from .thinking import overlap

__all__ = ["ParsedCall", "ToolCallFormat", "ToolCallSplitter", "calls_from_json"]


@dataclass(frozen=True)
class ToolCallFormat:
    """How one model family writes tool calls.

    ``start``/``end`` are what the parser looks for (``""``: bare JSON, only
    at the start of the reply, as Ollama reads it); ``alt_starts`` are other
    openings that mean the same (Llama's ``<|python_tag|>``); with a
    ``name_marker`` a call is ``NAME MARKER {arguments}`` (Mistral's newer
    ``[TOOL_CALLS]name[ARGS]{...}``) instead of a JSON object. The other
    fields are the template's own text, used verbatim by the grammar:
    ``lead`` + call + (``between`` + call)* + ``trail``, where a call is
    ``call_prefix`` + name + ``call_infix`` + arguments + ``call_suffix``.
    """

    start: str = ""
    end: str = ""
    alt_starts: tuple[str, ...] = ()
    name_marker: str = ""
    lead: str = ""
    call_prefix: str = '{"name": "'
    call_infix: str = '", "arguments": '
    call_suffix: str = "}"
    between: str = "\n"
    trail: str = ""

    @property
    def openings(self) -> tuple[str, ...]:
        return tuple(t for t in (self.start, *self.alt_starts) if t)


@dataclass(frozen=True)
class ParsedCall:
    """One call read from a reply; `index` counts the calls of the reply from 0."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)
    index: int = 0

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)


def _one_call(value: Any, names: Collection[str]) -> ParsedCall | None:
    if not isinstance(value, dict):
        return None
    function = value.get("function")
    if isinstance(function, dict) and "name" in function:
        value = function  # {"type": "function", "function": {...}}, as OpenAI writes it
    name = value.get("name", value.get("tool_name"))  # Command R writes "tool_name"
    if not isinstance(name, str) or not name or (names and name not in names):
        return None
    arguments: Any = {}
    for key in ("arguments", "parameters"):
        if key in value:
            arguments = value[key]
            break
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return None
    return ParsedCall(name, arguments)


def calls_from_json(value: Any, names: Collection[str] = ()) -> list[ParsedCall] | None:
    """The calls a decoded JSON value stands for (an object, or a list of them), else None.

    ``{"name" | "tool_name", "arguments" | "parameters"}``, optionally
    inside ``{"function": ...}``, alone, in a list or in
    ``{"tool_calls": [...]}``; arguments may be an object or a JSON string
    of one. With `names`, every call must name one of them.
    """
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]  # {"tool_calls": [...]}, as xLAM writes them
    items = value if isinstance(value, list) else [value]
    if not items:
        return None
    calls = [_one_call(item, names) for item in items]
    if any(call is None for call in calls):
        return None
    return calls  # type: ignore[return-value]


class _Mode(enum.Enum):
    LEAD = "bare JSON format: waiting for the first non-whitespace character"
    TEXT = "text: looking for an opening tag"
    CALL = "inside a call"
    AFTER = "after a call: closing tags, more calls, or text"
    PASS = "plain text to the end"


class ToolCallSplitter:
    """Splits a streamed reply into content and tool calls (see the module docstring)."""

    def __init__(self, fmt: ToolCallFormat, tool_names: Collection[str] = ()) -> None:
        self.format = fmt
        self._names = frozenset(tool_names)
        self._longest_name = max((len(n) for n in self._names), default=64)
        self._mode = _Mode.TEXT if fmt.start else _Mode.LEAD
        self._held = ""
        self._body = 0  # where the call's JSON (or name) may start in _held
        self._scanner: BracketScanner | None = None
        self._name = ""  # name_marker layout: the name read before the marker
        self._count = 0

    @property
    def calls_seen(self) -> int:
        return self._count

    def feed(self, text: str) -> tuple[str, list[ParsedCall]]:
        """Settled ``(content, calls)`` after `text`."""
        self._held += text
        content: list[str] = []
        calls: list[ParsedCall] = []
        while self._step(content, calls):
            pass
        return "".join(content), calls

    def finish(self) -> tuple[str, list[ParsedCall]]:
        """End of the reply: held text that never became a call is content."""
        content, calls = self.feed("")
        held, self._held = self._held, ""
        if self._mode is _Mode.AFTER:
            return content, calls  # whitespace and tag fragments after the calls
        return content + held, calls

    # ---- the state machine ----------------------------------------------------------

    def _fail(self, upto: int, content: list[str]) -> bool:
        """What was taken for a call is text after all: give back `upto` characters."""
        content.append(self._held[:upto])
        self._held = self._held[upto:]
        self._scanner = None
        self._mode = _Mode.TEXT if self.format.start else _Mode.PASS
        return True

    def _enter_call(self, body: int) -> bool:
        self._mode = _Mode.CALL
        self._body = body
        self._scanner = None
        self._name = ""
        return True

    def _opening_at(self, text: str, at: int) -> str | None:
        for tag in self.format.openings:
            if text.startswith(tag, at):
                return tag
        return None

    def _may_open(self, rest: str) -> bool:
        return any(tag.startswith(rest) for tag in self.format.openings)

    def _step(self, content: list[str], calls: list[ParsedCall]) -> bool:
        mode = self._mode
        held = self._held
        if mode is _Mode.PASS:
            if held:
                content.append(held)
                self._held = ""
            return False
        if mode is _Mode.LEAD:
            rest = held.lstrip()
            if not rest:
                return False
            at = len(held) - len(rest)
            if rest[0] in "{[":
                return self._enter_call(at)
            tag = self._opening_at(held, at)
            if tag is not None:
                return self._enter_call(at + len(tag))
            if self._may_open(rest):
                return False
            self._mode = _Mode.PASS
            return True
        if mode is _Mode.TEXT:
            found = [(i, tag) for tag in self.format.openings if (i := held.find(tag)) >= 0]
            if found:
                index, tag = min(found)
                content.append(held[:index])
                self._held = held[index:]
                return self._enter_call(len(tag))
            keep = max((overlap(held, tag) for tag in self.format.openings), default=0)
            content.append(held[: len(held) - keep])
            self._held = held[len(held) - keep:]
            return False
        if mode is _Mode.CALL:
            return self._step_call(content, calls)
        return self._step_after(content)

    def _step_call(self, content: list[str], calls: list[ParsedCall]) -> bool:
        held = self._held
        if self._scanner is None:
            start = self._body
            while start < len(held) and held[start].isspace():
                start += 1
            if start == len(held):
                return False
            marker = self.format.name_marker
            if marker and not self._name:
                at = held.find(marker, start)
                if at < 0:
                    if len(held) - start > self._longest_name + len(marker):
                        return self._fail(start, content)
                    return False
                name = held[start:at].strip()
                if not name or (self._names and name not in self._names):
                    return self._fail(start, content)
                self._name = name
                start = at + len(marker)
                while start < len(held) and held[start].isspace():
                    start += 1
                if start == len(held):
                    self._body = start
                    return False
            if held[start] not in ("{" if self._name else "{["):
                return self._fail(start, content)
            self._scanner = BracketScanner(start)
        end = self._scanner.end(held)
        if end is None:
            return False
        start = self._scanner.start
        try:
            value = json.loads(held[start:end], strict=False)  # a raw newline inside a string is common
        except json.JSONDecodeError:
            return self._fail(end, content)
        if self._name:
            value = {"name": self._name, "arguments": value}
        parsed = calls_from_json(value, self._names)
        if parsed is None:
            return self._fail(end, content)
        for call in parsed:
            calls.append(ParsedCall(call.name, call.arguments, self._count))
            self._count += 1
        self._held = held[end:]
        self._scanner = None
        self._name = ""
        self._mode = _Mode.AFTER
        return True

    def _step_after(self, content: list[str]) -> bool:
        held = self._held
        rest = held.lstrip()
        if not rest:
            self._held = ""
            return False
        end = self.format.end
        if end and rest.startswith(end):
            self._held = rest[len(end):]
            return True
        if end and end.startswith(rest):
            self._held = rest
            return False
        if rest[0] in "{[" and not self.format.name_marker:  # several calls after one opening
            self._held = rest
            return self._enter_call(0)
        tag = self._opening_at(rest, 0)
        if tag is not None:
            self._held = rest
            return self._enter_call(len(tag))
        if self._may_open(rest):
            self._held = rest
            return False
        if not self.format.start and rest[0] in ";,":  # Llama 3.x separates calls so
            self._held = rest[1:]
            return True
        self._held = rest
        self._mode = _Mode.TEXT if self.format.start else _Mode.PASS
        return True
