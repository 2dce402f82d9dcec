"""The part of Go's fmt package templates reach: how values print, and printf.

`format_value` is ``fmt.Sprint`` of one value (what ``{{ .X }}`` writes),
`sprintf` is ``fmt.Sprintf`` for the verbs ``%v %s %q %d %t %x %X %o %b %c
%e %f %g %T %%`` with flags, width and precision, including Go's
``%!d(string=hi)`` / ``%!v(MISSING)`` / ``%!(EXTRA ...)`` complaints.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any
from collections.abc import Callable

from .budget import BoundedText, Meter
from .values import NIL, GoStruct, go_type_name, sorted_map_keys

_VERB = re.compile(r"%([+\-# 0]*)(\d+)?(?:\.(\d*))?(.?)", re.DOTALL)


# --- floats ---------------------------------------------------------------

def shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(value) and the decimal point position.

    ``123.4`` -> ``("1234", 3)``: the value is 0.1234 x 10**3.
    """
    _, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    assert isinstance(exponent, int)
    if not text:
        return "0", 1
    exponent += len(digits) - len(text)
    return text, len(text) + exponent


def _fixed_from_digits(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * (-point) + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _exponent_from_digits(digits: str, point: int, min_exp_digits: int = 2) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):0{min_exp_digits}d}"


def _special_float(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def format_float_shortest(value: float, verb: str = "g") -> str:
    """strconv.FormatFloat(value, verb, -1, 64) for verb g, e or f."""
    special = _special_float(value)
    if special is not None:
        return special
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + {"e": "0e+00", "f": "0", "g": "0"}[verb]
    digits, point = shortest_digits(value)
    if verb == "e":
        return sign + _exponent_from_digits(digits, point)
    if verb == "f":
        return sign + _fixed_from_digits(digits, point)
    exp = point - 1
    # strconv uses precision 6 to choose between the forms when printing the
    # shortest representation: 100000 but 1e+06, 0.0001 but 1e-05.
    if exp < -4 or exp >= 6:
        return sign + _exponent_from_digits(digits, point)
    return sign + _fixed_from_digits(digits, point)


def _format_float_precision(value: float, verb: str, precision: int | None, sharp: bool) -> str:
    special = _special_float(value)
    if special is not None:
        return special
    lower = verb.lower()
    if precision is None and lower in "ef":
        # %e and %f default to 6 digits; only %g and %v print the shortest form.
        precision = 6
    if precision is None:
        text = format_float_shortest(value, "g")
    elif lower == "f":
        text = f"{value:.{precision}f}"
    elif lower == "e":
        text = f"{value:.{precision}e}"
    else:
        text = _go_g_with_precision(value, precision)
    if sharp and "." not in text and "e" not in text:
        text += "."
    return text.upper() if verb in "EG" else text


def _go_g_with_precision(value: float, precision: int) -> str:
    precision = max(precision, 1)
    if value == 0:
        return "0"
    text = f"{abs(value):.{precision - 1}e}"
    mantissa, exp_text = text.split("e")
    exp = int(exp_text)
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    sign = "-" if value < 0 else ""
    eprec = precision
    if eprec > len(digits) and len(digits) >= exp + 1:
        eprec = len(digits)
    if exp < -4 or exp >= eprec:
        return sign + _exponent_from_digits(digits, exp + 1)
    return sign + _fixed_from_digits(digits, exp + 1)


# --- quoting --------------------------------------------------------------

_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """strconv.Quote: a double-quoted Go string literal."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:
            # A byte that was not valid UTF-8 (kept by surrogateescape).
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif char.isprintable():
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _quote_rune(code: int) -> str:
    if code == ord("'"):
        return "'\\''"
    if code == ord('"'):
        return "'\"'"
    try:
        char = chr(code)
    except ValueError:
        char = "\ufffd"
    return "'" + go_quote(char)[1:-1] + "'"


# --- %v -------------------------------------------------------------------

def format_value(value: Any, *, plus: bool = False, depth: int = 0) -> str:
    """fmt's %v (``%+v`` with `plus`) of a value; a Stringer prints its String()."""
    if value is None or value is NIL:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float_shortest(value, "g")
    if isinstance(value, str):
        return value
    stringer: Callable[[], str] | None = getattr(value, "go_string", None)
    if stringer is not None:
        return stringer()
    if isinstance(value, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, GoStruct):
        parts = []
        for name, field in value.go_fields():
            shown = format_value(field, plus=plus, depth=depth + 1)
            parts.append(f"{name}:{shown}" if plus else shown)
        text = "{" + " ".join(parts) + "}"
        return ("&" + text) if depth == 0 and value.GO_TYPE.startswith("*") else text
    if isinstance(value, dict):
        items = [f"{format_value(k, plus=plus, depth=depth + 1)}:"
                 f"{format_value(value[k], plus=plus, depth=depth + 1)}"
                 for k in sorted_map_keys(value)]
        return "map[" + " ".join(items) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_value(v, plus=plus, depth=depth + 1) for v in value) + "]"
    return str(value)


