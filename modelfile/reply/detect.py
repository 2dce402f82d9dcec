"""What a template says about a model's replies: tool support, the call format, thinking tags.

* Tool support follows Ollama: a Go template that names ``.Tools``; a Jinja
  template that mentions ``tools`` or ``tool_call``.
* The call format is read off the template itself (Ollama's
  ``tools/template.go`` takes the text its template puts before
  ``.ToolCalls``): the template renders a conversation with two probe
  calls and once with plain content instead, and the difference shows the
  text before, between and after calls and around a call's name and
  arguments. Templates that show tools but no calls fall back to the usual
  forms by what their text mentions (``<tool_call>``, ``[TOOL_CALLS]``,
  else bare JSON).
* Thinking tags: for Go, Ollama's ``thinking.InferTags`` (the text around
  ``.Thinking`` inside the range over ``.Messages``); for Jinja, the known
  pairs its text contains (``<think>``/``</think>``, ...).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ingot.modelfile.template import ChatMessage, InputError, Template, TemplateError, ToolCall, render_prompt
from ingot.modelfile.template import nodes as n
from ingot.modelfile.template.ollama import GoPromptTemplate

from .thinking import ThinkingTags
from .toolcalls import ToolCallFormat

__all__ = ["ReplyFormat", "reply_format"]

_JINJA_THINKING = (
    ThinkingTags("<think>", "</think>"),
    ThinkingTags("[THINK]", "[/THINK]"),
    ThinkingTags("<|START_THINKING|>", "<|END_THINKING|>"),
    ThinkingTags("◁think▷", "◁/think▷"),
)
_PYTHON_TAG = "<|python_tag|>"

_PROBE_NAMES = ("ingot_probe_first", "ingot_probe_second")
_PROBE_ARGS = ({"ingot_probe_key": "ingot probe value one"}, {"ingot_probe_key": "ingot probe value two"})
_PROBE_CONTENT = "ingot probe content"
_PROBE_TOOLS = tuple(
    {"type": "function", "function": {"name": name, "description": "probe", "parameters": {
        "type": "object", "properties": {"ingot_probe_key": {"type": "string", "description": "probe"}},
        "required": ["ingot_probe_key"]}}}
    for name in _PROBE_NAMES
)


@dataclass(frozen=True)
class ReplyFormat:
    """How a model's replies are read: `tools` is Ollama's "tools" capability."""

    tools: bool
    tool_calls: ToolCallFormat
    thinking: ThinkingTags | None


def reply_format(template: Template) -> ReplyFormat:
    """Everything `ReplyParser` and the grammar need to know about a template's model."""
    compiled = template.compiled
    if isinstance(compiled, GoPromptTemplate):
        tools = "tools" in compiled.vars
        thinking = infer_go_thinking_tags(compiled.root)
    else:
        tools = "tools" in template.source or "tool_call" in template.source
        thinking = _jinja_thinking_tags(template.source)
    calls = ToolCallFormat()
    if tools:
        calls = _probed_format(template) or _fallback_format(template.source)
        if _PYTHON_TAG in template.source and _PYTHON_TAG not in calls.openings:
            calls = _with_alt_start(calls, _PYTHON_TAG)
    return ReplyFormat(tools=tools, tool_calls=calls, thinking=thinking)


def _with_alt_start(fmt: ToolCallFormat, tag: str) -> ToolCallFormat:
    from dataclasses import replace

    return replace(fmt, alt_starts=(*fmt.alt_starts, tag))


# ---- thinking tags ---------------------------------------------------------------------


def _jinja_thinking_tags(source: str) -> ThinkingTags | None:
    for tags in _JINJA_THINKING:
        if tags.open in source and tags.close in source:
            return tags
    if "content.split('</think>')" in source or 'content.split("</think>")' in source:
        return _JINJA_THINKING[0]
    return None


