"""A prompt too long by its bytes alone is refused before anything tokenizes it; one that may fit is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingot.daemon.errors import PromptTooLongError
from ingot.daemon.prompt import PromptSource, chat_prompt
from ingot.daemon.prompt_size import TokenBound
from ingot.modelfile.template import ChatMessage
from ingot.registry.gguf_info import inspect_gguf
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

SOURCE = PromptSource(template=None, gguf_chat_template=None, system=None, messages=(), bos_token="", eos_token="")


def _never(text: str) -> int:
    raise AssertionError("tokenized a prompt that was hopeless by its bytes")


def _tokens(path: Path) -> list[str]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    field = reader.fields["tokenizer.ggml.tokens"]
    return [bytes(field.parts[i]).decode() for i in field.data]


def test_the_bound_comes_from_the_vocabulary(tmp_path: Path) -> None:
    info = inspect_gguf(write_synthetic_gguf(tmp_path / "m.gguf", SyntheticSpec()))
    assert info.tokenizer_model == "llama"
    assert info.longest_token_bytes == max(len(t.encode()) for t in _tokens(tmp_path / "m.gguf"))
    assert TokenBound.of(info).longest_token_bytes == info.longest_token_bytes


def test_a_hopeless_chat_is_refused_without_tokenizing() -> None:
    bound = TokenBound(longest_token_bytes=16)
    messages = [ChatMessage("user", "old turn"), ChatMessage("user", "x" * 20_000)]
    with pytest.raises(PromptTooLongError) as caught:
        chat_prompt(SOURCE, messages, count_tokens=_never, n_ctx=1000, num_predict=-1, bound=bound)
    assert caught.value.fewest_tokens > 1000
    assert "refused before tokenizing" in str(caught.value)


def test_a_long_history_that_can_be_dropped_is_still_fitted() -> None:
    # The old turn alone is hopeless, the latest fits: old turns are dropped as before, and the hopeless
    # candidates are never tokenized.
    bound = TokenBound(longest_token_bytes=16)
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return len(text) // 4

    messages = [ChatMessage("user", "y" * 40_000), ChatMessage("assistant", "ok"), ChatMessage("user", "hi")]
    prompt = chat_prompt(SOURCE, messages, count_tokens=count, n_ctx=1000, num_predict=10, bound=bound)
    assert "y" * 100 not in prompt.text and "hi" in prompt.text
    assert prompt.truncated_tokens > 0
    assert all(len(text) < 40_000 for text in counted[1:])  # only the full prompt, once, for the count


def test_unbounded_tokenizers_are_never_refused_by_size() -> None:
    TokenBound(None).check("z" * 10_000_000, 10)  # no bound: the tokenizer decides
