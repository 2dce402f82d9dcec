"""The parse tree of a Go template: frozen dataclasses mirroring text/template/parse.

Every node carries `pos`, its character offset in the template text, so
errors found while executing point at the right line and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class DotNode:
    pos: int


@dataclass(frozen=True)
class NilNode:
    pos: int


@dataclass(frozen=True)
class BoolNode:
    pos: int
    value: bool


@dataclass(frozen=True)
class NumberNode:
    """A number or character constant; `value` is already Go's "ideal" constant (int or float)."""

    pos: int
    text: str
    value: int | float


@dataclass(frozen=True)
class StringNode:
    """A quoted or raw string; `text` is as written, `value` unquoted."""

    pos: int
    text: str
    value: str


@dataclass(frozen=True)
class FieldNode:
    """``.A.B``: `ident` is ``("A", "B")``."""

    pos: int
    ident: tuple[str, ...]


@dataclass(frozen=True)
class VariableNode:
    """``$x.A``: `ident` is ``("$x", "A")``; plain ``$`` is ``("$",)``."""

    pos: int
    ident: tuple[str, ...]


@dataclass(frozen=True)
class IdentifierNode:
    """A function name."""

    pos: int
    name: str


@dataclass(frozen=True)
class ChainNode:
    """``(pipeline).A.B``: fields applied to a parenthesised pipeline."""

    pos: int
    node: PipeNode
    fields: tuple[str, ...]


@dataclass(frozen=True)
class CommandNode:
    """One stage of a pipeline: an operand followed by arguments."""

    pos: int
    args: tuple[Argument, ...]


@dataclass(frozen=True)
class PipeNode:
    """``$x := a | b c``: optional declarations, then commands joined by ``|``."""

    pos: int
    decl: tuple[VariableNode, ...]
    is_assign: bool
    cmds: tuple[CommandNode, ...]


Argument = Union[DotNode, NilNode, BoolNode, NumberNode, StringNode, FieldNode, VariableNode,
                 IdentifierNode, ChainNode, PipeNode]


@dataclass(frozen=True)
class TextNode:
    pos: int
    text: str


@dataclass(frozen=True)
class ActionNode:
    """``{{ pipeline }}``: prints the value unless the pipeline declares variables."""

    pos: int
    pipe: PipeNode


@dataclass(frozen=True)
class ListNode:
    pos: int
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class IfNode:
    pos: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass(frozen=True)
class WithNode:
    pos: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass(frozen=True)
class RangeNode:
    pos: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass(frozen=True)
class BreakNode:
    pos: int


@dataclass(frozen=True)
class ContinueNode:
    pos: int


@dataclass(frozen=True)
class TemplateNode:
    """``{{ template "name" pipeline }}``: run a named template with dot set to the pipeline's value."""

    pos: int
    name: str
    pipe: PipeNode | None


@dataclass(frozen=True)
class DefineNode:
    """``{{ define "name" }}body{{ end }}`` (or a ``block``'s body): writes nothing where it stands.

    The parser moves every definition to the end of the root list; the
    evaluator collects them from there before it runs the template.
    """

    pos: int
    name: str
    body: ListNode


Node = Union[TextNode, ActionNode, ListNode, IfNode, WithNode, RangeNode, BreakNode, ContinueNode,
             TemplateNode, DefineNode]
BranchNode = Union[IfNode, WithNode, RangeNode]


def describe(node: Argument | CommandNode) -> str:
    """The node as Go would print it in an error message (``<.Messages.Role>``)."""
    if isinstance(node, DotNode):
        return "."
    if isinstance(node, NilNode):
        return "nil"
    if isinstance(node, BoolNode):
        return "true" if node.value else "false"
    if isinstance(node, (NumberNode, StringNode)):
        return node.text
    if isinstance(node, FieldNode):
        return "".join("." + name for name in node.ident)
    if isinstance(node, VariableNode):
        return ".".join(node.ident)
    if isinstance(node, IdentifierNode):
        return node.name
    if isinstance(node, ChainNode):
        return f"({describe(node.node)})" + "".join("." + name for name in node.fields)
    if isinstance(node, CommandNode):
        return " ".join(describe(arg) for arg in node.args)
    decl = ""
    if node.decl:
        decl = ", ".join(describe(v) for v in node.decl) + (" = " if node.is_assign else " := ")
    return decl + " | ".join(describe(cmd) for cmd in node.cmds)
