"""Run a parsed Go template over data, as text/template's exec.go does.

Variables live on one stack (``$`` is the data); ``if``/``with``/``range``
drop what they declared at their ``{{end}}``; a pipeline's previous value
becomes the last argument of the next command; a missing map key prints
``<no value>``; ``{{template "name" x}}`` runs a definition with a fresh
stack whose ``$`` is ``x``. Every render runs against a `Meter` (see
`budget.py`): each node is a step (the clock is read every few), each
``range`` turn a loop iteration, each nested block or template call a level
of depth, and the output and every string a function builds are counted as
they grow, so a hostile template in a downloaded package cannot hang the
daemon or exhaust its memory.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping, Sequence

from . import nodes as n
from .budget import DEFAULT_BUDGET, NESTING_DEPTH, BudgetExceeded, Meter, RenderBudget, TemplateBudgetError, \
    budget_hint
from .errors import TemplateError, error_at, line_and_column
from .functions import FUNCTIONS, FunctionError, GoFunction
from .gofmt import format_value
from .values import NIL, GoStruct, go_type_name, is_true, sorted_map_keys, unwrap


class _Missing:
    """Marks "no value from a previous pipeline stage" (Go's missingVal)."""


_MISSING: Any = _Missing()


class _ExecError(Exception):
    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


class _OverBudget(Exception):
    """`BudgetExceeded` with the position of the node that spent the last of it."""

    def __init__(self, pos: int, exceeded: BudgetExceeded) -> None:
        super().__init__(exceeded.message)
        self.pos = pos
        self.exceeded = exceeded


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def execute(root: n.ListNode, data: Any, *, source: str, name: str,
            functions: Mapping[str, GoFunction] = FUNCTIONS,
            budget: RenderBudget = DEFAULT_BUDGET, meter: Meter | None = None) -> str:
    """Render `root` over `data`; errors are `TemplateError` at the node that failed.

    `meter` carries one render's spending across several executions (the
    per-turn renders of a legacy template); without it a fresh one is
    started against `budget`. Over budget: `TemplateBudgetError`.
    """
    state = _State(functions, meter if meter is not None else Meter(budget), root)
    state.vars.append(["$", data])
    try:
        state.walk(data, root)
    except _ExecError as exc:
        raise error_at(source, exc.pos, exc.message, name=name) from None
    except _OverBudget as exc:
        raise _budget_error(source, exc.pos, exc.exceeded, name) from None
    except (_Break, _Continue):  # pragma: no cover - the parser rejects these outside range
        raise TemplateError("{{break}} outside {{range}}", filename=name) from None
    except RecursionError:
        # The depth budget stops template recursion long before Python's limit;
        # this is the backstop for a budget configured deeper than Python can go.
        exceeded = state.meter.over(NESTING_DEPTH, "the template nests too deeply to execute")
        raise _budget_error(source, 0, exceeded, name) from None
    return "".join(state.out)


def _budget_error(source: str, pos: int, exceeded: BudgetExceeded, name: str) -> TemplateBudgetError:
    line, column, source_line = line_and_column(source, pos)
    return TemplateBudgetError(exceeded.message, limit=exceeded.key, filename=name, line=line, column=column,
                               hint=budget_hint(exceeded.key), source_line=source_line)


class _State:
    def __init__(self, functions: Mapping[str, GoFunction], meter: Meter, root: n.ListNode) -> None:
        self.functions = functions
        self.meter = meter
        self.vars: list[list[Any]] = []
        self.out: list[str] = []
        self.definitions = {node.name: node for node in root.nodes if isinstance(node, n.DefineNode)}

    # --- output and bookkeeping ---

    def step(self, pos: int) -> None:
        try:
            self.meter.tick()
        except BudgetExceeded as exc:
            raise _OverBudget(pos, exc) from None

    def write(self, pos: int, text: str) -> None:
        try:
            self.meter.write(text)
        except BudgetExceeded as exc:
            raise _OverBudget(pos, exc) from None
        self.out.append(text)

    def iterations(self, pos: int, count: int = 1) -> None:
        try:
            self.meter.iterate(count)
        except BudgetExceeded as exc:
            raise _OverBudget(pos, exc) from None

    def nested(self, pos: int, dot: Any, body: n.ListNode) -> None:
        """Walk `body` one level deeper."""
        try:
            self.meter.enter()
        except BudgetExceeded as exc:
            raise _OverBudget(pos, exc) from None
        try:
            self.walk(dot, body)
        finally:
            self.meter.leave()

    def set_var(self, pos: int, name: str, value: Any) -> None:
        for slot in reversed(self.vars):
            if slot[0] == name:
                slot[1] = value
                return
        raise _ExecError(pos, f"undefined variable: {name}")

    def var_value(self, pos: int, name: str) -> Any:
        for slot in reversed(self.vars):
            if slot[0] == name:
                return slot[1]
        raise _ExecError(pos, f"undefined variable: {name}")

    # --- statements ---

    def walk(self, dot: Any, node: n.Node) -> None:
        self.step(node.pos)
        if isinstance(node, n.TextNode):
            self.write(node.pos, node.text)
        elif isinstance(node, n.ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, n.ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.write(node.pos, "<no value>" if value is None else format_value(value))
        elif isinstance(node, (n.IfNode, n.WithNode)):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, n.RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, n.TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, n.DefineNode):
            pass  # collected before the walk; writes nothing where it stands
        elif isinstance(node, n.BreakNode):
            raise _Break()
        elif isinstance(node, n.ContinueNode):
            raise _Continue()
        else:  # pragma: no cover - the parser builds no other node
            raise _ExecError(node.pos, f"unknown node {type(node).__name__}")

    def walk_if_or_with(self, dot: Any, node: n.IfNode | n.WithNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if is_true(value):
                self.nested(node.pos, value if isinstance(node, n.WithNode) else dot, node.body)
            elif node.else_body is not None:
                self.nested(node.pos, dot, node.else_body)
        finally:
            del self.vars[mark:]

    def walk_template(self, dot: Any, node: n.TemplateNode) -> None:
        definition = self.definitions.get(node.name)
        if definition is None:
            raise _ExecError(node.pos, f"no such template {node.name!r}")
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        # A called template sees only its own $, as in Go; the caller's variables come back after.
        saved, self.vars = self.vars, [["$", value]]
        try:
            self.nested(node.pos, value, definition.body)
        finally:
            self.vars = saved

    def walk_range(self, dot: Any, node: n.RangeNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            body_mark = len(self.vars)
            decl = node.pipe.decl

            def one_iteration(index: Any, element: Any) -> None:
                if decl:
                    if node.pipe.is_assign:
                        first = index if len(decl) > 1 else element
                        self.set_var(decl[0].pos, decl[0].ident[0], first)
                    else:
                        self.vars[-1][1] = element
                if len(decl) > 1:
                    if node.pipe.is_assign:
                        self.set_var(decl[1].pos, decl[1].ident[0], element)
                    else:
                        self.vars[-2][1] = index
                self.iterations(node.pos)
                try:
                    self.nested(node.pos, element, node.body)
                except _Continue:
                    pass
                finally:
                    del self.vars[body_mark:]

            try:
                ran = self.iterate(node, value, one_iteration)
            except _Break:
                return
            if not ran and node.else_body is not None:
                self.nested(node.pos, dot, node.else_body)
        finally:
            del self.vars[mark:]

    def iterate(self, node: n.RangeNode, value: Any, one_iteration: Any) -> bool:
        """Run the body over `value`; False when there was nothing to iterate."""
        if value is None:
            # An invalid value (a missing key, nil) ranges over nothing: not an error.
            return False
        if isinstance(value, (list, tuple, bytes, bytearray)):
            for index, element in enumerate(value):
                one_iteration(index, NIL if element is None else element)
            return len(value) > 0
        if isinstance(value, dict):
            keys = sorted_map_keys(value)
            for key in keys:
                element = value[key]
                one_iteration(key, NIL if element is None else element)
            return len(keys) > 0
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                raise _ExecError(node.pos, f"can't use {value} to iterate over more than one variable")
            if value > self.meter.iterations_left():
                # Known in advance: refuse before the first turn rather than after a million.
                self.iterations(node.pos, value)
            for index in range(value):
                one_iteration(index, index)
            return value > 0
        raise _ExecError(node.pos, f"range can't iterate over {format_value(value)}")

    # --- expressions ---

    def eval_pipeline(self, dot: Any, pipe: n.PipeNode) -> Any:
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = unwrap(self.eval_command(dot, cmd, value))
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.pos, variable.ident[0], value)
            else:
                self.vars.append([variable.ident[0], value])
        return value

    def not_a_function(self, args: Sequence[n.Argument], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise _ExecError(args[0].pos,
                             f"can't give argument to non-function {n.describe(args[0])}")

    def eval_command(self, dot: Any, cmd: n.CommandNode, final: Any) -> Any:
        self.step(cmd.pos)
        first = cmd.args[0]
        if isinstance(first, n.FieldNode):
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, n.ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, n.IdentifierNode):
            return self.eval_function(dot, first, cmd.args, final)
        if isinstance(first, n.PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, n.VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.not_a_function(cmd.args, final)
        if isinstance(first, n.NilNode):
            raise _ExecError(first.pos, "nil is not a command")
        if isinstance(first, n.DotNode):
            return dot
        assert isinstance(first, (n.BoolNode, n.NumberNode, n.StringNode))
        return first.value

    def eval_variable(self, dot: Any, variable: n.VariableNode,
                      args: Sequence[n.Argument], final: Any) -> Any:
        value = self.var_value(variable.pos, variable.ident[0])
        if len(variable.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, variable, variable.ident[1:], args, final)

    def eval_chain(self, dot: Any, chain: n.ChainNode, args: Sequence[n.Argument],
                   final: Any) -> Any:
        receiver = self.eval_pipeline(dot, chain.node)
        return self.eval_field_chain(dot, receiver, chain, chain.fields, args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: n.Argument,
                         ident: Sequence[str], args: Sequence[n.Argument], final: Any) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(name, node, (node,), _MISSING, receiver)
        return self.eval_field(ident[-1], node, args, final, receiver)

    def eval_field(self, name: str, node: n.Argument, args: Sequence[n.Argument],
                   final: Any, receiver: Any) -> Any:
        if receiver is None:
            return None
        has_args = len(args) > 1 or final is not _MISSING
        if receiver is NIL:
            raise _ExecError(node.pos, f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, GoStruct):
            if name in receiver.go_field_names():
                if has_args:
                    raise _ExecError(node.pos, f"{name} has arguments but cannot be invoked as function")
                value = getattr(receiver, name)
                return NIL if value is None else value
            raise _ExecError(node.pos, f"can't evaluate field {name} in type "
                                       f"{go_type_name(receiver)}")
        if isinstance(receiver, dict):
            if has_args:
                raise _ExecError(node.pos, f"{name} is not a method but has arguments")
            value = receiver.get(name)
            return NIL if value is None else value
        raise _ExecError(node.pos, f"can't evaluate field {name} in type {go_type_name(receiver)}")

    def eval_arg(self, dot: Any, node: n.Argument) -> Any:
        if isinstance(node, n.DotNode):
            return dot
        if isinstance(node, n.FieldNode):
            return self.eval_field_chain(dot, dot, node, node.ident, (node,), _MISSING)
        if isinstance(node, n.VariableNode):
            return self.eval_variable(dot, node, (node,), _MISSING)
        if isinstance(node, n.PipeNode):
            return self.eval_pipeline(dot, node)
        if isinstance(node, n.IdentifierNode):
            return self.eval_function(dot, node, (node,), _MISSING)
        if isinstance(node, n.ChainNode):
            return self.eval_chain(dot, node, (node,), _MISSING)
        if isinstance(node, n.NilNode):
            return None
        return node.value

    def typed_arg(self, dot: Any, node: n.Argument, fn: GoFunction, string_param: bool) -> Any:
        """Evaluate an argument for a parameter, with Go's type checks."""
        if isinstance(node, n.NilNode):
            if string_param:
                raise _ExecError(node.pos, "cannot assign nil to string")
            if not fn.any_typed:
                raise _ExecError(node.pos, "cannot assign nil to reflect.Value")
            return None
        if string_param and isinstance(node, (n.NumberNode, n.BoolNode)):
            raise _ExecError(node.pos, f"expected string; found {n.describe(node)}")
        value = self.eval_arg(dot, node)
        if string_param:
            self.check_string(node.pos, value)
        return value

    def check_string(self, pos: int, value: Any) -> None:
        if not isinstance(value, str):
            if value is None or value is NIL:
                raise _ExecError(pos, "invalid value; expected string")
            raise _ExecError(pos, f"wrong type for value; expected string; got {go_type_name(value)}")

    def eval_function(self, dot: Any, ident: n.IdentifierNode, cmd_args: Sequence[n.Argument],
                      final: Any) -> Any:
        fn = self.functions[ident.name]
        args = list(cmd_args[1:])
        given = len(args) + (0 if final is _MISSING else 1)
        if fn.variadic:
            if given < fn.fixed:
                raise _ExecError(ident.pos, f"wrong number of args for {fn.name}: want at least "
                                            f"{fn.fixed} got {len(args)}")
        elif given != fn.fixed:
            raise _ExecError(ident.pos, f"wrong number of args for {fn.name}: want {fn.fixed} "
                                        f"got {given}")
        if fn.name in ("and", "or"):
            return self.short_circuit(dot, fn, args, final)
        values = [self.typed_arg(dot, arg, fn, fn.string_first and i == 0)
                  for i, arg in enumerate(args)]
        if final is not _MISSING:
            if fn.string_first and not args:
                self.check_string(ident.pos, final)
            values.append(final)
        try:
            if fn.builds_text:
                # Stops the function as its result grows, not after it has filled memory.
                return fn.call(*values, meter=self.meter)
            return fn.call(*values)
        except FunctionError as exc:
            raise _ExecError(ident.pos, f"error calling {fn.name}: {exc}") from None
        except BudgetExceeded as exc:
            raise _OverBudget(ident.pos, exc) from None

    def short_circuit(self, dot: Any, fn: GoFunction, args: Sequence[n.Argument],
                      final: Any) -> Any:
        """``and`` / ``or``: stop at the first deciding value and return it."""
        stop_when = fn.name == "or"
        value: Any = None
        for arg in args:
            value = unwrap(self.typed_arg(dot, arg, fn, False))
            if is_true(value) == stop_when:
                return value
        if final is not _MISSING:
            value = final
        return value
