"""Incremental detokenization: token pieces in, complete UTF-8 text out.

Each generated token contributes the bytes of its piece
(`llama_token_to_piece`); nothing is ever re-detokenized. A character split
across tokens (byte-fallback tokens of an emoji, say) is held until its last
byte arrives, so a stream never carries half a character. Invalid byte
sequences become U+FFFD rather than an exception.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

__all__ = ["IncrementalDetokenizer"]


class IncrementalDetokenizer:
    """Turns a token stream into text, one token at a time."""

    def __init__(self, piece: Callable[[int], bytes]) -> None:
        self._piece = piece
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        """The text this token completes (may be empty while a character is incomplete)."""
        return self._decoder.decode(self._piece(token))

    def flush(self) -> str:
        """Whatever is still held at the end of the stream (an incomplete character becomes U+FFFD)."""
        return self._decoder.decode(b"", final=True)
