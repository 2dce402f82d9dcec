"""Refusing a prompt whose size in bytes alone cannot fit the context, before anything tokenizes it.

No token of a llama (SentencePiece) or gpt2 (byte-level BPE) vocabulary
covers more bytes of input than its own piece holds (SentencePiece writes a
space as the 3-byte `▁`, byte-level BPE writes bytes over 0x7f as 2-byte
characters, byte-fallback tokens are 6-byte `<0xAB>`), so a text of B bytes
is at least ceil(B / longest piece) tokens. When that alone exceeds the
context the prompt is refused at once: tokenizing a 47 MB prompt took 41 s
and 1.6 GB before the engine said "prompt is 25000053 tokens". Other
tokenizers normalize their input (WordPiece strips accents, Unigram collapses
spaces), so no bound holds for them and they are tokenized as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingot.daemon.errors import PromptTooLongError
from ingot.registry.gguf_info import GGUFInfo

__all__ = ["TokenBound"]

_BOUNDED_TOKENIZERS = frozenset({"llama", "gpt2"})


@dataclass(frozen=True)
class TokenBound:
    """The most input bytes one token of a model can stand for; None when nothing bounds it."""

    longest_token_bytes: int | None = None

    @classmethod
    def of(cls, info: GGUFInfo) -> TokenBound:
        longest = info.longest_token_bytes
        if info.tokenizer_model in _BOUNDED_TOKENIZERS and longest:
            return cls(longest)
        return cls(None)

    def fewest_tokens(self, text: str) -> int:
        """A lower bound on the tokens `text` becomes (0 when unknown)."""
        if not self.longest_token_bytes:
            return 0
        return -(-len(text.encode("utf-8", errors="surrogatepass")) // self.longest_token_bytes)

    def check(self, text: str, n_ctx: int) -> None:
        """Raise PromptTooLongError when `text` cannot fit `n_ctx` tokens, whatever the tokenizer makes of it."""
        fewest = self.fewest_tokens(text)
        if fewest > n_ctx:
            assert self.longest_token_bytes is not None
            raise PromptTooLongError(
                n_bytes=len(text.encode("utf-8", errors="surrogatepass")),
                fewest_tokens=fewest,
                longest_token_bytes=self.longest_token_bytes,
                n_ctx=n_ctx,
            )
