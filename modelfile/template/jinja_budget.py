"""Jinja's immutable sandbox with a render budget (`budget.py`) on top.

Jinja's sandbox keeps a template away from Python internals and caps
``range()`` at 100,000 items; it does not stop ``{% for %}`` loops nested
three deep, ``'x' * 10**9``, ``10 ** 10 ** 9``, strings doubled in a loop or
output built inside a macro. `BudgetedSandbox` adds, for every render:

* a loop turn (and a clock check) at the head of every ``{% for %}`` body and
  in every loop filter test, put there by rewriting the parsed template;
* a step, a level of depth and a result check around every call
  (functions, methods, macros, ``loop()``), through the sandbox's ``call``;
* checks before ``*``, ``**``, ``+`` and ``%`` build their result (the
  sandbox's intercepted operators), before ``~`` joins its parts, and before
  the filters and ``str`` methods that can multiply their input (``center``,
  ``indent``, ``replace``, ``join``, ``format``, ``batch``...);
* every piece of text written, into the output or into a macro's, a
  ``{% set %}`` block's or a filter block's buffer, counted as it is written.

The meter of the render in progress is found through a context variable,
because one compiled template serves many concurrent renders and the hooks
are methods of the shared environment. Outside a render (Jinja folds
constant expressions while compiling) a fresh default meter applies.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
import types
from typing import Any
from collections.abc import Callable, Iterator

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from .budget import DEFAULT_BUDGET, LOOP_ITERATIONS, BoundedText, Meter

__all__ = ["BudgetedSandbox", "metered", "render_chunks"]

_METER: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("ingot_template_meter", default=None)

# A number a template computes may have this many bits (about 20,000 digits):
# far beyond any chat template's arithmetic, far below a slow multiplication.
_MAX_INT_BITS = 1 << 16

_TICK = "ingot_loop_turn"
_CONCAT = "ingot_concat"
_DIGITS = re.compile(r"\d+")


def _meter() -> Meter:
    meter = _METER.get()
    return meter if meter is not None else Meter(DEFAULT_BUDGET)


class metered:
    """``with metered(meter):`` -- the hooks of every `BudgetedSandbox` charge `meter` meanwhile."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._token: contextvars.Token[Meter | None] | None = None

    def __enter__(self) -> Meter:
        self._token = _METER.set(self._meter)
        return self._meter

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _METER.reset(self._token)


# --- sizes ------------------------------------------------------------------

def _check_result(meter: Meter, value: Any) -> Any:
    """A value a template built: a string no longer than the output may be, a list no longer than a loop."""
    if isinstance(value, str):
        meter.check_size(len(value))
    elif isinstance(value, (list, tuple)):
        _check_items(meter, len(value))
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_INT_BITS:
        raise meter.over("max_output_bytes", f"a number of {value.bit_length():,} bits")
    return value


def _check_items(meter: Meter, count: int) -> None:
    if count > meter.budget.max_loop_iterations:
        raise meter.over(LOOP_ITERATIONS, f"a list of {count:,} items is longer than any loop may run")


def _check_format(meter: Meter, format_string: str) -> None:
    """Widths and precisions in a %-format or str.format string: their sum bounds the padding."""
    total = 0
    for digits in _DIGITS.findall(format_string):
        if len(digits) > 12:
            raise meter.over("max_output_bytes", f"a format width of {len(digits)} digits")
        total += int(digits)
    meter.check_size(total, "the padding this format asks for")


def _check_repeat(meter: Meter, sequence: Any, times: Any) -> None:
    if isinstance(times, bool) or not isinstance(times, int):
        return
    if isinstance(sequence, str):
        meter.check_size(len(sequence) * max(times, 0))
    elif isinstance(sequence, (list, tuple)):
        _check_items(meter, len(sequence) * max(times, 0))


def _check_int_op(meter: Meter, operator: str, left: Any, right: Any) -> None:
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right)):
        return
    if operator == "*":
        bits = left.bit_length() + right.bit_length()
    elif operator == "**" and right > 0 and abs(left) > 1:
        bits = left.bit_length() * right
    else:
        return
    if bits > _MAX_INT_BITS:
        raise meter.over("max_output_bytes", f"a number of about {bits:,} bits")


