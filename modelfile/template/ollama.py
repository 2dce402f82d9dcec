"""Ollama's rules for feeding a conversation to a Go template.

Mirrors Ollama's template package:

* a template that never names ``Messages`` nor ``Response`` gets
  ``{{ .Response }}`` appended when parsed;
* one that names ``Messages`` (or ``Document``) renders once with the whole
  (collated) conversation: ``.System`` is every system message joined by a
  blank line, consecutive messages of one role are merged (tool results
  excepted), ``.Tools``, ``.Think`` and ``.IsThinkSet`` are set;
* a *legacy* template (``.System .Prompt .Response``) renders once per turn:
  a turn closes when a user message follows an answer, or a system message
  follows a prompt or answer; the last turn is rendered with everything after
  its first ``{{ .Response }}`` cut, so the prompt ends where the model's
  answer begins;
* with a prompt and a suffix (fill-in-the-middle) it renders once with
  ``.Prompt`` and ``.Suffix``.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from collections.abc import Iterable, Sequence

from . import apitypes as api
from . import nodes as n
from .budget import DEFAULT_BUDGET, Meter, RenderBudget
from .evaluator import execute
from .inputs import ChatMessage, Think, think_values

RESPONSE_NODE_NAME = "Response"


def _identifiers(node: Any) -> Iterable[str]:
    """Names of fields and variables, as Ollama's `Identifiers` walk finds them."""
    if isinstance(node, n.ListNode):
        for child in node.nodes:
            yield from _identifiers(child)
    elif isinstance(node, n.ActionNode):
        yield from _identifiers(node.pipe)
    elif isinstance(node, n.TemplateNode):
        if node.pipe is not None:
            yield from _identifiers(node.pipe)
    elif isinstance(node, n.DefineNode):
        # Ollama's Vars walks every template of the set, the named ones too.
        yield from _identifiers(node.body)
    elif isinstance(node, (n.IfNode, n.WithNode, n.RangeNode)):
        yield from _identifiers(node.pipe)
        yield from _identifiers(node.body)
        if node.else_body is not None:
            yield from _identifiers(node.else_body)
    elif isinstance(node, n.PipeNode):
        for cmd in node.cmds:
            for arg in cmd.args:
                yield from _identifiers(arg)
    elif isinstance(node, (n.FieldNode, n.VariableNode)):
        yield from node.ident


def template_vars(root: n.ListNode) -> frozenset[str]:
    """The lower-cased field and variable names a template uses (Ollama's ``Vars``)."""
    return frozenset(name.lower() for name in _identifiers(root))


def with_response(root: n.ListNode, end: int) -> n.ListNode:
    """Append ``{{ .Response }}`` unless the template names Messages or Response."""
    used = template_vars(root)
    if "messages" in used or "response" in used:
        return root
    response = n.ActionNode(end, n.PipeNode(end, (), False, (
        n.CommandNode(end, (n.FieldNode(end, (RESPONSE_NODE_NAME,)),)),)))
    return dataclasses.replace(root, nodes=(*root.nodes, response))


def cut_after_response(root: n.ListNode) -> n.ListNode:
    """The tree with every node after the first ``.Response`` field removed (Ollama's ``deleteNode``).

    The walk visits nodes in template order; a field naming ``Response``
    starts the cut and is itself kept. Conditions of ``if``/``range``/``with``
    are not searched, only their bodies, as in Ollama.
    """
    cut = False

    def deleted(node: Any) -> bool:
        nonlocal cut
        if isinstance(node, n.FieldNode) and RESPONSE_NODE_NAME in node.ident:
            cut = True
            return False
        return cut

    def walk(node: Any) -> Any:
        if isinstance(node, n.DefineNode):
            return node  # a named template is its own tree in Go: never cut
        if deleted(node):
            return None
        if isinstance(node, n.ListNode):
            kept = tuple(k for k in (walk(c) for c in node.nodes) if k is not None)
            return dataclasses.replace(node, nodes=kept)
        if isinstance(node, (n.IfNode, n.WithNode, n.RangeNode)):
            body = walk(node.body)
            else_body = walk(node.else_body) if node.else_body is not None else None
            return dataclasses.replace(node, body=body if body is not None else
                                       n.ListNode(node.body.pos, ()), else_body=else_body)
        if isinstance(node, n.ActionNode):
            pipe = walk(node.pipe)
            return None if pipe is None else dataclasses.replace(node, pipe=pipe)
        if isinstance(node, n.PipeNode):
            commands = []
            for cmd in node.cmds:
                args = tuple(k for k in (walk(a) for a in cmd.args) if k is not None)
                if not args:
                    return None
                commands.append(dataclasses.replace(cmd, args=args))
            return dataclasses.replace(node, cmds=tuple(commands)) if commands else None
        return node

    result = walk(root)
    return result if result is not None else n.ListNode(root.pos, ())


