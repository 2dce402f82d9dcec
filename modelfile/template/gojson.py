"""encoding/json's Marshal, for the template function ``json``.

Byte-for-byte what Go writes: no spaces, ``<``, ``>`` and ``&`` escaped as
``\\u003c``..., map keys sorted (an `OrderedGoMap` keeps its order, like
Ollama's ordered maps), struct fields in declaration order honouring
``omitempty``, floats in Go's shortest form (``1e+21``, ``1e-7``), byte
slices as base64.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from .gofmt import format_float_shortest
from .values import NIL, GoStruct, OrderedGoMap

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                  "\b": "\\b", "\f": "\\f"}
_HEX = "0123456789abcdef"


class UnsupportedValue(ValueError):
    """A value encoding/json refuses (NaN, infinities)."""


def quote(text: str) -> str:
    """A JSON string the way Go's encoder (with HTML escaping) writes it."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif code < 0x20 or char in "<>&" or code in (0x2028, 0x2029):
            out.append("\\u" + "".join(_HEX[(code >> shift) & 0xF] for shift in (12, 8, 4, 0)))
        elif 0xD800 <= code <= 0xDFFF:
            # Invalid UTF-8 (kept as surrogates) is written as the escape \ufffd, as in Go.
            out.append("\\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise UnsupportedValue(f"json: unsupported value: {value}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = format_float_shortest(value, "e")
        # Go writes 1e-07 as 1e-7.
        mantissa, exponent = text.split("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits}"
    return format_float_shortest(value, "f")


def is_empty(value: Any) -> bool:
    """Go's omitempty test."""
    if value is None or value is NIL:
        return True
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value == 0
    if isinstance(value, (str, bytes, bytearray, list, tuple, dict)):
        return len(value) == 0
    return False


def _encode(value: Any, out: list[str]) -> None:
    custom = getattr(value, "go_json", None)
    if custom is not None:
        out.append(custom())
        return
    if value is None or value is NIL:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, str):
        out.append(quote(value))
    elif isinstance(value, (bytes, bytearray)):
        out.append('"' + base64.b64encode(bytes(value)).decode("ascii") + '"')
    elif isinstance(value, GoStruct):
        out.append("{")
        first = True
        for spec in value.JSON_FIELDS:
            field = getattr(value, spec.name)
            if spec.omitempty and is_empty(field):
                continue
            if not first:
                out.append(",")
            first = False
            out.append(quote(spec.key) + ":")
            _encode(field, out)
        out.append("}")
    elif isinstance(value, dict):
        keys = list(value) if isinstance(value, OrderedGoMap) else sorted(value, key=str)
        out.append("{")
        for index, key in enumerate(keys):
            if index:
                out.append(",")
            out.append(quote(str(key)) + ":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise UnsupportedValue(f"json: unsupported type: {type(value).__name__}")


def marshal(value: Any) -> str:
    """json.Marshal(value) as text; `UnsupportedValue` where Go returns an error."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)
