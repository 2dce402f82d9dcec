"""Jinja chat templates (a GGUF's ``tokenizer.chat_template``, or a Jinja TEMPLATE).

Rendered the way Hugging Face's ``apply_chat_template`` does, in Jinja's
immutable sandbox with a render budget (`jinja_budget.py`): ``trim_blocks`` and ``lstrip_blocks`` on, the
``loopcontrols`` extension, a ``tojson`` filter that keeps non-ASCII text,
and the globals ``raise_exception`` and ``strftime_now``. The context holds
``messages`` (dicts with ``role`` and ``content``, plus ``tool_calls``,
``tool_call_id``, ``name`` and ``reasoning_content`` where set),
``tools``, ``add_generation_prompt=True``, ``bos_token``, ``eos_token`` and,
when the request set thinking, ``enable_thinking`` (and for a level such as
``"high"``, ``reasoning_effort``, the name gpt-oss templates read).
"""

from __future__ import annotations

import datetime
import json
import traceback
from typing import Any, NoReturn
from collections.abc import Mapping, Sequence

import jinja2
import jinja2.ext

from .budget import DEFAULT_BUDGET, NESTING_DEPTH, BudgetExceeded, Meter, RenderBudget, TemplateBudgetError, \
    budget_hint
from .errors import TemplateError
from .inputs import ChatMessage
from .jinja_budget import BudgetedSandbox, render_chunks


class _RaisedByTemplate(jinja2.TemplateError):
    """What the template's own ``raise_exception(...)`` throws."""


def _raise_exception(message: str) -> NoReturn:
    raise _RaisedByTemplate(str(message))


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _strftime_now(format_string: str) -> str:
    return datetime.datetime.now().strftime(format_string)


def _environment() -> BudgetedSandbox:
    env = BudgetedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.set_filter("tojson", _tojson)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def _error(source: str, name: str, message: str, line: int | None,
           hint: str | None = None) -> TemplateError:
    lines = source.split("\n")
    if line is None or not 1 <= line <= len(lines):
        return TemplateError(message, filename=name, line=1, column=1, hint=hint)
    text = lines[line - 1].rstrip("\r")
    column = len(text) - len(text.lstrip()) + 1
    return TemplateError(message, filename=name, line=line, column=column, hint=hint,
                         source_line=text)


def message_dict(message: ChatMessage) -> dict[str, Any]:
    """A message in the Hugging Face chat-template shape."""
    data: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        # OpenAI's key order (id, type, function): a template may print a call with tojson.
        data["tool_calls"] = [
            {**({"id": call.id} if call.id else {}), "type": "function",
             "function": {"name": call.name, "arguments": dict(call.arguments)}}
            for call in message.tool_calls]
    if message.tool_call_id:
        data["tool_call_id"] = message.tool_call_id
    if message.tool_name:
        data["name"] = message.tool_name
    if message.thinking:
        data["reasoning_content"] = message.thinking
    return data


class JinjaPromptTemplate:
    """A compiled Jinja chat template."""

    def __init__(self, source: str, *, name: str) -> None:
        self.source = source
        self.name = name
        env = _environment()
        try:
            code = env.compile_budgeted(source, name=name)
        except jinja2.TemplateSyntaxError as exc:
            raise _error(source, name, f"Jinja syntax error: {exc.message}", exc.lineno,
                         hint="this template was read as Jinja because it uses {% ... %} "
                              "or Jinja-only expressions") from None
        except RecursionError:
            raise _error(source, name, "Jinja template nests too deeply", None) from None
        self._template = env.template_class.from_code(env, code, env.make_globals(None), None)

    def render(self, messages: Sequence[ChatMessage], *, tools: Sequence[Mapping[str, Any]] | None,
               think: bool | str | None, bos_token: str, eos_token: str,
               budget: RenderBudget = DEFAULT_BUDGET) -> str:
        context: dict[str, Any] = {
            "messages": [message_dict(m) for m in messages],
            "tools": [dict(t) for t in tools] if tools is not None else None,
            "add_generation_prompt": True,
            "bos_token": bos_token,
            "eos_token": eos_token,
        }
        if think is not None:
            context["enable_thinking"] = bool(think)
        if isinstance(think, str):
            context["reasoning_effort"] = think
        meter = Meter(budget)
        try:
            return render_chunks(self._template.generate(**context), meter)
        except RecursionError:
            # The depth budget stops macro recursion first; this is the backstop.
            exceeded = meter.over(NESTING_DEPTH, "the template nests too deeply to execute")
            raise self._budget_error(exceeded, None) from None
        except BudgetExceeded as exc:
            raise self._budget_error(exc, self._line_of(exc)) from None
        except Exception as exc:
            raise self._runtime_error(exc) from None

    def _line_of(self, exc: BaseException) -> int | None:
        line = None
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == self.name:
                line = frame.lineno
        return line

    def _budget_error(self, exc: BudgetExceeded, line: int | None) -> TemplateBudgetError:
        plain = _error(self.source, self.name, exc.message, line)
        return TemplateBudgetError(exc.message, limit=exc.key, filename=plain.filename, line=plain.line,
                                   column=plain.column, hint=budget_hint(exc.key), source_line=plain.source_line)

    def _runtime_error(self, exc: Exception) -> TemplateError:
        line = self._line_of(exc)
        if isinstance(exc, _RaisedByTemplate):
            return _error(self.source, self.name, f"the template refused the conversation: {exc}",
                          line, hint="the chat template's own check failed; look at the roles "
                                     "and order of the messages")
        if isinstance(exc, jinja2.exceptions.SecurityError):
            return _error(self.source, self.name, f"unsafe operation blocked by the sandbox: {exc}",
                          line)
        kind = "" if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: "
        return _error(self.source, self.name, f"Jinja error: {kind}{exc}", line)


def looks_like_jinja(source: str) -> bool:
    """True for text that can only be Jinja: it has ``{%`` or ``{#`` blocks."""
    return "{%" in source or "{#" in source


def jinja_parses(source: str) -> bool:
    """Whether Jinja accepts `source` (used to choose a dialect for ambiguous text)."""
    try:
        _environment().parse(source)
    except (jinja2.TemplateSyntaxError, RecursionError):
        return False
    return True