def collate(messages: Sequence[ChatMessage]) -> tuple[str, list[ChatMessage]]:
    """All system prompts joined by a blank line, and the messages with same-role runs merged."""
    system: list[str] = []
    collated: list[ChatMessage] = []
    for message in messages:
        if message.role == "system":
            system.append(message.content)
        if collated and collated[-1].role == message.role and message.role != "tool":
            previous = collated[-1]
            collated[-1] = dataclasses.replace(previous,
                                               content=previous.content + "\n\n" + message.content)
        else:
            collated.append(message)
    return "\n\n".join(system), collated


def to_api_message(message: ChatMessage) -> api.Message:
    calls = tuple(
        api.ToolCall(ID=call.id, Function=api.ToolCallFunction(
            Index=call.index, Name=call.name, Arguments=api.arguments_from(call.arguments)))
        for call in message.tool_calls)
    return api.Message(Role=message.role, Content=message.content, Thinking=message.thinking,
                       Images=message.images, ToolCalls=calls, ToolName=message.tool_name,
                       ToolCallID=message.tool_call_id)


class GoPromptTemplate:
    """A parsed Go template plus what Ollama derives from it; renders conversations."""

    def __init__(self, root: n.ListNode, *, source: str, name: str) -> None:
        self.source = source
        self.name = name
        self.root = with_response(root, len(source))
        self.vars = template_vars(self.root)
        self.last_turn_root = cut_after_response(self.root)

    @property
    def uses_messages(self) -> bool:
        return "messages" in self.vars or "document" in self.vars

    @property
    def supports_suffix(self) -> bool:
        return "suffix" in self.vars

    def _run(self, root: n.ListNode, data: dict[str, Any], meter: Meter) -> str:
        return execute(root, data, source=self.source, name=self.name, meter=meter)

    def render_fill_in_middle(self, prompt: str, suffix: str, think: Think, *,
                              budget: RenderBudget = DEFAULT_BUDGET) -> str:
        return self._run(self.root, {"Prompt": prompt, "Suffix": suffix, "Response": "",
                                     **think_values(think)}, Meter(budget))

    def render_chat(self, messages: Sequence[ChatMessage], *, tools: api.Tools,
                    think: Think, budget: RenderBudget = DEFAULT_BUDGET) -> str:
        system, collated = collate(messages)
        values = think_values(think)
        meter = Meter(budget)
        if self.uses_messages:
            return self._run(self.root, {
                "System": system, "Messages": [to_api_message(m) for m in collated],
                "Tools": tools, "Response": "", **values,
                "Query": "", "Document": "", "Instruction": "",
            }, meter)
        return self._render_legacy(collated, values, meter)

    def _render_legacy(self, messages: Sequence[ChatMessage], values: dict[str, Any],
                       meter: Meter) -> str:
        # One meter for every turn: the budget is the request's, not each turn's.
        out: list[str] = []
        turn = {"System": "", "Prompt": "", "Response": ""}

        def flush() -> None:
            out.append(self._run(self.root, {**turn, **values}, meter))
            turn.update(System="", Prompt="", Response="")

        for message in messages:
            if message.role == "system":
                if turn["Prompt"] or turn["Response"]:
                    flush()
                turn["System"] = message.content
            elif message.role == "user":
                if turn["Response"]:
                    flush()
                turn["Prompt"] = message.content
            elif message.role == "assistant":
                turn["Response"] = message.content
        out.append(self._run(self.last_turn_root, {**turn, **values}, meter))
        return "".join(out)