def sprint(args: list[Any], *, meter: Meter | None = None) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out = BoundedText(meter, "the result of print")
    for index, arg in enumerate(args):
        if index > 0 and not isinstance(arg, str) and not isinstance(args[index - 1], str):
            out.add(" ")
        out.add(format_value(arg))
    return out.text()


def sprintln(args: list[Any], *, meter: Meter | None = None) -> str:
    """fmt.Sprintln: always spaces between operands, and a newline."""
    out = BoundedText(meter, "the result of println")
    for index, arg in enumerate(args):
        if index > 0:
            out.add(" ")
        out.add(format_value(arg))
    out.add("\n")
    return out.text()


# --- printf ---------------------------------------------------------------

class _Spec:
    """One parsed %verb with its flags."""

    def __init__(self, flags: str, width: str | None, precision: str | None, verb: str) -> None:
        self.minus = "-" in flags
        self.plus = "+" in flags
        self.sharp = "#" in flags
        self.space = " " in flags
        self.zero = "0" in flags and not self.minus
        self.width = int(width) if width else None
        self.precision = None if precision is None else int(precision or "0")
        self.verb = verb

    def pad(self, text: str, numeric: bool = False) -> str:
        if self.width is None or len(text) >= self.width:
            return text
        fill = self.width - len(text)
        if self.minus:
            return text + " " * fill
        if self.zero and numeric:
            sign = text[0] if text[:1] in "+-" else ""
            return sign + "0" * fill + text[len(sign):]
        return " " * fill + text


def _bad_verb(spec: _Spec, value: Any) -> str:
    if value is None or value is NIL:
        return f"%!{spec.verb}(<nil>)"
    return f"%!{spec.verb}({go_type_name(value)}={format_value(value)})"


