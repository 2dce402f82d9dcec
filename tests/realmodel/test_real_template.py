"""The prompt ingot renders from SmolLM2's own Jinja template is the one Hugging Face's convention renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import jinja2.sandbox
import pytest

from ingot.registry.gguf_info import inspect_gguf
from ingot.registry.home import IngotHome
from ingot.registry.package import TEMPLATE_FROM_GGUF, load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.daemon.prompt import PromptSource
from ingot.modelfile.template import render_prompt

from real_helpers import BOS, EOS, MODEL

CONVERSATIONS: dict[str, list[dict[str, str]]] = {
    "no system": [{"role": "user", "content": "What is the capital of France?"}],
    "system": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Hi"},
    ],
    "multi-turn": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Bonjour !"},
        {"role": "user", "content": "How are you?"},
    ],
    "consecutive roles": [
        {"role": "user", "content": "First question."},
        {"role": "user", "content": "Second question."},
        {"role": "assistant", "content": "One answer."},
        {"role": "assistant", "content": "Another answer."},
        {"role": "user", "content": "Thanks\nbye"},
    ],
}


def hugging_face_render(template: str, messages: list[dict[str, str]], *, bos: str, eos: str) -> str:
    """What transformers' `apply_chat_template(..., add_generation_prompt=True, tokenize=False)` renders.

    The environment is transformers' own (chat_template_utils._compile_jinja_template):
    an immutable sandbox, trim_blocks and lstrip_blocks, the loopcontrols extension,
    `raise_exception`, and `tojson` that keeps non-ASCII text.
    """
    import json

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos
    )


@pytest.fixture(scope="module")
def prompt_source(real_home: Path, smollm2: Path) -> PromptSource:
    package = load_package(Store.open(IngotHome(real_home)), Reference.parse(MODEL))
    assert package.template_source == TEMPLATE_FROM_GGUF
    return PromptSource.of(package, gguf_chat_template=inspect_gguf(smollm2).chat_template,
                           bos_token=BOS, eos_token=EOS)


def test_special_token_texts_are_the_ggufs(reference: Any) -> None:
    assert reference.detokenize([reference.token_bos()], special=True).decode() == BOS
    assert reference.detokenize([reference.token_eos()], special=True).decode() == EOS


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_rendered_prompt_equals_hugging_face_convention(name: str, prompt_source: PromptSource) -> None:
    messages = CONVERSATIONS[name]
    template = prompt_source.gguf_chat_template
    assert template is not None and "<|im_start|>" in template
    ours = render_prompt(prompt_source.template, messages=messages, gguf_chat_template=template,
                         bos_token=prompt_source.bos_token, eos_token=prompt_source.eos_token)
    theirs = hugging_face_render(template, messages, bos=prompt_source.bos_token, eos=prompt_source.eos_token)
    assert ours == theirs
    assert ours.endswith("<|im_start|>assistant\n")
    if messages[0]["role"] != "system":
        # The template's own default system line, which the model was tuned with.
        assert ours.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
