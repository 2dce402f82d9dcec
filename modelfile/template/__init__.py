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
(`jinja.py`). See docs/templates.md.
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
from .errors import TemplateError
from .functions import FUNCTIONS
from .inputs import CHAT_ROLES, ChatMessage, InputError, PromptInputs, ToolCall, conversation

__all__ = [
    "CHAT_ROLES",
    "DEFAULT_TEMPLATE_TEXT",
    "FUNCTIONS",
    "ChatMessage",
    "InputError",
    "PromptInputs",
    "Template",
    "TemplateError",
    "ToolCall",
    "compile_template",
    "conversation",
    "render_generate",
    "render_inputs",
    "render_prompt",
]
