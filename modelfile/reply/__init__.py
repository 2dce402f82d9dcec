"""Reading what a model writes back: reasoning, answer text and tool calls.

::

    from ingot.modelfile.reply import ReplyParser, reply_format

    fmt = reply_format(template)                  # once per template (cache it)
    parser = ReplyParser(thinking=fmt.thinking, tool_calls=fmt.tool_calls,
                         tool_names={"get_weather"})
    for piece in stream:
        delta = parser.feed(piece)                # content, thinking, finished calls
    delta = parser.finish()                       # whatever was still held back

`detect.py` reads a template (tool support, how calls are written, thinking
tags), `thinking.py` and `toolcalls.py` split a stream, `parser.py` chains
them. The grammar that makes a model write a call lives with the daemon
(`ingot.daemon.grammar`), which has llama.cpp at hand. See docs/templates.md.
"""

from __future__ import annotations

from .detect import ReplyFormat, infer_go_thinking_tags, reply_format
from .parser import ReplyDelta, ReplyParser
from .thinking import ThinkingSplitter, ThinkingTags
from .toolcalls import ParsedCall, ToolCallFormat, ToolCallSplitter, calls_from_json

__all__ = [
    "ParsedCall",
    "ReplyDelta",
    "ReplyFormat",
    "ReplyParser",
    "ThinkingSplitter",
    "ThinkingTags",
    "ToolCallFormat",
    "ToolCallSplitter",
    "calls_from_json",
    "infer_go_thinking_tags",
    "reply_format",
]
