"""What a prompt is made of: chat messages, tool calls, and one request's inputs.

These frozen values are the boundary between the engine (or the CLI) and the
template dialects. `ChatMessage.from_dict` reads the Ollama / OpenAI
request shape, so a JSON messages file or a gRPC request maps onto it
directly. `conversation` applies Ollama's rule for a Modelfile's SYSTEM and
MESSAGE lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union
from collections.abc import Mapping, Sequence

CHAT_ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
"""Roles templates are written for; other roles pass through untouched."""

Think = Union[bool, str, None]
"""A request's thinking switch: None (not set), a bool, or a level such as ``"high"`` (meaning on)."""


def think_values(think: Think) -> dict[str, Any]:
    """``.Think``, ``.ThinkLevel`` and ``.IsThinkSet`` as Ollama gives them to Go templates."""
    return {"Think": bool(think), "ThinkLevel": think if isinstance(think, str) else "",
            "IsThinkSet": think is not None}


class InputError(ValueError):
    """A message, tool call or tool that is not in a shape ingot understands."""


@dataclass(frozen=True)
class ToolCall:
    """One function call an assistant message made."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)
    id: str = ""
    index: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """Read ``{"function": {"name": ..., "arguments": {...} | "json"}, "id": ...}``."""
        if not isinstance(data, Mapping):
            raise InputError("a tool call must be an object")
        function = data.get("function", data)
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InputError('a tool call needs "function": {"name": ...}')
        arguments = function.get("arguments") or {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise InputError(f"tool call arguments are not valid JSON: {exc}") from None
        if not isinstance(arguments, Mapping):
            raise InputError("tool call arguments must be a JSON object")
        index = function.get("index", data.get("index", 0))
        return cls(name=function["name"], arguments=dict(arguments), id=str(data.get("id") or ""),
                   index=index if isinstance(index, int) and not isinstance(index, bool) else 0)


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation.

    ``role`` is lower-cased (Ollama does the same); ``thinking`` is the
    model's reasoning for assistant turns; ``tool_name`` / ``tool_call_id``
    label a ``tool`` result.
    """

    role: str
    content: str = ""
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_name: str = ""
    tool_call_id: str = ""
    images: tuple[bytes, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", self.role.lower())
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        object.__setattr__(self, "images", tuple(self.images))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatMessage:
        """Read ``{"role": ..., "content": ..., "tool_calls": [...], ...}``."""
        if not isinstance(data, Mapping):
            raise InputError(f"a message must be an object, not {type(data).__name__}")
        role = data.get("role")
        if not isinstance(role, str) or not role:
            raise InputError('a message needs a "role" string')
        content = data.get("content", "")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise InputError(f'the content of a {role} message must be a string')
        calls = data.get("tool_calls") or ()
        if not isinstance(calls, (list, tuple)):
            raise InputError('"tool_calls" must be a list')
        thinking = data.get("thinking", data.get("reasoning_content", "")) or ""
        return cls(
            role=role,
            content=content,
            thinking=str(thinking),
            tool_calls=tuple(ToolCall.from_dict(c) for c in calls),
            tool_name=str(data.get("tool_name") or data.get("name") or ""),
            tool_call_id=str(data.get("tool_call_id") or ""),
        )


@dataclass(frozen=True)
class PromptInputs:
    """What one chat request gives the template, before the model's defaults apply.

    ``system`` is a system prompt given with the request (it overrides the
    Modelfile's SYSTEM, as a leading system message does); ``tools`` are
    tool definitions in the Ollama/OpenAI JSON shape; ``think`` is the
    request's thinking switch (None: not set; a level string means on).
    """

    messages: tuple[ChatMessage, ...]
    system: str | None = None
    tools: tuple[Mapping[str, Any], ...] | None = field(default=None, hash=False)
    think: Think = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(as_message(m) for m in self.messages))
        if self.tools is not None:
            object.__setattr__(self, "tools", tuple(self.tools))


def as_message(value: Any) -> ChatMessage:
    """A `ChatMessage` from itself, a mapping, or anything with ``role`` and ``content``."""
    if isinstance(value, ChatMessage):
        return value
    if isinstance(value, Mapping):
        return ChatMessage.from_dict(value)
    role = getattr(value, "role", None)
    content = getattr(value, "content", None)
    if isinstance(role, str) and isinstance(content, str):
        return ChatMessage(role=role, content=content)
    raise InputError(f"cannot use {type(value).__name__} as a chat message")


def conversation(inputs: PromptInputs, *, default_system: str | None = None,
                 modelfile_messages: Sequence[Any] = ()) -> tuple[ChatMessage, ...]:
    """The messages the template sees, by Ollama's rule.

    The Modelfile's MESSAGE lines come first, then the request's messages
    (a request ``system`` counts as a leading system message). The
    Modelfile's SYSTEM is put in front of everything unless the request
    itself starts with a system message.
    """
    requested = list(inputs.messages)
    if inputs.system:
        requested.insert(0, ChatMessage(role="system", content=inputs.system))
    messages = [as_message(m) for m in modelfile_messages] + requested
    starts_with_system = bool(requested) and requested[0].role == "system"
    if default_system and not starts_with_system:
        messages.insert(0, ChatMessage(role="system", content=default_system))
    return tuple(messages)
