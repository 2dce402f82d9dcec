"""Prompts from requests: the package's template, its SYSTEM and MESSAGEs, and fitting the context.

Generate renders `prompt` (and `system`) through the template unless `raw`;
Chat renders the conversation with the package's MESSAGE lines first and its
SYSTEM as the default system message. When a conversation does not fit the
context window, the oldest turns are dropped -- MESSAGE examples first, then
the request's own -- keeping every system message and at least the latest
turn; the number of prompt tokens saved that way is reported, never silent.

Every render runs against the daemon's render budget (config.yaml's
`templates:`); a template that goes over it fails the request with
`TemplateBudgetExceededError`, naming the model and the limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ingot.daemon.engine.context_window import reply_room
from ingot.daemon.errors import TemplateBudgetExceededError
from ingot.daemon.prompt_size import TokenBound
from ingot.modelfile.template import (
    DEFAULT_BUDGET,
    DEFAULT_TEMPLATE_TEXT,
    ChatMessage,
    RenderBudget,
    Template,
    TemplateBudgetError,
    compile_template,
    render_generate,
    render_prompt,
)
from ingot.modelfile.template.inputs import Think
from ingot.registry.package import Package

__all__ = ["Prompt", "PromptSource", "chat_prompt", "compiled", "generate_prompt"]

CountTokens = Callable[[str], int]


@functools.lru_cache(maxsize=64)
def compiled(text: str, name: str = "TEMPLATE") -> Template:
    """`compile_template`, cached: packages and requests repeat the same few templates."""
    return compile_template(text, name=name)


@dataclass(frozen=True)
class Prompt:
    text: str
    add_bos: bool  # False when the rendered text already begins with the BOS token
    truncated_tokens: int = 0


@dataclass(frozen=True)
class PromptSource:
    """What a package contributes to prompts."""

    template: Template | None  # the Modelfile's TEMPLATE, compiled
    gguf_chat_template: str | None  # Jinja from the GGUF, used when there is no TEMPLATE
    system: str | None
    messages: tuple[ChatMessage, ...]
    bos_token: str
    eos_token: str
    model: str = ""  # the name in messages
    budget: RenderBudget = DEFAULT_BUDGET

    @classmethod
    def of(
        cls,
        package: Package,
        *,
        gguf_chat_template: str | None,
        bos_token: str,
        eos_token: str,
        budget: RenderBudget = DEFAULT_BUDGET,
    ) -> PromptSource:
        modelfile = package.modelfile
        return cls(
            template=compiled(modelfile.template) if modelfile.template is not None else None,
            gguf_chat_template=None if modelfile.template is not None else gguf_chat_template,
            system=modelfile.system,
            messages=tuple(ChatMessage(m.role, m.content) for m in modelfile.messages),
            bos_token=bos_token,
            eos_token=eos_token,
            model=package.reference.short,
            budget=budget,
        )

    @contextmanager
    def _budgeted(self) -> Iterator[None]:
        """Over budget: the error names the model, not only the template."""
        try:
            yield
        except TemplateBudgetError as exc:
            where = f"{exc.filename}:{exc.line}:{exc.column}"
            raise TemplateBudgetExceededError(self.model or "(unnamed)", exc.limit, f"{where}: {exc.message}") from None

    def chosen(self, override: str | None = None) -> Template:
        """The template a prompt is rendered with: `override`, the TEMPLATE, the GGUF's, or Ollama's default."""
        if override is not None:
            return compiled(override, "request template")
        if self.template is not None:
            return self.template
        if self.gguf_chat_template:
            return compiled(self.gguf_chat_template, "tokenizer.chat_template")
        return compiled(DEFAULT_TEMPLATE_TEXT, "default template")

    def _finish(self, text: str, truncated: int = 0) -> Prompt:
        starts_with_bos = bool(self.bos_token) and text.startswith(self.bos_token)
        return Prompt(text=text, add_bos=not starts_with_bos, truncated_tokens=truncated)


def generate_prompt(
    source: PromptSource,
    prompt: str,
    *,
    system: str | None = None,
    template: str | None = None,
    raw: bool = False,
    think: Think = None,
) -> Prompt:
    """The text a Generate request decodes: Ollama's rules (system, MESSAGE lines, the prompt as a user turn)."""
    if raw:
        return Prompt(text=prompt, add_bos=True)
    chosen = compiled(template, "request template") if template is not None else source.template
    with source._budgeted():
        text = render_generate(
            chosen,
            prompt,
            system,
            default_system=source.system,
            modelfile_messages=source.messages,
            gguf_chat_template=source.gguf_chat_template if chosen is None else None,
            bos_token=source.bos_token,
            eos_token=source.eos_token,
            budget=source.budget,
            think=think,
        )
    return source._finish(text)


def _render_chat(source: PromptSource, examples: Sequence[ChatMessage], messages: Sequence[ChatMessage],
                 tools: Sequence[Mapping[str, Any]] | None, think: Think) -> str:
    with source._budgeted():
        return render_prompt(
            source.template,
            messages=list(messages),
            tools=tools,
            think=think,
            default_system=source.system,
            modelfile_messages=tuple(examples),
            gguf_chat_template=source.gguf_chat_template,
            bos_token=source.bos_token,
            eos_token=source.eos_token,
            budget=source.budget,
        )


def chat_prompt(
    source: PromptSource,
    messages: Sequence[ChatMessage],
    *,
    count_tokens: CountTokens,
    n_ctx: int,
    num_predict: int,
    tools: Sequence[Mapping[str, Any]] | None = None,
    think: Think = None,
    bound: TokenBound = TokenBound(),
) -> Prompt:
    """The text a Chat request decodes, with the oldest turns dropped when it would not fit.

    Raises PromptTooLongError, before tokenizing anything, when even the shortest prompt dropping turns can
    give is too long by its size in bytes (`bound`).
    """
    examples = list(source.messages)
    turns = [m for m in messages if m.role != "system"]

    def render(dropped: int) -> str:
        from_examples = min(dropped, len(examples))
        kept_ids = {id(t) for t in turns[dropped - from_examples :]}
        # System messages keep their place relative to the turns that remain.
        kept = [m for m in messages if m.role == "system" or id(m) in kept_ids]
        return _render_chat(source, examples[from_examples:], kept, tools, think)

    droppable = len(examples) + max(len(turns) - 1, 0)
    bound.check(render(droppable), n_ctx)
    full = render(0)
    full_tokens = count_tokens(full)
    if full_tokens <= n_ctx:
        return source._finish(full)
    budget = n_ctx - reply_room(n_ctx, num_predict)
    if droppable == 0:
        return source._finish(full)  # nothing to drop: the engine reports the overflow
    # Fewest dropped turns that fit: a binary search, since dropping more never lengthens the prompt.
    low, high = 1, droppable
    best: tuple[str, int] | None = None
    while low <= high:
        middle = (low + high) // 2
        text = render(middle)
        # Texts too long by their bytes alone need no tokenizer to be told so.
        tokens = budget + 1 if bound.fewest_tokens(text) > budget else count_tokens(text)
        if tokens <= budget:
            best = (text, tokens)
            high = middle - 1
        else:
            low = middle + 1
    if best is None:
        # Even the latest turn alone is too long; the engine reports by how much.
        text = render(droppable)
        return source._finish(text, full_tokens - count_tokens(text))
    text, tokens = best
    return source._finish(text, full_tokens - tokens)
