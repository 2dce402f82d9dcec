"""The public entry points: compile a template, render a chat or a /generate prompt.

A `Template` is compiled once (when a model loads) and rendered per request.
Which dialect a text is in is decided here: ``{%``/``{#`` means Jinja; text
that Go cannot parse but Jinja can, and that has no Go-only syntax (``.Field``,
``$var``, ``{{ if }}``...), is Jinja too; everything else is Go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union
from collections.abc import Mapping, Sequence

from .apitypes import ToolDecodeError, tools_from_json
from .budget import DEFAULT_BUDGET, RenderBudget
from .errors import TemplateError
from .functions import FUNCTIONS
from .inputs import ChatMessage, InputError, PromptInputs, Think, as_message, conversation
from .jinja import JinjaPromptTemplate, jinja_parses, looks_like_jinja
from .ollama import GoPromptTemplate
from .parser import parse_template

DEFAULT_TEMPLATE_TEXT = "{{ .Prompt }}"
"""What Ollama uses when a model has no template at all."""

_GO_ONLY = re.compile(r"\{\{-?\s*(?:[.$]|(?:if|range|with|end|else|template|define|block)\b)")

_Compiled = Union[GoPromptTemplate, JinjaPromptTemplate]


@dataclass(frozen=True)
class Template:
    """A compiled prompt template: `dialect` is ``"go"`` or ``"jinja"``."""

    source: str
    name: str
    dialect: str
    compiled: _Compiled = field(compare=False, repr=False)

    @property
    def supports_suffix(self) -> bool:
        """Whether the template can render fill-in-the-middle prompts (uses ``.Suffix``)."""
        return isinstance(self.compiled, GoPromptTemplate) and self.compiled.supports_suffix


def compile_template(text: str, *, name: str = "TEMPLATE") -> Template:
    """Compile `text` as a Go template or, when it is Jinja, as a Jinja template.

    Raises `TemplateError` (name:line:col, the line, a caret, a hint).
    """
    text = text.replace("\r\n", "\n")
    if looks_like_jinja(text):
        return Template(text, name, "jinja", JinjaPromptTemplate(text, name=name))
    try:
        root = parse_template(text, name=name, functions=FUNCTIONS)
    except TemplateError:
        if not _GO_ONLY.search(text) and jinja_parses(text):
            return Template(text, name, "jinja", JinjaPromptTemplate(text, name=name))
        raise
    return Template(text, name, "go", GoPromptTemplate(root, source=text, name=name))


def _choose(template: Template | None, gguf_chat_template: str | None) -> Template:
    if template is not None:
        return template
    if gguf_chat_template:
        return compile_template(gguf_chat_template, name="tokenizer.chat_template")
    return compile_template(DEFAULT_TEMPLATE_TEXT, name="default template")


def render_inputs(template: Template | None, inputs: PromptInputs, *,
                  default_system: str | None = None, modelfile_messages: Sequence[Any] = (),
                  gguf_chat_template: str | None = None, bos_token: str = "",
                  eos_token: str = "", budget: RenderBudget = DEFAULT_BUDGET) -> str:
    """Render one chat request: `inputs` plus the model's SYSTEM and MESSAGE lines.

    The template is the Modelfile's if given, else the GGUF's chat template,
    else Ollama's default ``{{ .Prompt }}``. The render runs against `budget`
    (`TemplateBudgetError` when it goes over).
    """
    chosen = _choose(template, gguf_chat_template)
    messages = conversation(inputs, default_system=default_system,
                            modelfile_messages=modelfile_messages)
    compiled = chosen.compiled
    if isinstance(compiled, JinjaPromptTemplate):
        return compiled.render(messages, tools=inputs.tools, think=inputs.think,
                               bos_token=bos_token, eos_token=eos_token, budget=budget)
    try:
        tools = tools_from_json(inputs.tools)
    except ToolDecodeError as exc:
        raise InputError(str(exc)) from None
    return compiled.render_chat(messages, tools=tools, think=inputs.think, budget=budget)


def render_prompt(template: Template | None, *, messages: Sequence[ChatMessage | Mapping[str, Any]],
                  system: str | None = None, tools: Sequence[Mapping[str, Any]] | None = None,
                  think: Think = None, default_system: str | None = None,
                  modelfile_messages: Sequence[Any] = (), gguf_chat_template: str | None = None,
                  bos_token: str = "", eos_token: str = "", budget: RenderBudget = DEFAULT_BUDGET) -> str:
    """The exact text the model receives for a chat.

    `messages` are the request's (ChatMessage or ``{"role", "content"}``
    mappings); `system` is a request-level system prompt; `default_system`
    is the Modelfile's SYSTEM (used unless the request starts with a system
    message); `modelfile_messages` are its MESSAGE lines, put before the
    request's messages. Raises `TemplateError` for a template that fails
    (`TemplateBudgetError` when it goes over `budget`) and `InputError` for
    malformed messages or tools.
    """
    inputs = PromptInputs(messages=tuple(as_message(m) for m in messages), system=system,
                          tools=tuple(tools) if tools is not None else None, think=think)
    return render_inputs(template, inputs, default_system=default_system,
                         modelfile_messages=modelfile_messages,
                         gguf_chat_template=gguf_chat_template, bos_token=bos_token,
                         eos_token=eos_token, budget=budget)


def render_generate(template: Template | None, prompt: str, system: str | None = None, *,
                    default_system: str | None = None, modelfile_messages: Sequence[Any] = (),
                    suffix: str | None = None, think: Think = None,
                    gguf_chat_template: str | None = None, bos_token: str = "",
                    eos_token: str = "", budget: RenderBudget = DEFAULT_BUDGET) -> str:
    """The exact text the model receives for a /generate-style prompt.

    As Ollama: the system prompt (`system`, else `default_system`), then the
    MESSAGE lines, then `prompt` as a user message. With a `suffix`, the
    template renders once with ``.Prompt`` and ``.Suffix`` (fill-in-the-
    middle); a template that never uses ``.Suffix`` cannot do that and
    `InputError` says so.
    """
    chosen = _choose(template, gguf_chat_template)
    if suffix:
        if not chosen.supports_suffix:
            raise InputError(f"{chosen.name} does not support a suffix (fill-in-the-middle): "
                             "it never uses .Suffix")
        if prompt:
            assert isinstance(chosen.compiled, GoPromptTemplate)
            return chosen.compiled.render_fill_in_middle(prompt, suffix, think, budget=budget)
    messages: list[Any] = []
    effective_system = system or default_system
    if effective_system:
        messages.append(ChatMessage(role="system", content=effective_system))
    messages.extend(modelfile_messages)
    messages.append(ChatMessage(role="user", content=prompt))
    inputs = PromptInputs(messages=tuple(messages), think=think)
    return render_inputs(chosen, inputs, bos_token=bos_token, eos_token=eos_token, budget=budget)
