"""Ollama's api types as a Go template sees them: `.Messages`, `.Tools`, tool calls.

Field names, field order, JSON keys and ``omitempty`` follow Ollama's
``api`` package, so ``{{ .Function.Name }}``, ``{{ json .Tools }}`` and
``{{ .Function.Arguments }}`` give the same bytes as Ollama. Tool-call
arguments and a tool's top-level parameter properties reach Ollama's
templates as plain Go maps (its ``templateArgs`` / ``templateProperties``),
so their JSON has sorted keys whatever order the request gave; nested
properties keep their order (``*api.ToolPropertiesMap``). Tools arrive as
JSON-like mappings (OpenAI/Ollama request shape) and are decoded the way
Go's encoding/json would: unknown keys dropped, numbers inside untyped
fields (``items``, ``enum``, tool-call arguments) become float64.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar
from collections.abc import Mapping, Sequence

from . import gojson
from .values import GoStruct, JsonField, OrderedGoMap


def _untyped(value: Any) -> Any:
    """A JSON value decoded into Go's `any`: numbers become float64, objects maps."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _untyped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_untyped(v) for v in value]
    return value


class Arguments(dict):  # type: ignore[type-arg]
    """Tool-call arguments as Ollama's templates get them: a Go map that prints as JSON, keys sorted."""

    GO_TYPE: ClassVar[str] = "template.templateArgs"

    def go_string(self) -> str:
        return gojson.marshal(self)


class PropertyType(tuple):  # type: ignore[type-arg]
    """api.PropertyType: one JSON Schema type or several."""

    GO_TYPE: ClassVar[str] = "api.PropertyType"

    def go_string(self) -> str:
        if not self:
            return ""
        if len(self) == 1:
            return str(self[0])
        return "[" + " ".join(self) + "]"

    def go_json(self) -> str:
        if len(self) == 1:
            return gojson.quote(self[0])
        if not self:
            return "null"
        return "[" + ",".join(gojson.quote(t) for t in self) + "]"


class PropertiesMap(OrderedGoMap):
    """api.ToolPropertiesMap: nested schema properties, in declaration order."""

    GO_TYPE: ClassVar[str] = "*api.ToolPropertiesMap"


class ParameterProperties(dict):  # type: ignore[type-arg]
    """A tool's top-level parameter properties as templates get them: a Go map printing as JSON, keys sorted."""

    GO_TYPE: ClassVar[str] = "template.templateProperties"

    def go_string(self) -> str:
        return gojson.marshal(self)


@dataclass(frozen=True)
class ToolProperty(GoStruct):
    AnyOf: tuple[ToolProperty, ...] = ()
    Type: PropertyType = field(default_factory=PropertyType)
    Items: Any = None
    Description: str = ""
    Enum: tuple[Any, ...] = ()
    Properties: PropertiesMap | None = None
    Required: tuple[str, ...] = ()

    GO_TYPE: ClassVar[str] = "api.ToolProperty"
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("AnyOf", "anyOf", True), JsonField("Type", "type", True),
        JsonField("Items", "items", True), JsonField("Description", "description", True),
        JsonField("Enum", "enum", True), JsonField("Properties", "properties", True),
        JsonField("Required", "required", True),
    )


@dataclass(frozen=True)
class ToolFunctionParameters(GoStruct):
    Type: str = ""
    Defs: Any = None
    Items: Any = None
    Required: tuple[str, ...] = ()
    Properties: ParameterProperties | None = None

    GO_TYPE: ClassVar[str] = "api.ToolFunctionParameters"
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("Type", "type"), JsonField("Defs", "$defs", True),
        JsonField("Items", "items", True), JsonField("Required", "required", True),
        JsonField("Properties", "properties"),
    )

    def go_string(self) -> str:
        return gojson.marshal(self)


@dataclass(frozen=True)
class ToolFunction(GoStruct):
    Name: str = ""
    Description: str = ""
    Parameters: ToolFunctionParameters = ToolFunctionParameters()

    GO_TYPE: ClassVar[str] = "api.ToolFunction"
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("Name", "name"), JsonField("Description", "description", True),
        JsonField("Parameters", "parameters"),
    )

    def go_string(self) -> str:
        return gojson.marshal(self)


@dataclass(frozen=True)
class Tool(GoStruct):
    Type: str = ""
    Items: Any = None
    Function: ToolFunction = ToolFunction()

    GO_TYPE: ClassVar[str] = "api.Tool"
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("Type", "type"), JsonField("Items", "items", True),
        JsonField("Function", "function"),
    )

    def go_string(self) -> str:
        return gojson.marshal(self)


class Tools(tuple):  # type: ignore[type-arg]
    """api.Tools; `nil` marks "no tools given" (JSON ``null``) apart from an empty list."""

    GO_TYPE: ClassVar[str] = "api.Tools"
    nil: bool

    def __new__(cls, items: Sequence[Tool] = (), *, nil: bool = False) -> Tools:
        made = super().__new__(cls, items)
        made.nil = nil and not items
        return made

    def go_string(self) -> str:
        return gojson.marshal(self)

    def go_json(self) -> str:
        if self.nil:
            return "null"
        return "[" + ",".join(gojson.marshal(t) for t in self) + "]"