def _children(node: Any) -> Iterator[Any]:
    """Child nodes in the order Ollama's ``templateVisit`` walks them."""
    if isinstance(node, n.ListNode):
        yield from node.nodes
    elif isinstance(node, (n.IfNode, n.WithNode, n.RangeNode)):
        yield node.pipe
        yield node.body
        if node.else_body is not None:
            yield node.else_body
    elif isinstance(node, n.ActionNode):
        yield node.pipe
    elif isinstance(node, n.PipeNode):
        yield from node.cmds
    elif isinstance(node, n.CommandNode):
        yield from node.args
    elif isinstance(node, n.ChainNode):
        yield node.node


def _uses_field(node: Any, name: str) -> bool:
    if isinstance(node, n.FieldNode) and node.ident and node.ident[0] == name:
        return True
    return any(_uses_field(child, name) for child in _children(node))


def infer_go_thinking_tags(root: n.ListNode) -> ThinkingTags | None:
    """Ollama's ``InferTags``: the first and last text of the list around ``.Thinking`` in ``range .Messages``."""
    opening = closing = ""
    ancestors: list[Any] = []

    def visit(node: Any) -> None:
        nonlocal opening, closing
        ancestors.append(node)
        if isinstance(node, n.FieldNode) and node.ident and node.ident[0] == "Thinking":
            ranges = [a for a in ancestors if isinstance(a, n.RangeNode)]
            if ranges and _uses_field(ranges[-1].pipe, "Messages"):
                lists = [a for a in ancestors if isinstance(a, n.ListNode)]
                if lists and lists[-1].nodes:
                    first, last = lists[-1].nodes[0], lists[-1].nodes[-1]
                    if isinstance(first, n.TextNode):
                        opening = first.text.strip()
                    if isinstance(last, n.TextNode):
                        closing = last.text.strip()
        for child in _children(node):
            visit(child)
        ancestors.pop()

    visit(root)
    return ThinkingTags(opening, closing) if opening and closing else None


# ---- the tool-call format, from probe renders ------------------------------------------------


def _render(template: Template, calls: int, closing_user: bool) -> str:
    if calls:
        assistant = ChatMessage("assistant", "", tool_calls=tuple(
            ToolCall(name=_PROBE_NAMES[i], arguments=_PROBE_ARGS[i], id=f"call_probe{i}", index=i)
            for i in range(calls)))
    else:
        assistant = ChatMessage("assistant", _PROBE_CONTENT)
    messages = [ChatMessage("user", "ingot probe question"), assistant]
    if closing_user:
        messages.append(ChatMessage("user", "ingot probe follow-up"))
    return render_prompt(template, messages=messages, tools=list(_PROBE_TOOLS))


def _common_prefix(a: str, b: str) -> int:
    size = 0
    for x, y in zip(a, b):
        if x != y:
            break
        size += 1
    return size


_NAME_KEYS = ("name", "tool_name")


def _names_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key in _NAME_KEYS:
            name = value.get(key)
            if isinstance(name, str):
                found.add(name)
        for item in value.values():
            found |= _names_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= _names_in(item)
    return found


def _json_spans_around(text: str, at: int) -> Iterator[tuple[int, int, Any]]:
    """JSON values that start before `at` and end after it, innermost first."""
    decoder = json.JSONDecoder()
    for start in range(at - 1, -1, -1):
        if text[start] not in "{[":
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if end > at:
            yield start, end, value


def _value_span(text: str, value: Any, after: int) -> tuple[int, int] | None:
    decoder = json.JSONDecoder()
    for start in range(after, len(text)):
        if text[start] != "{":
            continue
        try:
            found, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if found == value:
            return start, end
    return None


@dataclass(frozen=True)
class _Call:
    """Where one probe call sits in the rendered difference."""

    start: int  # the call's own text (a JSON object, or NAME MARKER {args})
    end: int
    name_at: int  # where the name's characters begin
    args_start: int  # -1: the arguments were not found as an object after the name
    args_end: int
    json_start: int  # the JSON value the parser reads (a list around the call, or the call)
    json_end: int


