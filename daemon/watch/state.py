"""What the watcher remembers between passes and restarts, in `$INGOT_HOME/watch/<folder>-<hash>.json`.

One file per watched folder, rewritten atomically (temp file, fsync,
`os.replace`) after every change, and read by `ingot watch --status`. It
holds, per declared model (keyed by the Modelfile's path in the tree): the
fingerprint of its last good build's inputs and the digest built from them,
the last build's result, each push target's last pushed digest and retry
schedule, the last hot-swap, and the problems still standing. Models whose
Modelfile went away are listed as orphans until pruned. The digest cache of
weight files lives here too.

Records are frozen values; the watcher replaces them as things happen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from ingot.registry.home import IngotHome

from .errors import Problem
from .inputs import FileRecord

__all__ = [
    "STATE_DIR",
    "BuildRecord",
    "ModelRecord",
    "OrphanRecord",
    "PushRecord",
    "ReloadRecord",
    "StateFile",
    "WatchState",
    "WatcherInfo",
    "state_files",
    "utc_now",
]

_log = logging.getLogger("ingot.watch")

STATE_DIR = "watch"
STATE_VERSION = 1


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _problem(data: object) -> Problem | None:
    return Problem.from_json(data) if isinstance(data, dict) else None


def _problem_json(problem: Problem | None) -> dict[str, Any] | None:
    return problem.to_json() if problem is not None else None


@dataclass(frozen=True)
class BuildRecord:
    """The last build attempt of a model (an unchanged model keeps the record of its last real build)."""

    result: Literal["ok", "failed"]
    at: str
    digest: str | None = None
    problem: Problem | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "at": self.at, "digest": self.digest,
                "problem": _problem_json(self.problem), "seconds": round(self.seconds, 3)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildRecord:
        return cls(data["result"], data["at"], data.get("digest"), _problem(data.get("problem")),
                   float(data.get("seconds", 0.0)))


@dataclass(frozen=True)
class PushRecord:
    """One push target of one tag: what it holds, and when a failed push is tried again."""

    target: str  # the remote reference, host/namespace/name:tag
    result: Literal["ok", "failed"]
    digest: str | None = None  # what the registry holds, as far as we pushed it
    pushed_at: str | None = None
    attempted_digest: str | None = None  # what the last (failed) attempt tried to push
    attempts: int = 0  # consecutive failures
    last_attempt_at: str | None = None
    next_retry_at: float | None = None  # wall clock, seconds since the epoch
    problem: Problem | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target, "result": self.result, "digest": self.digest, "pushed_at": self.pushed_at,
            "attempted_digest": self.attempted_digest, "attempts": self.attempts,
            "last_attempt_at": self.last_attempt_at, "next_retry_at": self.next_retry_at,
            "problem": _problem_json(self.problem),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PushRecord:
        return cls(
            target=data["target"], result=data["result"], digest=data.get("digest"),
            pushed_at=data.get("pushed_at"), attempted_digest=data.get("attempted_digest"),
            attempts=int(data.get("attempts", 0)), last_attempt_at=data.get("last_attempt_at"),
            next_retry_at=data.get("next_retry_at"), problem=_problem(data.get("problem")),
        )


@dataclass(frozen=True)
class ReloadRecord:
    """The last time a running daemon was told about a new build of the model."""

    result: Literal["swapped", "not-loaded", "no-daemon", "failed"]
    at: str
    digest: str
    problem: Problem | None = None

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "at": self.at, "digest": self.digest, "problem": _problem_json(self.problem)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReloadRecord:
        return cls(data["result"], data["at"], data["digest"], _problem(data.get("problem")))


@dataclass(frozen=True)
class ModelRecord:
    """Everything known about one declared model."""

    key: str
    source: str
    references: tuple[str, ...] = ()
    fingerprint: str | None = None  # inputs of the last good build
    digest: str | None = None  # the last good build: tagged and served
    built_at: str | None = None
    build: BuildRecord | None = None
    problem: Problem | None = None  # why the current inputs cannot be built (None when they are)
    pushes: Mapping[str, PushRecord] = field(default_factory=dict)
    reload: ReloadRecord | None = None

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every standing error: the build's, failed pushes', a failed hot-swap's."""
        found = [self.problem] if self.problem is not None else []
        found += [p.problem for p in self.pushes.values() if p.result == "failed" and p.problem is not None]
        if self.reload is not None and self.reload.result == "failed" and self.reload.problem is not None:
            found.append(self.reload.problem)
        return tuple(found)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "source": self.source, "references": list(self.references),
            "fingerprint": self.fingerprint, "digest": self.digest, "built_at": self.built_at,
            "build": self.build.to_json() if self.build else None, "problem": _problem_json(self.problem),
            "pushes": {k: v.to_json() for k, v in sorted(self.pushes.items())},
            "reload": self.reload.to_json() if self.reload else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelRecord:
        return cls(
            key=data["key"], source=data["source"], references=tuple(data.get("references") or ()),
            fingerprint=data.get("fingerprint"), digest=data.get("digest"), built_at=data.get("built_at"),
            build=BuildRecord.from_json(data["build"]) if data.get("build") else None,
            problem=_problem(data.get("problem")),
            pushes={k: PushRecord.from_json(v) for k, v in (data.get("pushes") or {}).items()},
            reload=ReloadRecord.from_json(data["reload"]) if data.get("reload") else None,
        )


