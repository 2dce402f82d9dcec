"""The queue of one model by priority, as the scheduler and its runner see it right now.

`Scheduler.queue_state()` returns one `QueueState` per model with requests
or a runner; ListRunning carries the same numbers (`RunningModel.queue`), and
/metrics exports them. Tests read priorities through this, never through
timing: it is the state the admission rules (`ingot.daemon.engine.admission`)
act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingot.daemon.engine.types import Priority, RunnerStats

__all__ = ["ByPriority", "QueueState"]


@dataclass(frozen=True)
class ByPriority:
    interactive: int = 0
    batch: int = 0

    def of(self, priority: Priority) -> int:
        return self.interactive if priority is Priority.INTERACTIVE else self.batch

    @property
    def total(self) -> int:
        return self.interactive + self.batch


@dataclass(frozen=True)
class QueueState:
    model: str
    admitted: ByPriority  # leases the scheduler handed out: loading, waiting for a slot, or in one
    waiting: ByPriority  # in the runner, waiting for a slot
    running: ByPriority  # in the runner's slots
    preemptions: int = 0  # batch sequences paused for interactive ones since the runner started

    @classmethod
    def of(cls, model: str, admitted: ByPriority, stats: RunnerStats | None) -> QueueState:
        """Combine the scheduler's counts with what the runner reported (None: no runner yet, or it died)."""
        if stats is None:
            return cls(model, admitted, ByPriority(), ByPriority())
        return cls(
            model,
            admitted,
            waiting=ByPriority(stats.waiting_interactive, stats.waiting_batch),
            running=ByPriority(stats.running_interactive, stats.running_batch),
            preemptions=stats.preemptions,
        )
