"""Checking a template before it is used: does it compile, and does it render a standard conversation?

`ingot create` refuses a Modelfile whose TEMPLATE does not compile, with the
error at the Modelfile's own line and column (`compile_modelfile_template`).
`create` and `pull` then render every package's template once against
`STANDARD_CONVERSATION` within the render budget (`trial_render`) and warn
when it fails: such a model can still be stored, shown and pushed, but its
chats would fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingot.modelfile.errors import ModelfileError
from ingot.modelfile.model import Modelfile, SourceLocation

from .api import Template, compile_template, render_prompt
from .budget import DEFAULT_BUDGET, RenderBudget
from .errors import TemplateError
from .inputs import ChatMessage, InputError

__all__ = ["STANDARD_CONVERSATION", "compile_modelfile_template", "in_modelfile", "trial_render"]

STANDARD_CONVERSATION: tuple[ChatMessage, ...] = (
    ChatMessage("user", "Hello! Who are you?"),
    ChatMessage("assistant", "I am a helpful assistant."),
    ChatMessage("user", "What is 2 + 2?"),
)
"""Two user turns around an answer: what every chat template must be able to render.

No system message of its own (some templates refuse one); the package's
SYSTEM and MESSAGE lines are added as they would be for a real request.
"""


def in_modelfile(error: TemplateError, position: SourceLocation) -> ModelfileError:
    """`error` (at a line and column of the template text) moved to the Modelfile that holds the template."""
    line = position.line + error.line - 1
    column = position.column + error.column - 1 if error.line == 1 else error.column
    # Later lines of the template are the Modelfile's lines as they are; the first
    # one is not (TEMPLATE and the quotes come before it), so it is not shown.
    source_line = error.source_line if error.line > 1 else None
    return ModelfileError(f"TEMPLATE: {error.message}", filename=position.filename, line=line, column=column,
                          hint=error.hint, source_line=source_line)


def compile_modelfile_template(modelfile: Modelfile) -> Template | None:
    """The Modelfile's own TEMPLATE compiled, or None without one.

    Raises `ModelfileError` pointing into the Modelfile (file:line:col of the
    problem inside the template) when the template does not compile.
    """
    if modelfile.template is None:
        return None
    try:
        return compile_template(modelfile.template)
    except TemplateError as exc:
        position = modelfile.template_location
        if position is None:
            raise
        raise in_modelfile(exc, position) from None


def trial_render(template: Template | None, *, gguf_chat_template: str | None = None,
                 system: str | None = None, messages: Sequence[Any] = (),
                 budget: RenderBudget = DEFAULT_BUDGET) -> TemplateError | None:
    """Render `STANDARD_CONVERSATION` as a chat request would; the error, or None when it renders.

    `template` is the package's TEMPLATE (None: the GGUF's `gguf_chat_template`,
    else Ollama's default); `system` and `messages` its SYSTEM and MESSAGE lines.
    """
    try:
        render_prompt(template, messages=STANDARD_CONVERSATION, default_system=system,
                      modelfile_messages=tuple(messages), gguf_chat_template=gguf_chat_template,
                      budget=budget)
    except TemplateError as exc:
        return exc
    except InputError as exc:
        return TemplateError(f"the template cannot take a standard conversation: {exc}",
                             filename=template.name if template is not None else "tokenizer.chat_template")
    return None
