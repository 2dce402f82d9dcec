"""The errors the Modelfile layer raises.

::

    ValueError
     ├── ModelfileError    a Modelfile that cannot be read: file:line:column, the line, a caret, a hint
     ├── ParameterError    one PARAMETER / request option with a bad name or value (no position)
     └── FormatError       a Modelfile object that has no representation in Modelfile syntax

`ModelfileError` is the only error `ingot.modelfile.parse` raises for bad input:
Lark's own exceptions and Unicode decoding errors never escape.
"""

from __future__ import annotations

import unicodedata
from typing import Any

# Lines longer than this are shown as a window around the error column so a
# one-line 20 kB SYSTEM prompt does not flood the terminal.
_MAX_SHOWN = 160


class ModelfileError(ValueError):
    """A Modelfile that cannot be read, with where and why.

    ``str(error)`` is::

        Modelfile:3:1: unknown instruction 'FORM'
            FORM llama3.2
            ^
        hint: did you mean FROM? ...

    ``line`` and ``column`` are 1-based; ``column`` counts characters, not bytes.
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str = "<string>",
        line: int = 1,
        column: int = 1,
        hint: str | None = None,
        source_line: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.line = line
        self.column = column
        self.hint = hint
        self.source_line = source_line

    def __str__(self) -> str:
        parts = [f"{self.filename}:{self.line}:{self.column}: {self.message}"]
        if self.source_line is not None:
            display, caret = _excerpt(self.source_line, self.column)
            parts.append(f"    {display}")
            parts.append(f"    {caret}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep every field across pickling (multiprocessing, pytest-xdist).
        return (_rebuild_modelfile_error, (self.message, self.filename, self.line, self.column,
                                           self.hint, self.source_line))


def _rebuild_modelfile_error(message: str, filename: str, line: int, column: int,
                             hint: str | None, source_line: str | None) -> ModelfileError:
    return ModelfileError(message, filename=filename, line=line, column=column, hint=hint,
                          source_line=source_line)


class ParameterError(ValueError):
    """A parameter name or value that is not valid; the message names the parameter.

    ``kind`` is one of ``"unknown"``, ``"deprecated"``, ``"unsupported"``,
    ``"type"`` or ``"range"`` so callers (the daemon's per-request options)
    can treat a deprecated option differently from a wrong one.
    """

    def __init__(self, name: str, message: str, *, kind: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.kind = kind
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_parameter_error, (self.name, self.message, self.kind, self.hint))


def _rebuild_parameter_error(name: str, message: str, kind: str, hint: str | None) -> ParameterError:
    return ParameterError(name, message, kind=kind, hint=hint)


def shown(text: str, limit: int = 40) -> str:
    """`text` quoted for an error message: escaped, and cut short when long."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


class FormatError(ValueError):
    """A `Modelfile` object that Modelfile syntax cannot express (see docs/modelfile.md)."""


def _display_char(char: str) -> str:
    # Control characters would move the terminal cursor and misplace the caret.
    return char if char == "\t" or char.isprintable() else "\ufffd"


def _width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _excerpt(source_line: str, column: int) -> tuple[str, str]:
    """The line as shown (windowed when long) and the caret line under `column`."""
    index = max(column - 1, 0)
    start = 0
    end = len(source_line)
    if end > _MAX_SHOWN:
        start = max(0, min(index - _MAX_SHOWN // 2, end - _MAX_SHOWN))
        end = start + _MAX_SHOWN
    display = "".join(_display_char(c) for c in source_line[start:end])
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(source_line) else ""
    pad = " " * len(prefix)
    for char in source_line[start:min(index, end)]:
        pad += "\t" if char == "\t" else " " * _width(char)
    if index > end:
        pad += " " * (index - end)
    return prefix + display + suffix, pad + "^"
