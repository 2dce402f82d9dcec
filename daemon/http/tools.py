"""Tools, tool calls and thinking in HTTP requests and replies, for both APIs.

Both APIs define tools the same way (``{"type": "function", "function":
{"name", "description", "parameters"}}``); they differ in calls: OpenAI's
``function.arguments`` is a JSON *string*, Ollama's an *object*. Shapes are
checked here and by pydantic; what a tool means (valid names, schemas,
duplicates) is checked once, by the servicer, for every door alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ingot.proto.ingot.v1 import common_pb2

from .errors import HttpError

__all__ = [
    "FunctionDefinition",
    "ToolDefinition",
    "call_arguments_json",
    "ollama_call",
    "openai_call",
    "think_fields",
    "tools_to_proto",
]


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Letters, digits, `_`, `-` and `.`, at most 64.")
    description: str | None = None
    parameters: dict[str, Any] | None = Field(default=None, description="A JSON Schema object of the arguments.")
    strict: bool | None = Field(default=None, description="Accepted; a constrained call always follows the schema.")


class ToolDefinition(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(default="function", description="Only `function`.")
    function: FunctionDefinition


def tools_to_proto(tools: Sequence[ToolDefinition] | None) -> list[common_pb2.Tool]:
    converted = []
    for index, tool in enumerate(tools or ()):
        if tool.type != "function":
            raise HttpError(400, f"tools[{index}].type: only function tools are supported, not {tool.type!r}",
                            param=f"tools[{index}].type")
        function = tool.function
        converted.append(common_pb2.Tool(
            name=function.name, description=function.description or "",
            parameters_json=json.dumps(function.parameters) if function.parameters is not None else ""))
    return converted


def call_arguments_json(arguments: str | dict[str, Any] | None, param: str) -> str:
    """A history call's arguments (a JSON string or an object) as JSON text."""
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        try:
            value = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise HttpError(400, f"{param}: not JSON ({exc.msg} at column {exc.colno})", param=param) from None
        if not isinstance(value, dict):
            raise HttpError(400, f"{param}: must be a JSON object", param=param)
        return json.dumps(value)
    return json.dumps(arguments)


def think_fields(value: bool | str | None, param: str = "think") -> tuple[bool | None, str]:
    """A request's ``think`` (true, false, or a level) as the servicers' (think, think_level)."""
    if value is None or isinstance(value, bool):
        return value, ""
    text = value.strip().lower()
    if text in ("true", "false"):
        return text == "true", ""
    if not text:
        raise HttpError(400, f"{param}: use true, false or a level (low, medium, high)", param=param)
    return None, text


def openai_call(call: common_pb2.ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments_json}}


def ollama_call(call: common_pb2.ToolCall) -> dict[str, Any]:
    return {"id": call.id, "function": {"index": call.index, "name": call.name,
                                        "arguments": json.loads(call.arguments_json or "{}")}}
