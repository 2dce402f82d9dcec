"""Fitting a prompt into a slot's context window: an error, or an explicit, reported truncation.

A prompt is never cut silently. With ``truncatable_after == 0`` a prompt that
does not fit raises `ContextOverflowError` (saying by how much). Otherwise the
first ``truncatable_after`` tokens (the system prefix) are kept and tokens right
after them are dropped until the prompt fits with room for the reply; the
number dropped is reported in `Metrics.truncated_tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ContextOverflowError

__all__ = ["fit_prompt", "reply_room"]


def reply_room(n_ctx: int, num_predict: int) -> int:
    """Cells a truncated prompt leaves free for the reply.

    num_predict when it is set and modest; otherwise a quarter of the window,
    so a truncated conversation can still answer at some length.
    """
    if 0 < num_predict <= n_ctx // 2:
        return num_predict
    return max(n_ctx // 4, 1)


def fit_prompt(
    tokens: Sequence[int], *, n_ctx: int, truncatable_after: int, num_predict: int
) -> tuple[list[int], int]:
    """Returns (the tokens to evaluate, how many were dropped)."""
    if len(tokens) <= n_ctx:
        return list(tokens), 0
    if truncatable_after <= 0:
        raise ContextOverflowError(len(tokens), n_ctx)
    target = n_ctx - reply_room(n_ctx, num_predict)
    if truncatable_after >= target:
        # Even the protected prefix leaves no room for a reply.
        raise ContextOverflowError(len(tokens), n_ctx)
    dropped = len(tokens) - target
    return [*tokens[:truncatable_after], *tokens[truncatable_after + dropped :]], dropped
