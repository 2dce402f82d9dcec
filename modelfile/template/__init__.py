"""Prompt templates: Ollama's Go text/template dialect, and Jinja chat templates.

::

    from ingot.modelfile.template import compile_template, render_prompt

    tmpl = compile_template(modelfile.template)          # TemplateError on bad syntax
    text = render_prompt(tmpl, messages=[{"role": "user", "content": "Hi"}],
                         default_system=modelfile.system,
                         modelfile_messages=modelfile.messages)

A Go template is lexed (`lexer.py`), its actions parsed with Lark
(`gotemplate.lark`, `parser.py`) into a tree (`nodes.py`) and executed
(`evaluator.py`, `functions.py`, `gofmt.py`, `gojson.py`) under Ollama's
rules for conversations (`ollama.py`). Jinja templates render in a sandbox
(`jinja.py`, `jinja_budget.py`). Every render runs against a `RenderBudget`
(`budget.py`): wall time, output size, loop iterations, nesting depth.
See docs/templates.md.
"""

from __future__ import annotations

from .api import (
    DEFAULT_TEMPLATE_TEXT,
    Template,
    compile_template,
    render_generate,
    render_inputs,
    render_prompt,
)
from .budget import BUDGET_KEYS, DEFAULT_BUDGET, RenderBudget, TemplateBudgetError
from .errors import TemplateError
from .functions import FUNCTIONS
from .inputs import CHAT_ROLES, ChatMessage, InputError, PromptInputs, ToolCall, conversation

__all__ = [
    "BUDGET_KEYS",
    "CHAT_ROLES",
    "DEFAULT_BUDGET",
    "DEFAULT_TEMPLATE_TEXT",
    "FUNCTIONS",
    "ChatMessage",
    "InputError",
    "PromptInputs",
    "RenderBudget",
    "Template",
    "TemplateBudgetError",
    "TemplateError",
    "ToolCall",
    "compile_template",
    "conversation",
    "render_generate",
    "render_inputs",
    "render_prompt",
]