@dataclass(frozen=True)
class ToolCallFunction(GoStruct):
    Index: int = 0
    Name: str = ""
    Arguments: Arguments = field(default_factory=lambda: Arguments())

    GO_TYPE: ClassVar[str] = "api.ToolCallFunction"
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("Index", "index"), JsonField("Name", "name"), JsonField("Arguments", "arguments"),
    )


@dataclass(frozen=True)
class ToolCall(GoStruct):
    ID: str = ""
    Function: ToolCallFunction = ToolCallFunction()

    GO_TYPE: ClassVar[str] = "api.ToolCall"
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("ID", "id", True), JsonField("Function", "function"),
    )


@dataclass(frozen=True)
class Message(GoStruct):
    Role: str = ""
    Content: str = ""
    Thinking: str = ""
    Images: tuple[bytes, ...] = ()
    ToolCalls: tuple[ToolCall, ...] = ()
    ToolName: str = ""
    ToolCallID: str = ""

    GO_TYPE: ClassVar[str] = "*api.Message"
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("Role", "role"), JsonField("Content", "content"),
        JsonField("Thinking", "thinking", True), JsonField("Images", "images", True),
        JsonField("ToolCalls", "tool_calls", True), JsonField("ToolName", "tool_name", True),
        JsonField("ToolCallID", "tool_call_id", True),
    )


# --- decoding request JSON into these types -------------------------------

class ToolDecodeError(ValueError):
    """A tool definition that does not have Ollama's shape; the message says where."""


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ToolDecodeError(f"{where}.{key} must be a string, not {type(value).__name__}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ToolDecodeError(f"{where} must be an object, not {type(value).__name__}")
    return value


def _property_type(value: Any, where: str) -> PropertyType:
    if value is None:
        return PropertyType()
    if isinstance(value, str):
        return PropertyType((value,))
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return PropertyType(value)
    raise ToolDecodeError(f"{where}.type must be a string or a list of strings")


def _properties(value: Any, where: str) -> PropertiesMap | None:
    if value is None:
        return None
    props = PropertiesMap()
    for name, spec in _mapping(value, where).items():
        props[str(name)] = _tool_property(spec, f"{where}.{name}")
    return props


def _parameter_properties(value: Any, where: str) -> ParameterProperties | None:
    nested = _properties(value, where)
    return None if nested is None else ParameterProperties(nested)


def _tool_property(value: Any, where: str) -> ToolProperty:
    data = _mapping(value, where)
    any_of = data.get("anyOf") or ()
    enum = data.get("enum") or ()
    required = data.get("required") or ()
    if not isinstance(required, (list, tuple)) or not all(isinstance(r, str) for r in required):
        raise ToolDecodeError(f"{where}.required must be a list of strings")
    return ToolProperty(
        AnyOf=tuple(_tool_property(p, f"{where}.anyOf[{i}]") for i, p in enumerate(any_of)),
        Type=_property_type(data.get("type"), where),
        Items=_untyped(data.get("items")),
        Description=_string(data, "description", where),
        Enum=tuple(_untyped(v) for v in enum),
        Properties=_properties(data.get("properties"), f"{where}.properties"),
        Required=tuple(required),
    )


def tool_from_json(value: Any, where: str = "tools[0]") -> Tool:
    """Decode one tool definition (``{"type": "function", "function": {...}}``)."""
    data = _mapping(value, where)
    function = _mapping(data.get("function"), f"{where}.function")
    params = _mapping(function.get("parameters"), f"{where}.function.parameters")
    required = params.get("required") or ()
    if not isinstance(required, (list, tuple)) or not all(isinstance(r, str) for r in required):
        raise ToolDecodeError(f"{where}.function.parameters.required must be a list of strings")
    return Tool(
        Type=_string(data, "type", where),
        Items=_untyped(data.get("items")),
        Function=ToolFunction(
            Name=_string(function, "name", f"{where}.function"),
            Description=_string(function, "description", f"{where}.function"),
            Parameters=ToolFunctionParameters(
                Type=_string(params, "type", f"{where}.function.parameters"),
                Defs=_untyped(params.get("$defs")),
                Items=_untyped(params.get("items")),
                Required=tuple(required),
                Properties=_parameter_properties(params.get("properties"),
                                                 f"{where}.function.parameters.properties"),
            ),
        ),
    )


def tools_from_json(values: Sequence[Any] | None) -> Tools:
    """Decode a request's tools; None means none were given."""
    if values is None:
        return Tools(nil=True)
    return Tools(tuple(tool_from_json(v, f"tools[{i}]") for i, v in enumerate(values)))


def arguments_from(value: Mapping[str, Any] | str | None) -> Arguments:
    """Tool-call arguments from a mapping or a JSON object string."""
    if value is None:
        return Arguments()
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolDecodeError(f"tool call arguments are not valid JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise ToolDecodeError("tool call arguments must be a JSON object")
    args = Arguments()
    for key, item in value.items():
        args[str(key)] = _untyped(item)
    return args
