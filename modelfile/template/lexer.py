"""Split a Go template into verbatim text and the actions between ``{{`` and ``}}``.

This follows Go's text/template lexer where it matters for output bytes:

* ``{{- `` (dash then an ASCII space, tab, CR or LF) trims all trailing
  white space (`` \\t\\r\\n``) from the text before the action, `` -}}``
  trims all leading white space from the text after it;
* ``{{/* ... */}}`` is a comment (also ``{{- /* ... */ -}}``); it must
  start and end right at the delimiters and does not nest;
* ``}}`` inside a quoted string, raw string or character constant does not
  end an action; actions may span lines.

What is inside an action is parsed by the Lark grammar (`gotemplate.lark`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .errors import TemplateError, error_at

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
SPACE_CHARS = " \t\r\n"
_LEFT_COMMENT = "/*"
_RIGHT_COMMENT = "*/"


@dataclass(frozen=True)
class TextItem:
    """Text between actions, already trimmed; `pos` is its offset in the template."""

    pos: int
    text: str


@dataclass(frozen=True)
class ActionItem:
    """One action: `body` is the text inside the delimiters, without trim markers.

    `pos` is the offset of ``{{``; `body_pos` the offset of the body's first
    character, so positions inside the body map back onto the template.
    """

    pos: int
    body: str
    body_pos: int


Item = Union[TextItem, ActionItem]


@dataclass(frozen=True)
class _Delimited:
    """An action or comment as found, before the text around it is trimmed."""

    start: int          # offset of "{{"
    end: int            # offset just past "}}"
    trim_left: bool
    trim_right: bool
    action: ActionItem | None   # None for a comment


def _has_left_trim(text: str, pos: int) -> bool:
    return text.startswith("-", pos) and pos + 1 < len(text) and text[pos + 1] in SPACE_CHARS


def _right_delim_at(text: str, pos: int) -> tuple[bool, bool]:
    """(is a closing delimiter at `pos`, does it carry a trim marker)."""
    if pos + 1 < len(text) and text[pos] in SPACE_CHARS and text[pos + 1] == "-" \
            and text.startswith(RIGHT_DELIM, pos + 2):
        return True, True
    if text.startswith(RIGHT_DELIM, pos):
        return True, False
    return False, False


def _skip_quoted(text: str, pos: int, quote: str, name: str) -> int:
    """Offset just past the string or character constant starting at `pos`."""
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "\n":
            break
        if char == quote:
            return i + 1
        i += 1
    what = "quoted string" if quote == '"' else "character constant"
    raise error_at(text, pos, f"unterminated {what}", name=name,
                   hint="close it on the same line; use a `raw string` for text with newlines")


def _scan_delimited(text: str, start: int, name: str) -> _Delimited:
    """Read the action or comment whose ``{{`` is at `start`."""
    pos = start + len(LEFT_DELIM)
    trim_left = _has_left_trim(text, pos)
    after_marker = pos + 2 if trim_left else pos
    if text.startswith(_LEFT_COMMENT, after_marker):
        close = text.find(_RIGHT_COMMENT, after_marker + len(_LEFT_COMMENT))
        if close < 0:
            raise error_at(text, after_marker, "unclosed comment", name=name,
                           hint="end it with */}}")
        pos = close + len(_RIGHT_COMMENT)
        is_delim, trim_right = _right_delim_at(text, pos)
        if not is_delim:
            raise error_at(text, pos, "comment ends before closing delimiter", name=name,
                           hint="write comments as {{/* ... */}}: nothing may stand between */ and }}")
        end = pos + (len(RIGHT_DELIM) + 2 if trim_right else len(RIGHT_DELIM))
        return _Delimited(start, end, trim_left, trim_right, None)
    body_start = after_marker
    i = body_start
    while i < len(text):
        is_delim, trim_right = _right_delim_at(text, i)
        if is_delim:
            body = text[body_start:i]
            end = i + (len(RIGHT_DELIM) + 2 if trim_right else len(RIGHT_DELIM))
            action = ActionItem(pos=start, body=body, body_pos=body_start)
            return _Delimited(start, end, trim_left, trim_right, action)
        char = text[i]
        if char in "\"'":
            i = _skip_quoted(text, i, char, name)
            continue
        if char == "`":
            close = text.find("`", i + 1)
            if close < 0:
                raise error_at(text, i, "unterminated raw quoted string", name=name)
            i = close + 1
            continue
        i += 1
    raise error_at(text, start, "unclosed action", name=name,
                   hint="every {{ needs a matching }}")


def lex(text: str, *, name: str = "TEMPLATE") -> list[Item]:
    """The template's items in order; raises `TemplateError` for a broken delimiter."""
    delimited: list[_Delimited] = []
    pos = 0
    while True:
        start = text.find(LEFT_DELIM, pos)
        if start < 0:
            break
        found = _scan_delimited(text, start, name)
        delimited.append(found)
        pos = found.end

    items: list[Item] = []
    text_start = 0
    trim_next_text = False
    for found in delimited:
        _add_text(items, text, text_start, found.start, trim_next_text, found.trim_left)
        if found.action is not None:
            items.append(found.action)
        text_start = found.end
        trim_next_text = found.trim_right
    _add_text(items, text, text_start, len(text), trim_next_text, False)
    return items


def _add_text(items: list[Item], text: str, start: int, end: int,
              trim_leading: bool, trim_trailing: bool) -> None:
    chunk = text[start:end]
    if trim_leading:
        stripped = chunk.lstrip(SPACE_CHARS)
        start += len(chunk) - len(stripped)
        chunk = stripped
    if trim_trailing:
        chunk = chunk.rstrip(SPACE_CHARS)
    if chunk:
        items.append(TextItem(pos=start, text=chunk))


__all__ = ["ActionItem", "Item", "TemplateError", "TextItem", "lex"]
