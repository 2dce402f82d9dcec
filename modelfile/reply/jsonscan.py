"""Finding where a JSON object or array ends in text that is still arriving.

The scanner keeps its place between calls, so a long tool call streamed in
small pieces is read once, not once per piece. It only matches brackets
outside strings; whether the text really is JSON is `json.loads`'s call.
"""

from __future__ import annotations

__all__ = ["BracketScanner"]


class BracketScanner:
    """Tracks bracket depth from an opening ``{`` or ``[`` at offset `start` of a growing text."""

    def __init__(self, start: int) -> None:
        self.start = start
        self._pos = start
        self._depth = 0
        self._in_string = False
        self._escaped = False

    def end(self, text: str) -> int | None:
        """The offset just past the value's closing bracket, or None while it is still open."""
        depth, in_string, escaped = self._depth, self._in_string, self._escaped
        pos = self._pos
        while pos < len(text):
            char = text[pos]
            pos += 1
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth <= 0:
                    self._pos, self._depth = pos, 0
                    self._in_string = self._escaped = False
                    return pos
        self._pos, self._depth, self._in_string, self._escaped = pos, depth, in_string, escaped
        return None
