"""Stop sequences over a text stream, without ever streaming part of one.

Text that could still turn out to be the start of a stop string is held back
until the next piece settles it; when a stop string completes, the stream is
cut right before it. Stops are matched on text, so they work across token
boundaries however the tokenizer split them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["StopFilter"]


class StopFilter:
    """Feed text pieces; get back what is safe to emit and whether a stop string was hit."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._longest = max((len(stop) for stop in self._stops), default=0)
        self._firsts = frozenset(stop[0] for stop in self._stops)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (text to emit now, True when a stop string ended the stream)."""
        if not self._stops:
            return text, False
        buffer = self._held + text
        cut = min((i for i in (buffer.find(stop) for stop in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return buffer[:cut], True
        keep = self._held_suffix(buffer)
        self._held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        """The held text, released when the stream ends for another reason."""
        held, self._held = self._held, ""
        return held

    def _held_suffix(self, buffer: str) -> int:
        # The longest tail of `buffer` that some stop string starts with. Such a tail begins with
        # a stop's first character; most tokens' text holds none, which settles them at once.
        start = max(len(buffer) - self._longest + 1, 0)
        region = buffer[start:]
        if not any(first in region for first in self._firsts):
            return 0
        for i in range(start, len(buffer)):
            if buffer[i] in self._firsts:
                tail = buffer[i:]
                if any(stop.startswith(tail) for stop in self._stops):
                    return len(buffer) - i
        return 0
