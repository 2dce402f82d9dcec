"""Splitting a model's reasoning from its answer: text between an opening and a closing tag.

Follows Ollama's `thinking/parser.go`: thinking counts only when the reply
starts with the opening tag (after whitespace), or when the prompt already
opened it; whitespace right after either tag is dropped; a tag split across
pieces is held back until it is whole or cannot be one. Everything else
passes through unchanged, so no text is lost or repeated.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ThinkingSplitter", "ThinkingTags", "overlap"]


@dataclass(frozen=True)
class ThinkingTags:
    """The tags around a model's reasoning, e.g. ``<think>`` and ``</think>``."""

    open: str
    close: str


def overlap(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class _State(enum.Enum):
    LOOKING = "looking for the opening tag"
    OPENED = "after the opening tag, dropping whitespace"
    THINKING = "thinking"
    CLOSED = "after the closing tag, dropping whitespace"
    ANSWER = "answer"


class ThinkingSplitter:
    """Feed the reply piece by piece; each call returns ``(thinking, content)`` that is settled."""

    def __init__(self, tags: ThinkingTags, *, opened_by_prompt: bool = False) -> None:
        self.tags = tags
        self._state = _State.OPENED if opened_by_prompt else _State.LOOKING
        self._held = ""

    @property
    def thinking_done(self) -> bool:
        return self._state in (_State.CLOSED, _State.ANSWER)

    def feed(self, text: str) -> tuple[str, str]:
        self._held += text
        thinking: list[str] = []
        content: list[str] = []
        while self._step(thinking, content):
            pass
        return "".join(thinking), "".join(content)

    def finish(self) -> tuple[str, str]:
        """What is still held: a partial closing tag is thinking, a partial opening tag content."""
        held, self._held = self._held, ""
        if self._state is _State.THINKING:
            return held, ""
        if self._state in (_State.OPENED, _State.CLOSED):
            return "", ""
        return "", held

    def _step(self, thinking: list[str], content: list[str]) -> bool:
        """Advance once; True when the state changed and there may be more to settle."""
        held = self._held
        state = self._state
        if state is _State.LOOKING:
            stripped = held.lstrip()
            if stripped.startswith(self.tags.open):
                self._held = stripped[len(self.tags.open):]
                self._state = _State.OPENED
                return True
            if not stripped or self.tags.open.startswith(stripped):
                return False  # whitespace, or a partial opening tag: wait
            self._state = _State.ANSWER
            return True
        if state is _State.OPENED:
            stripped = held.lstrip()
            self._held = stripped
            if not stripped:
                return False
            self._state = _State.THINKING
            return True
        if state is _State.THINKING:
            index = held.find(self.tags.close)
            if index >= 0:
                thinking.append(held[:index])
                self._held = held[index + len(self.tags.close):]
                self._state = _State.CLOSED
                return True
            keep = overlap(held, self.tags.close)
            thinking.append(held[: len(held) - keep])
            self._held = held[len(held) - keep:]
            return False
        if state is _State.CLOSED:
            stripped = held.lstrip()
            self._held = stripped
            if not stripped:
                return False
            self._state = _State.ANSWER
            return True
        content.append(held)
        self._held = ""
        return False