def _precheck_binop(meter: Meter, operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        _check_repeat(meter, left, right)
        _check_repeat(meter, right, left)
    elif operator == "+":
        if isinstance(left, str) and isinstance(right, str):
            meter.check_size(len(left) + len(right))
        elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            _check_items(meter, len(left) + len(right))
    elif operator == "%" and isinstance(left, str):
        _check_format(meter, left)
    _check_int_op(meter, operator, left, right)


# --- str methods and filters that can multiply their input -------------------

def _str_method(obj: Any) -> tuple[str, str] | None:
    """(the string, the method name) when `obj` is a bound method of a str, else None."""
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    if isinstance(target, (types.BuiltinMethodType, types.MethodType)) and isinstance(
            getattr(target, "__self__", None), str):
        return target.__self__, target.__name__
    return None


def _precheck_call(meter: Meter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call whose result would be too large; returns the (maybe materialised) arguments."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and value > meter.room():
            raise meter.over("max_output_bytes", f"an argument of {value:,}")
    method = _str_method(obj)
    if method is None:
        return args
    text, name = method
    if name in ("format", "format_map"):
        _check_format(meter, text)
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            meter.check_size(len(text) + text.count("\t") * size)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        meter.check_size(_replaced_length(text, args[0], args[1], args[2] if len(args) > 2 else -1))
    elif name == "join" and args:
        items = list(args[0])
        _check_joined(meter, text, items)
        return (items, *args[1:])
    return args


def _replaced_length(text: str, old: str, new: str, count: Any) -> int:
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _check_joined(meter: Meter, separator: str, items: list[Any]) -> None:
    _check_items(meter, len(items))
    meter.check_size(sum(len(i) for i in items if isinstance(i, str)) + len(separator) * len(items))


def _bound(signature: inspect.Signature, args: tuple[Any, ...],
           kwargs: dict[str, Any]) -> tuple[int, inspect.BoundArguments] | None:
    """The arguments bound to the filter's parameters, and how many leading ones were Jinja's own."""
    # Jinja's async-capable filters (join, list...) are called with an eval
    # context their sync signature does not name: try without it too.
    for skip in (0, 1):
        try:
            bound = signature.bind(*args[skip:], **kwargs)
        except TypeError:
            continue
        bound.apply_defaults()
        return skip, bound
    return None  # the filter itself reports the bad call


def _filter_prechecks(name: str, meter: Meter, a: dict[str, Any]) -> dict[str, Any] | None:
    """Checks before filter `name` runs, on its bound arguments; may return replaced arguments."""
    if name == "center" and isinstance(a.get("width"), int):
        meter.check_size(a["width"])
    elif name == "indent":
        text, width = str(a.get("s", "")), a.get("width")
        per_line = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        meter.check_size(len(text) + (text.count("\n") + 1) * max(per_line, 0))
    elif name == "wordwrap":
        text, wrap = str(a.get("s", "")), a.get("wrapstring")
        meter.check_size(len(text) * (1 + (len(wrap) if isinstance(wrap, str) else 1)))
    elif name == "replace" and isinstance(a.get("old"), str) and isinstance(a.get("new"), str):
        meter.check_size(_replaced_length(str(a.get("s", "")), a["old"], a["new"], a.get("count")))
    elif name == "join":
        items = list(a.get("value", ()))
        separator = a.get("d", "")
        _check_joined(meter, separator if isinstance(separator, str) else "", items)
        return {**a, "value": items}
    elif name == "format" and isinstance(a.get("value"), str):
        _check_format(meter, a["value"])
    elif name == "batch" and isinstance(a.get("linecount"), int):
        _check_items(meter, a["linecount"])
    elif name == "slice" and isinstance(a.get("slices"), int):
        _check_items(meter, a["slices"])
    elif name == "list" and isinstance(a.get("value"), str):
        _check_items(meter, len(a["value"]))
    elif name == "tojson":
        indent = a.get("indent")
        if isinstance(indent, str):
            meter.check_size(len(indent) * 1000)
        elif isinstance(indent, int):
            meter.check_size(indent * 1000)
    return None


_PRECHECKED = frozenset({"center", "indent", "wordwrap", "replace", "join", "format", "batch", "slice", "list",
                         "tojson"})


def _budgeted_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(function) if name in _PRECHECKED else None

    @functools.wraps(function)  # keeps jinja_pass_arg (pass_context & co.)
    def run(*args: Any, **kwargs: Any) -> Any:
        meter = _meter()
        meter.tick()
        binding = _bound(signature, args, kwargs) if signature is not None else None
        if binding is not None:
            skip, bound = binding
            replaced = _filter_prechecks(name, meter, dict(bound.arguments))
            if replaced is not None:
                # Call again with the materialised arguments (a generator can be read only once).
                bound.arguments.update(replaced)
                return _check_result(meter, function(*args[:skip], *bound.args, **bound.kwargs))
        return _check_result(meter, function(*args, **kwargs))

    return run


# --- compiling: loop turns, concatenation, buffers ----------------------------

@jinja2.pass_context
def _loop_turn(_context: Any, value: Any = True) -> bool:
    # pass_context keeps Jinja from evaluating this once at compile time.
    _meter().iterate()
    return True


def _concat(parts: Any) -> str:
    out = BoundedText(_meter(), "a ~ concatenation")
    for part in parts:
        out.add(str(part))
    return out.text()


def _filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Instrument(NodeTransformer):
    """Counts every loop turn (and loop filter test) and routes ``~`` through a bounded join."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        turn = nodes.ExprStmt(_filter(nodes.Const(True, lineno=node.lineno), _TICK), lineno=node.lineno)
        node.body = [turn, *node.body]
        if node.test is not None:
            node.test = nodes.And(_filter(nodes.Const(True, lineno=node.lineno), _TICK), node.test,
                                  lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(nodes.Tuple(list(node.nodes), "load", lineno=node.lineno), _CONCAT)


class _ChargedBuffer(list):  # type: ignore[type-arg]
    """A macro's, ``{% set %}`` block's or filter block's output buffer, charged as it fills."""

    def append(self, item: Any) -> None:
        _meter().write(str(item))
        super().append(item)

    def extend(self, items: Any) -> None:
        items = tuple(items)
        meter = _meter()
        for item in items:
            meter.write(str(item))
        super().extend(items)


class _BudgetedCodeGenerator(CodeGenerator):
    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.ingot_buffer()")


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, budgeted; compile with `compile_budgeted`."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BudgetedCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _budgeted_filter(name, f) for name, f in self.filters.items()}
        self.filters[_TICK] = _loop_turn
        self.filters[_CONCAT] = _concat
        # lipsum(n) writes n paragraphs of filler; no chat template wants it.
        self.globals.pop("lipsum", None)

    def set_filter(self, name: str, function: Callable[..., Any]) -> None:
        """Add a filter of our own, budgeted like the built-in ones."""
        self.filters[name] = _budgeted_filter(name, function)

    @staticmethod
    def ingot_buffer() -> list[Any]:
        return _ChargedBuffer()

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        meter = _meter()
        _precheck_binop(meter, operator, left, right)
        return _check_result(meter, super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's own signature
        meter = _meter()
        meter.tick()
        args = _precheck_call(meter, __obj, args, kwargs)
        meter.enter()
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            meter.leave()
        return _check_result(meter, result)

    def compile_budgeted(self, source: str, *, name: str) -> types.CodeType:
        """Parse, instrument and compile `source` (raises Jinja's TemplateSyntaxError)."""
        tree = self.parse(source, name=name, filename=name)
        tree = _Instrument().visit(tree)
        code = self.compile(tree, name=name, filename=name)
        assert isinstance(code, types.CodeType)
        return code


def render_chunks(chunks: Iterator[str], meter: Meter) -> str:
    """Join a template's output as it is generated, charging every chunk."""
    out: list[str] = []
    with metered(meter):
        for chunk in chunks:
            meter.write(chunk)
            meter.tick()
            out.append(chunk)
    return "".join(out)
