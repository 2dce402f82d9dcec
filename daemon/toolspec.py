"""A request's tools and tool choice, checked: what the template shows and what the grammar may call.

Every problem is an `InvalidOptionError` naming the field the way both HTTP
APIs spell it (``tools[1].function.name``, ``tools[0].function.parameters.
properties.city.type``, ``tool_choice``): a name that is empty, too long or
has odd characters, the same name twice, parameters that are not a JSON
Schema of an object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingot.daemon.errors import InvalidOptionError
from ingot.proto.ingot.v1 import common_pb2

__all__ = ["NO_PARAMETERS", "ToolChoice", "ToolSpec", "tool_choice_from_proto", "tools_from_proto"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NO_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class ToolSpec:
    """One function the model may call; `parameters` is None when the request gave none."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def schema(self) -> Mapping[str, Any]:
        """The arguments' schema (no parameters: an empty object)."""
        return self.parameters if self.parameters is not None else NO_PARAMETERS

    def template_tool(self) -> dict[str, Any]:
        """The tool in the OpenAI/Ollama shape templates are written for."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        if self.parameters is not None:
            function["parameters"] = self.parameters
        return {"type": "function", "function": function}

    def to_proto(self) -> common_pb2.Tool:
        return common_pb2.Tool(name=self.name, description=self.description,
                               parameters_json=json.dumps(self.parameters) if self.parameters is not None else "")


def _schema_error(where: str, error: Any) -> InvalidOptionError:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return InvalidOptionError(f"{where}{path}", f"not a valid JSON Schema: {error.message}",
                              hint="parameters must be a JSON Schema object, e.g. "
                                   '{"type": "object", "properties": {"city": {"type": "string"}}}')


def _parameters(text: str, where: str) -> Mapping[str, Any] | None:
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOptionError(where, f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise InvalidOptionError(where, "must be a JSON Schema object, e.g. {\"type\": \"object\", ...}")
    if value.get("type", "object") != "object":
        raise InvalidOptionError(f"{where}.type", f"must be \"object\" (a function's arguments are named), "
                                                  f"not {json.dumps(value.get('type'))}")
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(value))
    if error is not None:
        raise _schema_error(where, error)
    return value


def tools_from_proto(tools: Sequence[common_pb2.Tool]) -> tuple[ToolSpec, ...]:
    """The request's tools, checked (see the module docstring)."""
    specs: list[ToolSpec] = []
    seen: dict[str, int] = {}
    for index, tool in enumerate(tools):
        where = f"tools[{index}].function"
        if not _NAME.fullmatch(tool.name):
            problem = "is empty" if not tool.name else f"{tool.name!r} is not a valid function name"
            raise InvalidOptionError(f"{where}.name", problem,
                                     hint="use 1 to 64 letters, digits, '_', '-' or '.'")
        if tool.name in seen:
            raise InvalidOptionError(f"{where}.name", f"{tool.name!r} is also the name of tools[{seen[tool.name]}]",
                                     hint="every tool needs its own name")
        seen[tool.name] = index
        specs.append(ToolSpec(tool.name, tool.description, _parameters(tool.parameters_json, f"{where}.parameters")))
    return tuple(specs)


@dataclass(frozen=True)
class ToolChoice:
    """``auto`` (the model decides), ``none``, ``required`` (some call) or ``function`` (a call of `function`)."""

    mode: str = "auto"
    function: str = ""


_MODES = {
    common_pb2.ToolChoice.AUTO: "auto",
    common_pb2.ToolChoice.NONE: "none",
    common_pb2.ToolChoice.REQUIRED: "required",
    common_pb2.ToolChoice.FUNCTION: "function",
}


def tool_choice_from_proto(choice: common_pb2.ToolChoice, tools: Sequence[ToolSpec]) -> ToolChoice:
    mode = _MODES.get(choice.mode)
    if mode is None:
        raise InvalidOptionError("tool_choice", f"unknown mode {choice.mode}",
                                 hint="use auto, none, required or a function")
    if mode in ("required", "function") and not tools:
        raise InvalidOptionError("tool_choice", f"{mode} needs tools", hint="send the tools the model may call")
    if mode == "function":
        names = [t.name for t in tools]
        if choice.function not in names:
            raise InvalidOptionError("tool_choice", f"names {choice.function!r}, which is not one of the tools",
                                     hint=f"the tools are: {', '.join(names)}")
    return ToolChoice(mode, choice.function if mode == "function" else "")
