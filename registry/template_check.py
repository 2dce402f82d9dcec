"""Trial-render a stored package's template: the warnings `ingot create` and `ingot pull` print.

The template a package's chats will use (its TEMPLATE, else its GGUF's chat
template) is compiled and rendered once against a standard conversation
within the render budget (`ingot.modelfile.template.check`). A package that
fails is still stored -- it can be shown, pushed, used raw or for embeddings
-- but the user hears at once, not at the first chat.
"""

from __future__ import annotations

from ingot.modelfile.template import DEFAULT_BUDGET, RenderBudget, Template, TemplateError, compile_template
from ingot.modelfile.template.check import trial_render
from ingot.registry.gguf_info import GGUFError, inspect_gguf
from ingot.registry.package import Package

__all__ = ["template_warnings"]


def _one_line(error: BaseException) -> str:
    return " | ".join(part.strip() for part in str(error).splitlines() if part.strip())


def template_warnings(package: Package, *, budget: RenderBudget = DEFAULT_BUDGET) -> tuple[str, ...]:
    """Why `package`'s chats would fail, one line each; empty when its template renders."""
    name = package.reference.without_digest().short
    modelfile = package.modelfile
    template: Template | None = None
    gguf_template: str | None = None
    if modelfile.template is not None:
        what = "its TEMPLATE"
        try:
            template = compile_template(modelfile.template)
        except TemplateError as exc:
            return (f"{name}: {what} does not compile, so its chats will fail: {_one_line(exc)}",)
    else:
        what = "its GGUF chat template"
        try:
            gguf_template = inspect_gguf(package.weights).chat_template
        except GGUFError:
            return ()  # the weights themselves are checked elsewhere; nothing to say about a template
        if not gguf_template:
            return ()
        try:
            compile_template(gguf_template, name="tokenizer.chat_template")
        except TemplateError as exc:
            return (f"{name}: {what} does not compile, so its chats will fail "
                    f"(give it a TEMPLATE): {_one_line(exc)}",)
    failure = trial_render(template, gguf_chat_template=gguf_template, system=modelfile.system,
                           messages=modelfile.messages, budget=budget)
    if failure is None:
        return ()
    return (f"{name}: {what} fails a trial render of a standard conversation: {_one_line(failure)}",)
