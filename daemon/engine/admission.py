"""Who gets the next free slot: interactive requests before batch ones, and batch work never starves.

The rules (the engine applies them at the start of every step, see `Engine._admit_locked`):

1. Free slots go to waiting requests in this order: *aged* batch requests,
   then interactive requests, then the other batch requests; each class first
   come, first served.
2. An interactive request that finds every slot busy while some slot runs a
   batch sequence *preempts* it: the batch sequence is paused -- it keeps its
   sampler, detokenizer and stop-string state, and goes back to the front of
   the batch queue with the tokens it has so far -- and the interactive request
   takes its slot in the same step. So an interactive request waits at most
   the one decode step that was running when it arrived. The paused sequence
   later resumes by evaluating its prompt plus what it generated (recompute, as
   vLLM's preemption does), reusing whatever of its slot's cache survived; its
   output is the same as without the pause. The victim is the batch sequence
   with the fewest cached tokens: the least work to redo.
3. Aging: each time an interactive request takes a slot while a batch request
   waits -- also by preempting it -- that batch request is *passed over* once.
   After `patience` passes it is aged: it goes before interactive requests for
   the next free slot, and once admitted it is never preempted. A batch request
   therefore waits for at most `patience` interactive requests, however busy
   the daemon is. (An aged request does not preempt anyone: it waits for a
   slot to free, and interactive requests wait behind it.)

Reserving a slot for interactive work was the alternative; it was not taken
because it costs batch throughput all the time (one slot of n idle) and still
makes the second simultaneous interactive request wait for a whole reply.
Preemption costs only when an interactive request actually arrives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Protocol

from .types import Priority

__all__ = ["DEFAULT_PATIENCE", "Queued", "WaitQueue"]

# Interactive requests that may pass a waiting batch request before it goes next.
DEFAULT_PATIENCE = 8


class Queued(Protocol):
    """What the queue needs of a request (the engine's `_Request`)."""

    priority: Priority
    cancelled: bool
    passed_over: int


class WaitQueue:
    """Requests waiting for a slot, by priority. Not thread safe: the engine holds its lock."""

    def __init__(self, *, patience: int = DEFAULT_PATIENCE) -> None:
        if patience < 0:
            raise ValueError(f"patience must be 0 or more, got {patience}")
        self.patience = patience
        self._interactive: deque[Queued] = deque()
        self._batch: deque[Queued] = deque()

    def __len__(self) -> int:
        return len(self._interactive) + len(self._batch)

    def __bool__(self) -> bool:
        return bool(self._interactive or self._batch)

    def __iter__(self) -> Iterator[Queued]:
        yield from self._interactive
        yield from self._batch

    def append(self, request: Queued) -> None:
        (self._interactive if request.priority is Priority.INTERACTIVE else self._batch).append(request)

    def put_back(self, request: Queued) -> None:
        """A preempted batch request: first in line among batch work, and passed over once more."""
        request.passed_over += 1
        self._batch.appendleft(request)

    def aged(self, request: Queued) -> bool:
        return request.priority is Priority.BATCH and request.passed_over >= self.patience

    def counts(self) -> tuple[int, int]:
        """(interactive, batch) waiting."""
        return len(self._interactive), len(self._batch)

    def count_of(self, priority: Priority) -> int:
        return len(self._interactive) if priority is Priority.INTERACTIVE else len(self._batch)

    def drop_cancelled(self) -> list[Queued]:
        dropped = [r for r in self if r.cancelled]
        if dropped:
            self._interactive = deque(r for r in self._interactive if not r.cancelled)
            self._batch = deque(r for r in self._batch if not r.cancelled)
        return dropped

    def in_order(self) -> list[Queued]:
        """Everyone waiting, in the order free slots go to them (rule 1)."""
        aged = [r for r in self._batch if self.aged(r)]
        fresh = [r for r in self._batch if not self.aged(r)]
        return [*aged, *self._interactive, *fresh]

    def remove(self, request: Queued) -> None:
        """`request` got a slot."""
        (self._interactive if request.priority is Priority.INTERACTIVE else self._batch).remove(request)

    def pass_over(self, times: int) -> None:
        """`times` interactive requests took slots while the batch requests still here waited (rule 3)."""
        if times:
            for waiting in self._batch:
                waiting.passed_over += times

    def clear(self) -> list[Queued]:
        everyone = list(self)
        self._interactive.clear()
        self._batch.clear()
        return everyone
