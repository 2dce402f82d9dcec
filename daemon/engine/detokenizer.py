"""Incremental detokenization: token pieces in, complete UTF-8 text out.

Each generated token contributes the bytes of its piece
(`llama_token_to_piece`); nothing is ever re-detokenized. A character split
across tokens (the byte-fallback tokens of an emoji, say) is held until its
last byte arrives, so a stream never carries half a character.

At the end of an answer an incomplete character is never turned into
U+FFFD: the engine first lets the answer run a few tokens past its limit to
finish the character (as llama-cpp-python's `create_completion` does), and
whatever is still incomplete after that is withheld (`flush` drops it).
Bytes that can never become a character (a stray continuation byte) do
become U+FFFD where they occur.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

__all__ = ["IncrementalDetokenizer", "MAX_CHARACTER_TAIL"]

MAX_CHARACTER_TAIL = 3
"""At most this many tokens past the limit are spent finishing a character (a UTF-8 character has ≤ 4 bytes)."""


class IncrementalDetokenizer:
    """Turns a token stream into text, one token at a time."""

    def __init__(self, piece: Callable[[int], bytes]) -> None:
        self._piece = piece
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        """The text this token completes (may be empty while a character is incomplete)."""
        return self._decoder.decode(self._piece(token))

    @property
    def pending(self) -> bool:
        """Whether bytes of an incomplete character are held."""
        return bool(self._decoder.getstate()[0])

    def flush(self) -> str:
        """The end of the stream: an incomplete character is withheld, never emitted as U+FFFD."""
        self._decoder.reset()
        return ""