def _format_int(spec: _Spec, value: int) -> str:
    verb = spec.verb
    if verb in "dv":
        body = str(abs(value))
    elif verb == "b":
        body = format(abs(value), "b")
    elif verb == "o":
        body = format(abs(value), "o")
        if spec.sharp:
            body = "0" + body
    elif verb == "O":
        body = "0o" + format(abs(value), "o")
    elif verb in "xX":
        body = format(abs(value), "x" if verb == "x" else "X")
        if spec.sharp:
            body = ("0x" if verb == "x" else "0X") + body
    elif verb == "c":
        return spec.pad(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd")
    elif verb == "q":
        return spec.pad(_quote_rune(value))
    elif verb == "U":
        return spec.pad(f"U+{value:04X}")
    else:
        return _bad_verb(spec, value)
    if spec.precision is not None:
        body = body.rjust(spec.precision, "0")
    sign = "-" if value < 0 else ("+" if spec.plus else (" " if spec.space else ""))
    return spec.pad(sign + body, numeric=spec.precision is None)


def _format_string(spec: _Spec, value: str) -> str:
    verb = spec.verb
    if spec.precision is not None and verb in "sv":
        value = value[:spec.precision]
    if verb in "sv":
        return spec.pad(value)
    if verb == "q":
        if spec.sharp and "`" not in value and all(c.isprintable() or c == "\t" for c in value):
            return spec.pad("`" + value + "`")
        return spec.pad(go_quote(value))
    if verb in "xX":
        data = value.encode("utf-8", "surrogateescape")
        text = data.hex() if verb == "x" else data.hex().upper()
        return spec.pad(text)
    return _bad_verb(spec, value)


def _format_one(spec: _Spec, value: Any) -> str:
    verb = spec.verb
    if verb == "T":
        return spec.pad(go_type_name(value))
    if value is None or value is NIL:
        return spec.pad("<nil>") if verb == "v" else _bad_verb(spec, value)
    stringer = getattr(value, "go_string", None)
    if stringer is not None and verb in "vsqxX" and not isinstance(value, (str, bool, int, float)):
        return _format_string(spec, stringer())
    if isinstance(value, bool):
        if verb in "vt":
            return spec.pad("true" if value else "false")
        return _bad_verb(spec, value)
    if isinstance(value, int):
        return _format_int(spec, value)
    if isinstance(value, float):
        if verb in "vfFeEgG":
            text = _format_float_precision(value, "g" if verb == "v" else verb, spec.precision,
                                           spec.sharp)
            if not text.startswith("-") and (spec.plus or spec.space):
                text = ("+" if spec.plus else " ") + text
            return spec.pad(text, numeric=True)
        return _bad_verb(spec, value)
    if isinstance(value, str):
        return _format_string(spec, value)
    if isinstance(value, (bytes, bytearray)):
        if verb in "sq":
            return _format_string(spec, bytes(value).decode("utf-8", "surrogateescape"))
        if verb in "xX":
            return _format_string(spec, bytes(value).decode("utf-8", "surrogateescape"))
        return spec.pad("[" + " ".join(_format_one(spec_for(verb), b) for b in value) + "]")
    if verb == "v":
        return spec.pad(format_value(value, plus=spec.plus))
    if isinstance(value, dict):
        items = [f"{_format_one(spec_for(verb), k)}:{_format_one(spec_for(verb), value[k])}"
                 for k in sorted_map_keys(value)]
        return "map[" + " ".join(items) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_format_one(spec_for(verb), v) for v in value) + "]"
    if isinstance(value, GoStruct):
        return "{" + " ".join(_format_one(spec_for(verb), v) for _, v in value.go_fields()) + "}"
    return _bad_verb(spec, value)


def spec_for(verb: str) -> _Spec:
    return _Spec("", None, None, verb)


def _too_large(digits: str | None) -> bool:
    """Go's parsenum overflow: it gives up once the number passes 1e6 with digits still to read."""
    return digits is not None and len(digits) > 1 and int(digits[:-1]) > _MAX_NUMBER


_MAX_NUMBER = 1_000_000


def sprintf(format_string: str, args: list[Any], *, meter: Meter | None = None) -> str:
    """fmt.Sprintf with Go's output for bad verbs, missing and extra arguments.

    A width or precision too large for Go (over a million, roughly) makes Go
    stop reading the format, with ``%!(NOVERB)``; so does this. With a
    render's `meter`, a result longer than any value may be is refused as it grows.
    """
    out = BoundedText(meter, "the result of printf")
    arg_index = 0
    pos = 0
    while pos < len(format_string):
        percent = format_string.find("%", pos)
        if percent < 0:
            out.add(format_string[pos:])
            break
        out.add(format_string[pos:percent])
        match = _VERB.match(format_string, percent)
        assert match is not None
        flags, width, precision, verb = match.groups()
        pos = match.end()
        if verb == "" or _too_large(width) or _too_large(precision):
            out.add("%!(NOVERB)")
            break
        if verb == "%":
            out.add("%")
            continue
        spec = _Spec(flags, width, precision, verb)
        if arg_index >= len(args):
            out.add(f"%!{verb}(MISSING)")
            continue
        out.check(max(spec.width or 0, spec.precision or 0))
        out.add(_format_one(spec, args[arg_index]))
        arg_index += 1
    if arg_index < len(args):
        extra = ", ".join(
            "<nil>" if a is None or a is NIL else f"{go_type_name(a)}={format_value(a)}"
            for a in args[arg_index:])
        out.add(f"%!(EXTRA {extra})")
    return out.text()
