"""Go literal syntax: unquote strings and character constants, read numbers.

Go's rules, not Python's: ``"\\x41"`` is a byte, ``'a'`` is the number 97,
``017`` is octal, and a number with a ``.``, ``e`` or ``p`` is a float even
when its value is whole (``{{ 3.0 }}`` prints ``3`` but is a float64).
"""

from __future__ import annotations

import re

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_LEGACY_OCTAL = re.compile(r"[+-]?0[0-7_]+")


class LiteralError(ValueError):
    """A literal that is well-formed lexically but not valid Go (the message says why)."""


def _unescape(body: str, quote: str) -> tuple[bytearray, int]:
    """The bytes `body` stands for, and how many runes it held (for char constants)."""
    out = bytearray()
    runes = 0
    i = 0
    while i < len(body):
        char = body[i]
        runes += 1
        if char != "\\":
            out += char.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= len(body):
            raise LiteralError("invalid escape at end of literal")
        kind = body[i + 1]
        if kind in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[kind])
            i += 2
        elif kind == quote:
            out += quote.encode()
            i += 2
        elif kind == "x":
            digits = body[i + 2:i + 4]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", digits):
                raise LiteralError(f"invalid \\x escape {body[i:i + 4]!r}")
            out.append(int(digits, 16))
            i += 4
        elif kind in "01234567":
            digits = body[i + 1:i + 4]
            if not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
                raise LiteralError(f"invalid octal escape {body[i:i + 4]!r}")
            out.append(int(digits, 8))
            i += 4
        elif kind in "uU":
            size = 4 if kind == "u" else 8
            digits = body[i + 2:i + 2 + size]
            if not re.fullmatch(rf"[0-9a-fA-F]{{{size}}}", digits):
                raise LiteralError(f"invalid \\{kind} escape {body[i:i + 2 + size]!r}")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise LiteralError(f"escape {body[i:i + 2 + size]!r} is not a valid Unicode code point")
            out += chr(code).encode("utf-8")
            i += 2 + size
        else:
            raise LiteralError(f"unknown escape sequence \\{kind}")
    return out, runes


def unquote_string(text: str) -> str:
    """The value of a Go string literal as written (``"..."`` or `` `...` ``)."""
    if text.startswith("`"):
        # strconv.Unquote drops carriage returns from raw strings.
        return text[1:-1].replace("\r", "")
    data, _ = _unescape(text[1:-1], '"')
    return data.decode("utf-8", "surrogateescape")


def char_value(text: str) -> int:
    """The code point of a Go character constant such as ``'a'`` or ``'\\n'``."""
    data, runes = _unescape(text[1:-1], "'")
    if runes != 1:
        raise LiteralError(f"malformed character constant: {text}")
    if len(data) == 1:
        # ASCII, or a byte escape such as \xff.
        return data[0]
    decoded = data.decode("utf-8", "surrogateescape")
    if len(decoded) != 1:
        raise LiteralError(f"malformed character constant: {text}")
    return ord(decoded)


def number_value(text: str) -> int | float:
    """The ideal constant a Go number literal evaluates to in a template."""
    if text.endswith("i"):
        raise LiteralError(f"complex number {text} is not supported")
    clean = text.replace("_", "")
    body = clean.lstrip("+-")
    negative = clean.startswith("-")
    is_hex = body[:2] in ("0x", "0X")
    looks_float = ("." in body or "p" in body.lower()) if is_hex else any(c in body for c in ".eE")
    if looks_float:
        try:
            value = float.fromhex(body) if is_hex else float(body)
        except ValueError as exc:
            raise LiteralError(f"bad number syntax: {text}") from exc
        return -value if negative else value
    try:
        value_int = int(body, 8) if _LEGACY_OCTAL.fullmatch(clean) else int(body, 0)
    except ValueError as exc:
        raise LiteralError(f"bad number syntax: {text}") from exc
    if negative:
        value_int = -value_int
    if not _INT64_MIN <= value_int <= _INT64_MAX:
        raise LiteralError(f"integer overflow: {text}")
    return value_int
