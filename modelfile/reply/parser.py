"""One reply, piece by piece: thinking first, then content and tool calls.

`ReplyParser` chains a `ThinkingSplitter` (when thinking is on and the
template has tags for it) and a `ToolCallSplitter` (when the request has
tools): the answer part of the thinking split is what the tool-call split
reads, so a call written inside the reasoning is never taken for a real one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .thinking import ThinkingSplitter, ThinkingTags
from .toolcalls import ParsedCall, ToolCallFormat, ToolCallSplitter

__all__ = ["ReplyDelta", "ReplyParser"]


@dataclass(frozen=True)
class ReplyDelta:
    """What one piece of the reply settled: answer text, reasoning text, finished calls."""

    content: str = ""
    thinking: str = ""
    calls: tuple[ParsedCall, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.content or self.thinking or self.calls)


class ReplyParser:
    def __init__(
        self,
        *,
        thinking: ThinkingTags | None = None,
        thinking_opened_by_prompt: bool = False,
        tool_calls: ToolCallFormat | None = None,
        tool_names: Collection[str] = (),
    ) -> None:
        self._thinking = (
            ThinkingSplitter(thinking, opened_by_prompt=thinking_opened_by_prompt) if thinking is not None else None
        )
        self._tools = ToolCallSplitter(tool_calls, tool_names) if tool_calls is not None else None

    @property
    def calls_seen(self) -> int:
        return self._tools.calls_seen if self._tools is not None else 0

    def feed(self, text: str) -> ReplyDelta:
        thinking, content = self._thinking.feed(text) if self._thinking is not None else ("", text)
        return self._answer(thinking, content, finish=False)

    def finish(self) -> ReplyDelta:
        thinking, content = self._thinking.finish() if self._thinking is not None else ("", "")
        return self._answer(thinking, content, finish=True)

    def _answer(self, thinking: str, content: str, *, finish: bool) -> ReplyDelta:
        if self._tools is None:
            return ReplyDelta(content=content, thinking=thinking)
        text, calls = self._tools.feed(content)
        if finish:
            rest, more = self._tools.finish()
            text, calls = text + rest, calls + more
        return ReplyDelta(content=text, thinking=thinking, calls=tuple(calls))
