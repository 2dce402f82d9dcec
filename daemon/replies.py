"""What a reply will hold and how to read it: thinking, tools, grammar; then the reply itself, piece by piece.

`plan_reply` decides before the model is touched (so a bad request is a
400 before any load), following Ollama where it has a rule:

* tools need a template that shows them (else "<model> does not support
  tools"); ``tool_choice: none`` hides them from the model;
* thinking needs thinking tags in the template (else "<model> does not
  support thinking"); a model that has them thinks unless told not to;
* ``tool_choice`` required or a function, or a JSON ``format``, becomes a
  grammar (see `ingot.daemon.grammar`), after an optional reasoning block
  when the model thinks; both at once are refused.

`ReplyReader` then turns the runner's text into content, thinking and tool
calls (`ingot.modelfile.reply.ReplyParser`), giving each call an id.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ingot.daemon.engine.types import SamplingOptions
from ingot.daemon.errors import InvalidOptionError
from ingot.daemon.grammar import check_expressible, json_grammar, schema_grammar, tool_call_grammar
from ingot.daemon.toolspec import ToolChoice, ToolSpec
from ingot.modelfile.reply import ReplyFormat, ReplyParser, ThinkingTags, reply_format
from ingot.modelfile.template import Template
from ingot.modelfile.template.inputs import Think
from ingot.proto.ingot.v1 import common_pb2

__all__ = ["THINK_LEVELS", "ReplyPiece", "ReplyPlan", "ReplyReader", "format_of", "plan_reply", "think_value"]

THINK_LEVELS = ("low", "medium", "high", "max")


@functools.lru_cache(maxsize=64)
def format_of(template: Template) -> ReplyFormat:
    """`reply_format`, cached: it renders the template a few times with probe calls."""
    return reply_format(template)


def think_value(think: bool | None, level: str) -> Think:
    """A request's think fields as one value: None, a bool, or a level (which means on)."""
    if level:
        if level not in THINK_LEVELS:
            raise InvalidOptionError("think", f"unknown thinking level {level!r}",
                                     hint=f"use true, false or one of {', '.join(THINK_LEVELS)}")
        if think is False:
            raise InvalidOptionError("think", f"think is false but a level ({level!r}) is set",
                                     hint="send one of them")
        return level
    return think


@dataclass(frozen=True)
class ReplyPlan:
    think: Think  # what the template gets
    thinking: ThinkingTags | None  # read reasoning between these tags (thinking is on)
    tools: tuple[ToolSpec, ...]  # shown to the model
    reply_format: ReplyFormat
    choice: ToolChoice
    parallel: bool
    format: str  # the request's format: "", "json" or a schema

    @property
    def template_tools(self) -> list[dict[str, Any]] | None:
        return [t.template_tool() for t in self.tools] if self.tools else None

    def opened_by(self, prompt: str) -> bool:
        return self.thinking is not None and prompt.rstrip().endswith(self.thinking.open)

    def sampling(self, sampling: SamplingOptions, prompt: str) -> SamplingOptions:
        """`sampling` with the grammar this reply needs (the format's, resolved earlier, without thinking)."""
        opened = self.opened_by(prompt)
        if self.choice.mode in ("required", "function"):
            allowed = [(t.name, t.schema) for t in self.tools
                       if self.choice.mode == "required" or t.name == self.choice.function]
            grammar = tool_call_grammar(self.reply_format.tool_calls, allowed, parallel=self.parallel,
                                        thinking=self.thinking, thinking_opened=opened)
        elif self.format and self.thinking is not None:
            if self.format == "json":
                grammar = json_grammar(thinking=self.thinking, thinking_opened=opened)
            else:
                grammar = schema_grammar(json.loads(self.format), thinking=self.thinking, thinking_opened=opened)
        else:
            return sampling
        return dataclasses.replace(sampling, grammar=grammar, json_output=False)

    def reader(self, prompt: str) -> ReplyReader:
        return ReplyReader(self, prompt)


def plan_reply(*, model: str, template: Template, tools: Sequence[ToolSpec] = (), choice: ToolChoice = ToolChoice(),
               parallel: bool = True, think: Think = None, fmt: str = "") -> ReplyPlan:
    """Check a request's tools, tool choice, thinking and format against the model's template."""
    found = format_of(template)
    if tools and not found.tools:
        raise InvalidOptionError(
            "tools", f"{model} does not support tools: its template never shows them to the model",
            hint="send the request without tools, or give the model a TEMPLATE that renders .Tools "
                 "(Go) or tools (Jinja); see docs/templates.md")
    if think and found.thinking is None:
        raise InvalidOptionError("think", f"{model} does not support thinking: its template has no thinking tags",
                                 hint="send the request without think")
    if think is None and found.thinking is not None:
        think = True  # as Ollama: a model that can think does, unless told not to
    shown = tuple(tools) if choice.mode != "none" else ()
    constrained = choice.mode in ("required", "function")
    if constrained and fmt:
        raise InvalidOptionError("tool_choice", f"{choice.mode} and a format both constrain the reply",
                                 hint="send one of them")
    if constrained:
        for index, tool in enumerate(tools):
            if choice.mode == "required" or tool.name == choice.function:
                check_expressible(tool.schema, field=f"tools[{index}].function.parameters")
    return ReplyPlan(think=think, thinking=found.thinking if think else None, tools=shown, reply_format=found,
                     choice=choice, parallel=parallel, format=fmt.strip())


@dataclass(frozen=True)
class ReplyPiece:
    content: str = ""
    thinking: str = ""
    tool_calls: tuple[common_pb2.ToolCall, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.content or self.thinking or self.tool_calls)

    def __add__(self, other: ReplyPiece) -> ReplyPiece:
        return ReplyPiece(self.content + other.content, self.thinking + other.thinking,
                          self.tool_calls + other.tool_calls)

    def message(self) -> common_pb2.ChatMessage:
        return common_pb2.ChatMessage(role="assistant", content=self.content, thinking=self.thinking,
                                      tool_calls=list(self.tool_calls))


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


class ReplyReader:
    """Feeds a reply's text through the parser; with parallel_tool_calls false, calls after the first are dropped."""

    def __init__(self, plan: ReplyPlan, prompt: str) -> None:
        self._parser = ReplyParser(
            thinking=plan.thinking,
            thinking_opened_by_prompt=plan.opened_by(prompt),
            tool_calls=plan.reply_format.tool_calls if plan.tools else None,
            tool_names={t.name for t in plan.tools},
        )
        self._limit = None if plan.parallel else 1
        self._calls = 0

    def _piece(self, content: str, thinking: str, calls: Sequence[Any]) -> ReplyPiece:
        kept = []
        for call in calls:
            if self._limit is not None and self._calls >= self._limit:
                continue
            kept.append(common_pb2.ToolCall(id=new_call_id(), index=self._calls, name=call.name,
                                            arguments_json=call.arguments_json))
            self._calls += 1
        return ReplyPiece(content, thinking, tuple(kept))

    def feed(self, text: str) -> ReplyPiece:
        delta = self._parser.feed(text)
        return self._piece(delta.content, delta.thinking, delta.calls)

    def finish(self) -> ReplyPiece:
        delta = self._parser.finish()
        return self._piece(delta.content, delta.thinking, delta.calls)
