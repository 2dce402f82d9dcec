"""`TemplateError`: a prompt template that cannot be compiled or rendered.

::

    ValueError
     └── ModelfileError          (ingot.modelfile.errors)
          └── TemplateError      TEMPLATE:line:col, the offending line, a caret, a hint

A template is part of a Modelfile, so code that reports Modelfile errors
reports template errors too. Lark's and Jinja's own exceptions never escape
this package: they are turned into a `TemplateError` that points into the
template text.
"""

from __future__ import annotations

from typing import Any

from ingot.modelfile.errors import ModelfileError


class TemplateError(ModelfileError):
    """A template error with where and why.

    ``str(error)`` is::

        TEMPLATE:2:9: function "upper" not defined
            {{ .Prompt | upper }}
                         ^
        hint: the functions are and, eq, ge, ...

    ``filename`` is the template's name (``TEMPLATE`` for a Modelfile's
    template, or the file it was read from); ``line`` and ``column`` are
    1-based positions in the template text itself.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_template_error, (self.message, self.filename, self.line, self.column,
                                          self.hint, self.source_line))


def _rebuild_template_error(message: str, filename: str, line: int, column: int,
                            hint: str | None, source_line: str | None) -> TemplateError:
    return TemplateError(message, filename=filename, line=line, column=column, hint=hint,
                         source_line=source_line)


def line_and_column(text: str, offset: int) -> tuple[int, int, str]:
    """The 1-based line and column of `offset` in `text`, and that line's text."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_end < 0:
        line_end = len(text)
    line = text.count("\n", 0, offset) + 1
    return line, offset - line_start + 1, text[line_start:line_end].rstrip("\r")


def error_at(text: str, offset: int, message: str, *, name: str,
             hint: str | None = None) -> TemplateError:
    """A `TemplateError` pointing at character `offset` of the template `text`."""
    line, column, source_line = line_and_column(text, offset)
    return TemplateError(message, filename=name, line=line, column=column, hint=hint,
                         source_line=source_line)
