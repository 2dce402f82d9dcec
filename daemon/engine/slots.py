"""Sequence slots and the choice of slot for a new request (prompt-prefix reuse).

A slot is one llama.cpp sequence id with its own window of the KV cache. A
slot remembers exactly which tokens its cache holds (`cached`), also after its
request finished, so a later prompt that starts the same way -- the next turn
of a chat -- only evaluates what is new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MIN_USEFUL_PREFIX", "Slot", "choose_slot", "common_prefix_len"]

MIN_USEFUL_PREFIX = 4


@dataclass(eq=False)
class Slot:
    seq: int
    cached: list[int] = field(default_factory=list)  # tokens whose K/V are in this sequence, in order
    request: Any = None  # the engine's active request, None when free
    last_used: int = 0  # a step counter value; least recently used slots give up their cache first

    @property
    def free(self) -> bool:
        return self.request is None


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def choose_slot(slots: Sequence[Slot], prompt: Sequence[int]) -> tuple[Slot, int] | None:
    """The free slot for `prompt`: the longest shared prefix first, then the least cache lost,
    then a slot next to busy ones, then LRU.

    Returns (slot, tokens reusable from its cache), or None when all are busy.
    A prefix shorter than `MIN_USEFUL_PREFIX` (a BOS and a word) does not count
    as a reason to overwrite another conversation's cache. At least one prompt
    token is always left to evaluate: sampling needs the logits of the last one.
    Busy neighbours matter because llama.cpp evaluates per-slot streams in runs
    of consecutive sequence ids, one pass over the weights per run: with
    sequences 0, 1 and 3 busy, a request in slot 2 joins one pass, one in slot 5
    adds another.
    """
    busy = {slot.seq for slot in slots if not slot.free}
    best: tuple[tuple[int, int, int, int], Slot, int] | None = None
    for slot in slots:
        if not slot.free:
            continue
        shared = min(common_prefix_len(slot.cached, prompt), len(prompt) - 1)
        useful = shared if shared >= MIN_USEFUL_PREFIX else 0
        neighbours = (slot.seq - 1 in busy) + (slot.seq + 1 in busy)
        key = (useful, -(len(slot.cached) - shared), neighbours, -slot.last_used)
        if best is None or key > best[0]:
            best = (key, slot, shared)
    return None if best is None else (best[1], best[2])
