"""GitOps for models: a watcher that turns a folder of Modelfiles into built, pushed and served models.

::

    from ingot.daemon.watch import WatchConfig, DaemonReloader, start_watcher

    watcher = start_watcher(WatchConfig(root=Path("models"), push=(parse_push_target("localhost:5000/team"),)),
                            home=home, reloader=DaemonReloader.from_env(home))
    report = watcher.wait_for(ReconcileReport)      # the first full pass
    watcher.stop()

`ingot watch DIR` runs one in the foreground; the daemon runs one when its
config.yaml has a `watch:` section (ingot.daemon.config). The convention
(which file declares which model) is in declarations.py and docs/gitops.md.

| module | job |
|---|---|
| `settings` | `WatchConfig`, push targets, retry backoff; the `watch:` YAML section |
| `yamlnodes` | YAML with file:line:col on every error |
| `declarations` | the tree -> one `Declaration` per Modelfile (ingot.yaml, names, clashes) |
| `inputs` | a model's build inputs, their fingerprint, the weight-file digest cache |
| `reconcile` | one pass: build, tag, push, orphans/prune |
| `watcher` | file events, debounce, resync, retries, hot-swap threads, events |
| `reload` | telling a running daemon to hot-swap (`DaemonReloader`) |
| `state`, `status` | the state file in $INGOT_HOME/watch/, and reading it back |
| `gitinfo` | commit and remote URL annotations |
"""

from __future__ import annotations

from .declarations import Declaration, Discovery, discover
from .errors import ConfigError, Location, Problem
from .events import ModelOutcome, PushOutcome, ReconcileReport, ReloadReport, WatchEvent
from .reload import DaemonReloader, Reloader, ReloadResult
from .settings import PushTarget, RetrySettings, WatchConfig, parse_push_target, parse_watch_section
from .state import StateFile, WatchState
from .status import FolderStatus, read_status
from .watcher import Watcher, start_watcher

__all__ = [
    "ConfigError",
    "DaemonReloader",
    "Declaration",
    "Discovery",
    "FolderStatus",
    "Location",
    "ModelOutcome",
    "Problem",
    "PushOutcome",
    "PushTarget",
    "ReconcileReport",
    "ReloadReport",
    "ReloadResult",
    "Reloader",
    "RetrySettings",
    "StateFile",
    "WatchConfig",
    "WatchEvent",
    "WatchState",
    "Watcher",
    "discover",
    "parse_push_target",
    "parse_watch_section",
    "read_status",
    "start_watcher",
]
