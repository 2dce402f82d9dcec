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

from .budget import BoundedText, Meter
from .gofmt import format_float_shortest
from .values import NIL, GoStruct, OrderedGoMap

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                  "\b": "\\b", "\f": "\\f"}
_HEX = "0123456789abcdef"


class UnsupportedValue(ValueError):
    """A value encoding/json refuses (NaN, infinities)."""


def _escape_for(code: int) -> str:
    char = chr(code)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if 0xD800 <= code <= 0xDFFF:
        # Invalid UTF-8 (kept as surrogates) is written as the escape \ufffd, as in Go.
        return "\\ufffd"
    return "\\u" + "".join(_HEX[(code >> shift) & 0xF] for shift in (12, 8, 4, 0))


# Every character Go escapes, for str.translate (which does the work in C).
_ESCAPES = {code: _escape_for(code) for code in (*range(0x20), *map(ord, '"\\<>&'), 0x2028, 0x2029,
                                                 *range(0xD800, 0xE000))}

# Long strings are quoted in slices of this many characters, so a limit stops
# the work one slice past it rather than after the whole string.
_SLICE = 1 << 16


def quote(text: str, out: BoundedText | None = None) -> str:
    """A JSON string the way Go's encoder (with HTML escaping) writes it.

    With `out`, the quoted text is added to it (checked slice by slice) and
    the empty string returned.
    """
    sink = out if out is not None else BoundedText(None, "")
    sink.add('"')
    for start in range(0, len(text), _SLICE):
        sink.add(text[start:start + _SLICE].translate(_ESCAPES))
    sink.add('"')
    return "" if out is not None else sink.text()


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


def _encode(value: Any, out: BoundedText) -> None:
    custom = getattr(value, "go_json", None)
    if custom is not None:
        out.add(custom())
        return
    if value is None or value is NIL:
        out.add("null")
    elif isinstance(value, bool):
        out.add("true" if value else "false")
    elif isinstance(value, int):
        out.add(str(value))
    elif isinstance(value, float):
        out.add(_float(value))
    elif isinstance(value, str):
        quote(value, out)
    elif isinstance(value, (bytes, bytearray)):
        out.check(len(value) * 4 // 3 + 4)
        out.add('"' + base64.b64encode(bytes(value)).decode("ascii") + '"')
    elif isinstance(value, GoStruct):
        out.add("{")
        first = True
        for spec in value.JSON_FIELDS:
            field = getattr(value, spec.name)
            if spec.omitempty and is_empty(field):
                continue
            if not first:
                out.add(",")
            first = False
            quote(spec.key, out)
            out.add(":")
            _encode(field, out)
        out.add("}")
    elif isinstance(value, dict):
        keys = list(value) if isinstance(value, OrderedGoMap) else sorted(value, key=str)
        out.add("{")
        for index, key in enumerate(keys):
            if index:
                out.add(",")
            quote(str(key), out)
            out.add(":")
            _encode(value[key], out)
        out.add("}")
    elif isinstance(value, (list, tuple)):
        out.add("[")
        for index, item in enumerate(value):
            if index:
                out.add(",")
            _encode(item, out)
        out.add("]")
    else:
        raise UnsupportedValue(f"json: unsupported type: {type(value).__name__}")


def marshal(value: Any, *, meter: Meter | None = None) -> str:
    """json.Marshal(value) as text; `UnsupportedValue` where Go returns an error.

    With a render's `meter`, `BudgetExceeded` as soon as the text grows past what it allows.
    """
    out = BoundedText(meter, "the result of json")
    _encode(value, out)
    return out.text()