@dataclass(frozen=True)
class OrphanRecord:
    """A tag the watcher made whose declaration is gone (kept until pruned)."""

    reference: str
    digest: str | None
    source: str
    since: str

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "digest": self.digest, "source": self.source, "since": self.since}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrphanRecord:
        return cls(data["reference"], data.get("digest"), data["source"], data["since"])


@dataclass(frozen=True)
class WatcherInfo:
    """Which process watches (or last watched) the folder."""

    pid: int
    started_at: str
    updated_at: str
    in_daemon: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "started_at": self.started_at, "updated_at": self.updated_at,
                "in_daemon": self.in_daemon}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WatcherInfo:
        return cls(int(data["pid"]), data["started_at"], data["updated_at"], bool(data.get("in_daemon", False)))


@dataclass(frozen=True)
class WatchState:
    root: str
    models: Mapping[str, ModelRecord] = field(default_factory=dict)
    orphans: Mapping[str, OrphanRecord] = field(default_factory=dict)
    files: Mapping[str, FileRecord] = field(default_factory=dict)
    watcher: WatcherInfo | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "root": self.root,
            "watcher": self.watcher.to_json() if self.watcher else None,
            "models": {k: v.to_json() for k, v in sorted(self.models.items())},
            "orphans": {k: v.to_json() for k, v in sorted(self.orphans.items())},
            "files": {k: v.to_json() for k, v in sorted(self.files.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WatchState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r}, expected {STATE_VERSION}")
        return cls(
            root=str(data["root"]),
            models={k: ModelRecord.from_json(v) for k, v in (data.get("models") or {}).items()},
            orphans={k: OrphanRecord.from_json(v) for k, v in (data.get("orphans") or {}).items()},
            files={k: FileRecord.from_json(v) for k, v in (data.get("files") or {}).items()},
            watcher=WatcherInfo.from_json(data["watcher"]) if data.get("watcher") else None,
        )


def _slug(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-.") or "root"
    return f"{name[:40]}-{hashlib.sha256(str(root).encode()).hexdigest()[:12]}"


class StateFile:
    """The state file of one watched folder, and the lock that keeps a second watcher off it."""

    def __init__(self, home: IngotHome, root: Path) -> None:
        self.root = Path(root).absolute()
        folder = home.path(STATE_DIR)
        stem = _slug(self.root)
        self.path = folder / f"{stem}.json"
        self.lock_path = folder / f"{stem}.lock"

    def load(self) -> WatchState:
        """The saved state; an empty one when there is none (or it cannot be read, which is logged)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            state = WatchState.from_json(data)
        except FileNotFoundError:
            return WatchState(str(self.root))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log.warning("ignoring unreadable watch state %s (%s): every model will be checked again", self.path, exc)
            return WatchState(str(self.root))
        return state

    def save(self, state: WatchState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(state.to_json(), indent=2, sort_keys=False).encode() + b"\n"
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def state_files(home: IngotHome) -> list[Path]:
    """Every watched folder's state file under `home`."""
    folder = home.path(STATE_DIR)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
