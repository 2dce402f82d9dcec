"""Go template text -> parse tree (`nodes.py`), with Go's parse-time checks.

The lexer splits the text into verbatim text and actions; the Lark grammar
(`gotemplate.lark`) parses each action; this module nests ``if``/``range``/
``with``/``define``/``block`` with their ``else``/``end``, and rejects what
Go's parser rejects: undefined functions and variables, ``{{break}}`` outside
``{{range}}``, a missing ``{{end}}``, a literal as a later pipeline stage, a
``{{define}}`` inside a block, two non-empty definitions of one name. Every
error is a `TemplateError` at the template's line and column.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Union
from collections.abc import Collection

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from . import nodes as n
from .errors import TemplateError, error_at
from .lexer import ActionItem, TextItem, lex
from .literals import LiteralError, char_value, number_value, unquote_string


@functools.lru_cache(maxsize=1)
def _action_parser() -> Lark:
    grammar = resources.files(__package__).joinpath("gotemplate.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


@dataclass(frozen=True)
class _Control:
    """A parsed control action (``if``, ``else``, ``end``...) waiting to be nested."""

    kind: str               # if, else, else_if, else_with, end, range, with, define, block
    pos: int
    pipe: n.PipeNode | None
    name: str = ""          # define and block: the template's name


_Parsed = Union[n.Node, _Control]
_TERMINATORS = ("end", "else", "else_if", "else_with")
_TOKEN_NAMES = {
    "$END": "end of action", "FIELD": "a field (.Name)", "VARIABLE": "a variable ($x)",
    "IDENTIFIER": "a function name", "STRING": "a string", "NUMBER": "a number",
    "RPAR": '")"', "LPAR": '"("', "VBAR": '"|"', "DECLARE": '":="', "COMMA": '","',
}


class _ActionReader:
    """Turns one action's Lark tree into nodes; positions are offsets in the whole template."""

    def __init__(self, source: str, name: str, item: ActionItem,
                 functions: Collection[str]) -> None:
        self.source = source
        self.name = name
        self.item = item
        self.functions = functions

    def fail(self, offset: int, message: str, hint: str | None = None) -> TemplateError:
        return error_at(self.source, offset, message, name=self.name, hint=hint)

    def at(self, token: Token) -> int:
        return self.item.body_pos + (token.start_pos or 0)

    def tree_pos(self, tree: Tree) -> int:
        start = getattr(tree.meta, "start_pos", None)
        return self.item.body_pos + (start if start is not None else 0)

    def read(self) -> _Parsed:
        body = self.item.body
        if not body.strip():
            raise self.fail(self.item.pos, "missing value for command",
                            hint="an action needs something inside it, like {{ .Prompt }}")
        try:
            tree = _action_parser().parse(body)
        except UnexpectedInput as exc:
            raise self._syntax_error(exc) from None
        action = tree.children[0]
        kind = action.data
        pos = self.item.pos
        if kind == "pipeline_action":
            return n.ActionNode(pos, self.pipeline(action.children[0]))
        if kind == "break_action":
            return n.BreakNode(pos)
        if kind == "continue_action":
            return n.ContinueNode(pos)
        if kind in ("define_action", "template_action", "block_action"):
            name = self.template_name(action.children[1])
            pipe = self.pipeline(action.children[2]) if len(action.children) > 2 else None
            if kind == "template_action":
                return n.TemplateNode(pos, name, pipe)
            return _Control(kind.removesuffix("_action"), pos, pipe, name)
        pipe = self.pipeline(action.children[0]) if action.children else None
        return _Control(kind.removesuffix("_action"), pos, pipe)

    def template_name(self, tree: Tree) -> str:
        token = tree.children[0]
        assert isinstance(token, Token)
        try:
            return unquote_string(str(token))
        except LiteralError as exc:
            raise self.fail(self.at(token), str(exc)) from None

    def _syntax_error(self, exc: UnexpectedInput) -> TemplateError:
        body = self.item.body
        stripped = body.strip()
        keyword = stripped.split()[0] if stripped.split() else ""
        if isinstance(exc, UnexpectedCharacters):
            offset = self.item.body_pos + exc.pos_in_stream
            char = body[exc.pos_in_stream]
            return self.fail(offset, f"unexpected {char!r} in action",
                             hint=_character_hint(char))
        if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
            token = exc.token
            expected = sorted(_TOKEN_NAMES.get(t, t) for t in exc.expected if not t.startswith("__"))
            hint = f"expected {', '.join(expected[:6])}" if expected else None
            return self.fail(self.at(token), f"unexpected {str(token)!r} in action", hint=hint)
        # The action ended too early: "{{ if }}", "{{ .X | }}", "{{ (len .X }}".
        offset = self.item.body_pos + len(body.rstrip())
        if keyword in ("if", "range", "with") and len(stripped.split()) == 1:
            return self.fail(offset, f"missing value for {keyword}",
                             hint=f"{{{{{keyword}}}}} needs a pipeline, like {{{{ {keyword} .Messages }}}}")
        if stripped.count("(") > stripped.count(")"):
            return self.fail(offset, "unclosed left paren", hint='add the missing ")"')
        return self.fail(offset, "unexpected end of action",
                         hint="the action stops in the middle of an expression")

    def pipeline(self, tree: Tree) -> n.PipeNode:
        children = list(tree.children)
        decl: tuple[n.VariableNode, ...] = ()
        is_assign = False
        if children and isinstance(children[0], Tree) and children[0].data == "declaration":
            declaration = children.pop(0)
            tokens = [c for c in declaration.children if isinstance(c, Token)]
            operator = tokens[-1]
            is_assign = str(operator) == "="
            variables = []
            for token in tokens[:-1]:
                if "." in str(token):
                    raise self.fail(self.at(token), f"cannot declare field chain {token!s}",
                                    hint="declare a plain variable: {{ $x := ... }}")
                variables.append(n.VariableNode(self.at(token), (str(token),)))
            decl = tuple(variables)
        commands = tuple(self.command(c) for c in children)
        pos = self.tree_pos(tree)
        return n.PipeNode(pos, decl, is_assign, commands)

    def command(self, tree: Tree) -> n.CommandNode:
        args = tuple(self.operand(c) for c in tree.children)
        return n.CommandNode(self.tree_pos(tree), args)

    def operand(self, tree: Tree) -> n.Argument:
        kind = tree.data
        token = tree.children[0] if tree.children else None
        pos = self.tree_pos(tree)
        if kind == "dot":
            return n.DotNode(pos)
        if kind == "nil":
            return n.NilNode(pos)
        if kind in ("true", "false"):
            return n.BoolNode(pos, kind == "true")
        if kind == "paren":
            return self.pipeline(tree.children[0])
        if kind == "paren_chain":
            inner = self.pipeline(tree.children[0])
            fields = tuple(str(tree.children[1])[2:].split("."))
            return n.ChainNode(pos, inner, fields)
        assert isinstance(token, Token)
        text = str(token)
        pos = self.at(token)
        if kind == "field":
            return n.FieldNode(pos, tuple(text[1:].split(".")))
        if kind == "variable":
            return n.VariableNode(pos, tuple(text.split(".")))
        if kind == "identifier":
            if text not in self.functions:
                raise self.fail(pos, f'function "{text}" not defined',
                                hint="the functions are " + ", ".join(sorted(self.functions)))
            return n.IdentifierNode(pos, text)
        try:
            if kind in ("string", "raw_string"):
                return n.StringNode(pos, text, unquote_string(text))
            if kind == "char":
                return n.NumberNode(pos, text, char_value(text))
            return n.NumberNode(pos, text, number_value(text))
        except LiteralError as exc:
            raise self.fail(pos, str(exc)) from None


