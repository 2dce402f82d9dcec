"""What a watcher reports, as values: one `ReconcileReport` per pass, one `ReloadReport` per hot-swap.

Callers (the CLI, the daemon's log, tests) receive them through the
`on_event` callback of `start_watcher` or wait for them with
`Watcher.wait_for`; `seq` numbers every event of one watcher in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .errors import Problem

__all__ = [
    "ModelAction",
    "ModelOutcome",
    "PushOutcome",
    "ReconcileReport",
    "ReloadReport",
    "Trigger",
    "WatchEvent",
]

# startup: the first pass; events: files changed; resync: the periodic safety net;
# retry: a failed push is due again; requested: Watcher.request_pass().
Trigger = Literal["startup", "events", "resync", "retry", "requested"]
# built: new package tagged; unchanged: inputs as last built; retagged: tags put back
# without building; failed: not built (problem says why; the last good build stays).
ModelAction = Literal["built", "unchanged", "retagged", "failed"]


@dataclass(frozen=True)
class ModelOutcome:
    """What one pass did for one declared model."""

    key: str  # the Modelfile's path in the tree
    references: tuple[str, ...]
    action: ModelAction
    digest: str | None  # the build tagged and served after this pass (the last good one)
    previous_digest: str | None = None
    problem: Problem | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "references": list(self.references),
            "action": self.action,
            "digest": self.digest,
            "previous_digest": self.previous_digest,
            "problem": self.problem.to_json() if self.problem else None,
        }


@dataclass(frozen=True)
class PushOutcome:
    """One push attempt of one tag to one registry."""

    key: str
    target: str  # remote reference
    digest: str
    result: Literal["pushed", "failed"]
    attempt: int = 1  # 1 for the first try of this digest, then counts retries
    retry_in: float | None = None  # seconds until the next try, after a failure
    bytes_transferred: int = 0
    problem: Problem | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "target": self.target,
            "digest": self.digest,
            "result": self.result,
            "attempt": self.attempt,
            "retry_in": None if self.retry_in is None else round(self.retry_in, 3),
            "bytes_transferred": self.bytes_transferred,
            "problem": self.problem.to_json() if self.problem else None,
        }


@dataclass(frozen=True)
class ReconcileReport:
    """One pass over the tree."""

    seq: int
    trigger: Trigger
    at: str
    seconds: float
    models: tuple[ModelOutcome, ...]
    pushes: tuple[PushOutcome, ...] = ()
    orphaned: tuple[str, ...] = ()  # references whose declaration went away in this pass
    pruned: tuple[str, ...] = ()  # references untagged in this pass (prune: true)
    files_hashed: int = 0  # weight/adapter files actually read (not served from the digest cache)
    changed_paths: tuple[str, ...] = ()  # the file events that led to this pass

    @property
    def built(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.models if m.action == "built")

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.models if m.action == "failed")

    def outcome(self, key: str) -> ModelOutcome | None:
        return next((m for m in self.models if m.key == key), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "reconcile",
            "seq": self.seq,
            "trigger": self.trigger,
            "at": self.at,
            "seconds": round(self.seconds, 3),
            "models": [m.to_json() for m in self.models],
            "pushes": [p.to_json() for p in self.pushes],
            "orphaned": list(self.orphaned),
            "pruned": list(self.pruned),
            "files_hashed": self.files_hashed,
            "changed_paths": list(self.changed_paths),
        }


@dataclass(frozen=True)
class ReloadReport:
    """A running daemon was told about a new build (or there was none to tell)."""

    seq: int
    key: str
    references: tuple[str, ...]
    digest: str
    result: Literal["swapped", "not-loaded", "no-daemon", "failed"]
    problem: Problem | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "reload",
            "seq": self.seq,
            "key": self.key,
            "references": list(self.references),
            "digest": self.digest,
            "result": self.result,
            "problem": self.problem.to_json() if self.problem else None,
        }


WatchEvent = ReconcileReport | ReloadReport
