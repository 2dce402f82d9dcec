"""The functions a template can call, with Go's semantics and error messages.

Go's builtins ``and or not len index slice eq ne lt le gt ge print println
printf`` and Ollama's ``json``, ``currentDate``, ``yesterdayDate`` and
``toTypeScriptType``. ``and``/``or`` short-circuit and are run by
the evaluator itself; their entries here only declare them. Strings are
measured, indexed and sliced in UTF-8 bytes, as in Go.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from . import apitypes, gofmt, gojson
from .budget import Meter
from .values import NIL, go_type_name, is_true


class FunctionError(Exception):
    """A function refused its arguments; the evaluator adds the position."""


@dataclass(frozen=True)
class GoFunction:
    """A callable's Go signature: `fixed` leading parameters, then maybe a variadic tail.

    `any_typed` parameters take ``nil`` (Go's ``any``); the others are
    ``reflect.Value`` parameters, which refuse an explicit ``nil``.
    `string_first` marks printf's format parameter. `builds_text` functions
    take the render's ``meter=`` and raise `BudgetExceeded` as soon as their
    result grows past what it allows.
    """

    name: str
    call: Callable[..., Any]
    fixed: int
    variadic: bool = False
    any_typed: bool = False
    string_first: bool = False
    builds_text: bool = False


# --- comparison -----------------------------------------------------------

_INVALID, _BOOL, _INT, _FLOAT, _STRING = "invalid", "bool", "int", "float", "string"
_BAD_COMPARISON = "incompatible types for comparison"
_BAD_COMPARISON_TYPE = "invalid type for comparison"


def _basic_kind(value: Any) -> str:
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, int):
        return _INT
    if isinstance(value, float):
        return _FLOAT
    if isinstance(value, str):
        return _STRING
    return _INVALID


def _deref(value: Any) -> Any:
    return None if value is NIL else value


def go_eq(arg1: Any, *others: Any) -> bool:
    arg1 = _deref(arg1)
    if not others:
        raise FunctionError("missing argument for comparison")
    kind1 = _basic_kind(arg1)
    for other in others:
        other = _deref(other)
        kind2 = _basic_kind(other)
        if kind1 != kind2:
            if arg1 is not None and other is not None:
                raise FunctionError(_BAD_COMPARISON)
            truth = False
        elif kind1 != _INVALID:
            truth = arg1 == other
        elif arg1 is None or other is None:
            truth = arg1 is None and other is None
        elif isinstance(arg1, (list, tuple, dict, bytes, bytearray)) or \
                isinstance(other, (list, tuple, dict, bytes, bytearray)):
            raise FunctionError(f"non-comparable type {gofmt.format_value(arg1)}: "
                                f"{go_type_name(arg1)}")
        elif type(arg1) is not type(other):
            raise FunctionError(f"non-comparable types {gofmt.format_value(arg1)}: "
                                f"{go_type_name(arg1)}, {go_type_name(other)}: "
                                f"{gofmt.format_value(other)}")
        else:
            truth = arg1 == other
        if truth:
            return True
    return False


def go_ne(arg1: Any, arg2: Any) -> bool:
    return not go_eq(arg1, arg2)


def go_lt(arg1: Any, arg2: Any) -> bool:
    arg1, arg2 = _deref(arg1), _deref(arg2)
    kind1, kind2 = _basic_kind(arg1), _basic_kind(arg2)
    if kind1 == _INVALID or kind2 == _INVALID:
        raise FunctionError(_BAD_COMPARISON_TYPE)
    if kind1 != kind2:
        raise FunctionError(_BAD_COMPARISON)
    if kind1 == _BOOL:
        raise FunctionError(_BAD_COMPARISON_TYPE)
    if kind1 == _STRING:
        # Go compares strings bytewise; code point order is the same for UTF-8.
        return bool(arg1 < arg2)
    return bool(arg1 < arg2)


def go_le(arg1: Any, arg2: Any) -> bool:
    return go_lt(arg1, arg2) or go_eq(arg1, arg2)


def go_gt(arg1: Any, arg2: Any) -> bool:
    return not go_le(arg1, arg2)


def go_ge(arg1: Any, arg2: Any) -> bool:
    return not go_lt(arg1, arg2)


def go_not(arg: Any) -> bool:
    return not is_true(arg)


# --- collections ----------------------------------------------------------

def go_len(item: Any) -> int:
    if item is NIL:
        raise FunctionError("len of nil pointer")
    if item is None:
        raise FunctionError("len of untyped nil")
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogateescape"))
    if isinstance(item, (bytes, bytearray, list, tuple, dict)):
        return len(item)
    raise FunctionError(f"len of type {go_type_name(item)}")


def _index_arg(index: Any, cap: int) -> int:
    index = _deref(index)
    if index is None:
        raise FunctionError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise FunctionError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > cap:
        raise FunctionError(f"index out of range: {index}")
    return index


def go_index(item: Any, *indexes: Any) -> Any:
    item = _deref(item)
    if item is None:
        raise FunctionError("index of untyped nil")
    for index in indexes:
        if item is NIL or item is None:
            raise FunctionError("index of nil pointer")
        if isinstance(item, (str, bytes, bytearray, list, tuple)):
            data = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else item
            position = _index_arg(index, len(data))
            if position >= len(data):
                raise FunctionError(f"index out of range: {position}")
            element = data[position]
            item = NIL if element is None else element
        elif isinstance(item, dict):
            key = _deref(index)
            if key is None:
                raise FunctionError("value is nil; should be of type string")
            if not isinstance(key, str):
                raise FunctionError(f"value has type {go_type_name(key)}; should be string")
            value = item.get(key, NIL)
            item = NIL if value is None else value
        else:
            raise FunctionError(f"can't index item of type {go_type_name(item)}")
    return item


def go_slice(item: Any, *indexes: Any) -> Any:
    item = _deref(item)
    if item is None:
        raise FunctionError("slice of untyped nil")
    if len(indexes) > 3:
        raise FunctionError(f"too many slice indexes: {len(indexes)}")
    is_string = isinstance(item, str)
    if is_string:
        if len(indexes) == 3:
            raise FunctionError("cannot 3-index slice a string")
        data: Any = item.encode("utf-8", "surrogateescape")
    elif isinstance(item, (list, tuple, bytes, bytearray)):
        data = item
    else:
        raise FunctionError(f"can't slice item of type {go_type_name(item)}")
    bounds = [0, len(data)]
    for position, index in enumerate(indexes):
        value = _index_arg(index, len(data))
        if position < 2:
            bounds[position] = value
    if bounds[0] > bounds[1]:
        raise FunctionError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3:
        third = _index_arg(indexes[2], len(data))
        if bounds[1] > third:
            raise FunctionError(f"invalid slice index: {bounds[1]} > {third}")
    result = data[bounds[0]:bounds[1]]
    if is_string:
        return result.decode("utf-8", "surrogateescape")
    if type(item) not in (list, tuple, bytes, bytearray):
        # Slicing a named slice type (api.Tools) keeps its type, as in Go.
        return type(item)(result)
    return result


# --- printing -------------------------------------------------------------

def go_printf(format_string: str, *args: Any, meter: Meter | None = None) -> str:
    return gofmt.sprintf(format_string, list(args), meter=meter)


def go_print(*args: Any, meter: Meter | None = None) -> str:
    return gofmt.sprint(list(args), meter=meter)


def go_println(*args: Any, meter: Meter | None = None) -> str:
    return gofmt.sprintln(list(args), meter=meter)


def go_json(value: Any, *, meter: Meter | None = None) -> str:
    # Ollama ignores json.Marshal's error and prints the empty result.
    try:
        return gojson.marshal(value, meter=meter)
    except gojson.UnsupportedValue:
        return ""


def go_current_date(*_format: str) -> str:
    # Ollama ignores the format argument: always YYYY-MM-DD, local time.
    return datetime.date.today().isoformat()


def go_yesterday_date(*_format: str) -> str:
    return (datetime.date.today() - datetime.timedelta(days=1)).isoformat()


_TYPESCRIPT = {"string": "string", "number": "number", "integer": "number", "boolean": "boolean",
               "array": "any[]", "object": "Record<string, any>", "null": "null"}


def go_to_typescript_type(value: Any) -> str:
    """Ollama's ``ToolProperty.ToTypeScriptType``: a schema property as a TypeScript type."""
    if not isinstance(value, apitypes.ToolProperty):
        return "any"
    if value.AnyOf:
        return " | ".join(go_to_typescript_type(p) for p in value.AnyOf)
    if not value.Type:
        return "any"
    return " | ".join(_TYPESCRIPT.get(t, "any") for t in value.Type)


def _declared_only(*_: Any) -> Any:
    raise AssertionError("and/or are evaluated by the evaluator")


FUNCTIONS: dict[str, GoFunction] = {
    f.name: f for f in (
        GoFunction("and", _declared_only, 1, variadic=True),
        GoFunction("or", _declared_only, 1, variadic=True),
        GoFunction("not", go_not, 1),
        GoFunction("len", go_len, 1),
        GoFunction("index", go_index, 1, variadic=True),
        GoFunction("slice", go_slice, 1, variadic=True),
        GoFunction("eq", go_eq, 1, variadic=True),
        GoFunction("ne", go_ne, 2),
        GoFunction("lt", go_lt, 2),
        GoFunction("le", go_le, 2),
        GoFunction("gt", go_gt, 2),
        GoFunction("ge", go_ge, 2),
        GoFunction("printf", go_printf, 1, variadic=True, any_typed=True, string_first=True, builds_text=True),
        GoFunction("print", go_print, 0, variadic=True, any_typed=True, builds_text=True),
        GoFunction("println", go_println, 0, variadic=True, any_typed=True, builds_text=True),
        GoFunction("json", go_json, 1, any_typed=True, builds_text=True),
        GoFunction("currentDate", go_current_date, 0, variadic=True),
        GoFunction("yesterdayDate", go_yesterday_date, 0, variadic=True),
        GoFunction("toTypeScriptType", go_to_typescript_type, 1, any_typed=True),
    )
}
"""Every function a template may call, by name."""

__all__ = ["FUNCTIONS", "FunctionError", "GoFunction"]