def _character_hint(char: str) -> str | None:
    if char == "[":
        return "Go templates index with a function: {{ index .Messages 0 }}; " \
               "if this is a Jinja template, use {% ... %} blocks"
    if char == "-":
        return "a trim marker needs a space: {{- .X -}}"
    if char in "'\"":
        return "strings use double quotes and cannot span lines"
    if char == "=":
        return "compare with a function: {{ if eq .Role \"user\" }}"
    return None


class _TreeBuilder:
    """Nests the flat sequence of text, actions and controls; checks variables and functions."""

    def __init__(self, source: str, name: str, parsed: list[tuple[int, _Parsed]]) -> None:
        self.source = source
        self.name = name
        self.parsed = parsed
        self.index = 0
        self.variables: list[str] = ["$"]
        self.range_depth = 0
        self.block_depth = 0
        self.definitions: dict[str, n.DefineNode] = {}

    def fail(self, offset: int, message: str, hint: str | None = None) -> TemplateError:
        return error_at(self.source, offset, message, name=self.name, hint=hint)

    def build(self) -> n.ListNode:
        body, terminator = self.item_list()
        if terminator is not None:
            what = "{{end}}" if terminator.kind == "end" else "{{else}}"
            raise self.fail(terminator.pos, f"unexpected {what}",
                            hint="it has no {{if}}, {{range}}, {{with}}, {{define}} or {{block}} to close")
        # Definitions go last: they write nothing, and Ollama's last-turn cut
        # (which works on the main tree only) must never remove them.
        return n.ListNode(body.pos, (*body.nodes, *self.definitions.values()))

    def item_list(self) -> tuple[n.ListNode, _Control | None]:
        start = self.parsed[self.index][0] if self.index < len(self.parsed) else len(self.source)
        nodes: list[n.Node] = []
        while self.index < len(self.parsed):
            _, item = self.parsed[self.index]
            self.index += 1
            if isinstance(item, _Control):
                if item.kind in _TERMINATORS:
                    return n.ListNode(start, tuple(nodes)), item
                node = self.control(item)
                if node is not None:
                    nodes.append(node)
                continue
            if isinstance(item, (n.BreakNode, n.ContinueNode)):
                if self.range_depth == 0:
                    word = "break" if isinstance(item, n.BreakNode) else "continue"
                    raise self.fail(item.pos, f"{{{{{word}}}}} outside {{{{range}}}}")
            elif isinstance(item, n.ActionNode):
                self.check_pipe(item.pipe, "command")
            elif isinstance(item, n.TemplateNode) and item.pipe is not None:
                self.check_pipe(item.pipe, "template")
            nodes.append(item)
        return n.ListNode(start, tuple(nodes)), None

    def control(self, opener: _Control) -> n.Node | None:
        if opener.kind in ("define", "block"):
            return self.definition(opener)
        if opener.kind not in ("if", "range", "with"):
            raise self.fail(opener.pos, f"unexpected {{{{{opener.kind}}}}}")
        mark = len(self.variables)
        assert opener.pipe is not None
        self.check_pipe(opener.pipe, opener.kind)
        if opener.kind == "range":
            self.range_depth += 1
        self.block_depth += 1
        body, terminator = self.item_list()
        self.block_depth -= 1
        if opener.kind == "range":
            self.range_depth -= 1
        if terminator is None:
            line_opened = self.source.count("\n", 0, opener.pos) + 1
            raise self.fail(len(self.source),
                            f"unexpected EOF: {{{{{opener.kind}}}}} opened at line {line_opened} "
                            "has no {{end}}", hint="add {{ end }}")
        else_body: n.ListNode | None = None
        if terminator.kind == "else":
            else_body, terminator = self.item_list()
            if terminator is None or terminator.kind != "end":
                where = terminator.pos if terminator is not None else len(self.source)
                raise self.fail(where, "expected {{end}} after {{else}}")
        elif terminator.kind in ("else_if", "else_with"):
            wanted = "if" if terminator.kind == "else_if" else "with"
            if opener.kind != wanted:
                raise self.fail(terminator.pos,
                                f"{{{{else {wanted}}}}} can only follow {{{{{wanted}}}}}")
            # {{if a}}x{{else if b}}y{{end}} is {{if a}}x{{else}}{{if b}}y{{end}}{{end}}:
            # the nested branch consumes the shared {{end}}.
            nested = self.control(_Control(wanted, terminator.pos, terminator.pipe))
            assert nested is not None
            else_body = n.ListNode(terminator.pos, (nested,))
        del self.variables[mark:]
        if opener.kind == "if":
            return n.IfNode(opener.pos, opener.pipe, body, else_body)
        if opener.kind == "range":
            return n.RangeNode(opener.pos, opener.pipe, body, else_body)
        return n.WithNode(opener.pos, opener.pipe, body, else_body)

    def definition(self, opener: _Control) -> n.TemplateNode | None:
        """``{{define}}`` (top level only) or ``{{block}}`` (a definition run where it stands)."""
        if opener.kind == "define" and self.block_depth > 0:
            raise self.fail(opener.pos, "unexpected {{define}} inside a block",
                            hint="define named templates at the top level of the template")
        if opener.pipe is not None:
            self.check_pipe(opener.pipe, opener.kind)
        # A named template sees only its own $ (the value it is called with), as in Go,
        # and a {{break}} in it has no {{range}} of the caller to leave.
        saved = self.variables, self.range_depth
        self.variables, self.range_depth = ["$"], 0
        self.block_depth += 1
        body, terminator = self.item_list()
        self.block_depth -= 1
        self.variables, self.range_depth = saved
        if terminator is None:
            line_opened = self.source.count("\n", 0, opener.pos) + 1
            raise self.fail(len(self.source),
                            f"unexpected EOF: {{{{{opener.kind}}}}} opened at line {line_opened} "
                            "has no {{end}}", hint="add {{ end }}")
        if terminator.kind != "end":
            raise self.fail(terminator.pos, f"unexpected {{{{else}}}} in {{{{{opener.kind}}}}}",
                            hint=f"{{{{{opener.kind}}}}} takes no {{{{else}}}}")
        self.define(n.DefineNode(opener.pos, opener.name, body))
        if opener.kind == "block":
            return n.TemplateNode(opener.pos, opener.name, opener.pipe)
        return None

    def define(self, node: n.DefineNode) -> None:
        # Go's rule: a later definition may replace an empty one, and an empty one changes nothing.
        previous = self.definitions.get(node.name)
        if previous is None or _is_empty(previous.body):
            self.definitions[node.name] = node
        elif not _is_empty(node.body):
            line = self.source.count("\n", 0, previous.pos) + 1
            raise self.fail(node.pos, f"template: multiple definition of template {node.name!r}",
                            hint=f"it is already defined on line {line}")

    def check_pipe(self, pipe: n.PipeNode, context: str) -> None:
        if len(pipe.decl) > 1 and context != "range":
            raise self.fail(pipe.decl[1].pos, f"too many declarations in {context}",
                            hint="only {{range $i, $x := ...}} declares two variables")
        if len(pipe.decl) > 2:
            raise self.fail(pipe.decl[2].pos, "too many declarations in range")
        for index, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], (n.BoolNode, n.DotNode, n.NilNode, n.NumberNode,
                                        n.StringNode)):
                raise self.fail(cmd.pos, f"non executable command in pipeline stage {index}",
                                hint="after | comes a function or field, like {{ .X | printf \"%q\" }}")
        for cmd in pipe.cmds:
            for arg in cmd.args:
                self.check_argument(arg)
        if pipe.is_assign:
            for variable in pipe.decl:
                self.require_variable(variable)
        else:
            self.variables.extend(v.ident[0] for v in pipe.decl)

    def check_argument(self, arg: n.Argument) -> None:
        if isinstance(arg, n.VariableNode):
            self.require_variable(arg)
        elif isinstance(arg, n.PipeNode):
            self.check_pipe(arg, "parenthesized pipeline")
        elif isinstance(arg, n.ChainNode):
            self.check_pipe(arg.node, "parenthesized pipeline")

    def require_variable(self, variable: n.VariableNode) -> None:
        if variable.ident[0] not in self.variables:
            raise self.fail(variable.pos, f'undefined variable "{variable.ident[0]}"',
                            hint="declare it first: {{ " + variable.ident[0] + " := ... }}")


def _is_empty(body: n.ListNode) -> bool:
    """Go's IsEmptyTree: nothing but white space."""
    return all(isinstance(node, n.TextNode) and not node.text.strip() for node in body.nodes)


def parse_template(source: str, *, name: str, functions: Collection[str]) -> n.ListNode:
    """Parse Go template `source`; `functions` are the names callable in it."""
    parsed: list[tuple[int, _Parsed]] = []
    try:
        for item in lex(source, name=name):
            if isinstance(item, TextItem):
                parsed.append((item.pos, n.TextNode(item.pos, item.text)))
            else:
                parsed.append((item.pos, _ActionReader(source, name, item, functions).read()))
        return _TreeBuilder(source, name, parsed).build()
    except RecursionError:
        where = parsed[-1][0] if parsed else 0
        raise error_at(source, where, "template nests too deeply", name=name,
                       hint="flatten the nested {{if}}/{{range}} blocks or parentheses") from None

