"""`ingot watch --status`: what every watched folder's state file says, and whether its watcher runs.

Read-only: the state files are written atomically, so a status read never
sees half a pass. Whether a watcher is alive is told by its lock (held for
as long as the watcher runs), not by a pid that may have been reused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingot.registry.home import IngotHome
from ingot.registry.locks import try_file_lock

from .state import StateFile, WatchState, state_files

__all__ = ["FolderStatus", "read_status"]


@dataclass(frozen=True)
class FolderStatus:
    """One watched folder: its state and whether a watcher holds it right now."""

    state_path: Path
    state: WatchState
    running: bool

    def to_json(self) -> dict[str, Any]:
        data = self.state.to_json()
        data.pop("files", None)  # the digest cache is bookkeeping, not status
        models = data["models"]
        for key, record in self.state.models.items():
            models[key]["problems"] = [p.to_json() for p in record.problems]
        return {"state_file": str(self.state_path), "running": self.running, **data}


def _is_running(lock_path: Path) -> bool:
    if not lock_path.exists():
        return False
    # A brief shared probe; a watcher starting at that very moment waits for it (watcher.py).
    with try_file_lock(lock_path, shared=True) as free:
        return not free


def _load(path: Path) -> WatchState | None:
    try:
        return WatchState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_status(home: IngotHome, root: Path | None = None) -> list[FolderStatus]:
    """Every watched folder's status under `home` (only `root`'s when given)."""
    if root is not None:
        file = StateFile(home, root)
        paths = [file.path] if file.path.exists() else []
    else:
        paths = state_files(home)
    found = []
    for path in paths:
        state = _load(path)
        if state is None:
            continue
        found.append(FolderStatus(path, state, _is_running(path.with_suffix(".lock"))))
    return found