def _json_call(middle: str, index: int) -> _Call | None:
    """Probe call `index` as a JSON object: the outermost object around its name, and any list around that."""
    name = _PROBE_NAMES[index]
    quoted = middle.find(json.dumps(name))
    if quoted < 0:
        return None
    own: tuple[int, int] | None = None
    outer: tuple[int, int] | None = None
    for start, end, value in _json_spans_around(middle, quoted):
        if _names_in(value) != {name}:
            break
        if isinstance(value, list):
            outer = (start, end)
        elif outer is None:
            own = (start, end)
    if own is None:
        return None
    json_start, json_end = outer if outer is not None else own
    args = _value_span(middle[: own[1]], _PROBE_ARGS[index], quoted) or (-1, -1)
    return _Call(own[0], own[1], quoted + 1, args[0], args[1], json_start, json_end)


def _marker_call(middle: str, index: int, after: int = 0) -> _Call | None:
    """Probe call `index` written as NAME MARKER {arguments} (the name not inside a JSON string)."""
    name = _PROBE_NAMES[index]
    at = middle.find(name, after)
    if at < 0 or (at > 0 and middle[at - 1] == '"'):
        return None
    args = _value_span(middle, _PROBE_ARGS[index], at + len(name))
    if args is None or not middle[at + len(name): args[0]].strip():
        return None
    return _Call(at, args[1], at, args[0], args[1], at, args[1])


def _middle(template: Template, calls: int, closing_user: bool, plain: str) -> str:
    """What rendering `calls` probe calls adds in place of plain content."""
    text = _render(template, calls, closing_user)
    prefix = _common_prefix(plain, text)
    suffix = _common_prefix(plain[prefix:][::-1], text[prefix:][::-1])
    return text[prefix: len(text) - suffix]


def _probed_format(template: Template) -> ToolCallFormat | None:
    for closing_user in (True, False):
        try:
            plain = _render(template, 0, closing_user)
            one = _middle(template, 1, closing_user, plain)
            two = _middle(template, 2, closing_user, plain)
        except (TemplateError, InputError):
            continue
        found = _format_from(one, two)
        if found is not None:
            return found
    return None


def _format_from(one: str, two: str) -> ToolCallFormat | None:
    """The format from the text one probe call renders, and the text two render (for what goes between)."""
    name = _PROBE_NAMES[0]
    call = _json_call(one, 0)
    marker = ""
    if call is None:
        call = _marker_call(one, 0)
        if call is None:
            return None
        marker = one[call.name_at + len(name): call.args_start].strip()
    first = _json_call(two, 0) if not marker else _marker_call(two, 0)
    second = None
    if first is not None:
        second = _json_call(two, 1) if not marker else _marker_call(two, 1, first.end)
    between = two[first.end: second.start] if first is not None and second is not None else "\n"
    if call.json_start < call.start and "," not in between:
        between = ", "  # a list whose template forgot the commas (Ollama's mistral) must still be JSON
    shape = {}
    if call.args_start >= call.name_at + len(name):
        text = one[call.start: call.end]
        shape = dict(
            call_prefix=text[: call.name_at - call.start],
            call_infix=text[call.name_at - call.start + len(name): call.args_start - call.start],
            call_suffix=text[call.args_end - call.start:],
        )
    return ToolCallFormat(
        start=one[: call.json_start].strip(), end=one[call.json_end:].strip(), name_marker=marker,
        lead=one[: call.start].lstrip(), between=between, trail=one[call.end:].rstrip(), **shape,
    )


def _fallback_format(source: str) -> ToolCallFormat:
    if "<tool_call>" in source:
        return ToolCallFormat(start="<tool_call>", end="</tool_call>", lead="<tool_call>\n",
                              between="\n</tool_call>\n<tool_call>\n", trail="\n</tool_call>")
    if "[TOOL_CALLS]" in source:
        return ToolCallFormat(start="[TOOL_CALLS]", lead="[TOOL_CALLS][", between=", ", trail="]")
    return ToolCallFormat()
