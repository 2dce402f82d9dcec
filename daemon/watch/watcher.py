"""The watcher: file events in, debounced reconcile passes out, hot-swaps handed to the daemon.

Threads:

- watchdog's observer (inotify, FSEvents, ...) reports changes anywhere in
  the tree; paths under hidden folders (`.git`...) and under `$INGOT_HOME`
  are ignored, and so are reads (opened/closed-without-writing events);
- one worker runs passes (reconcile.py), one at a time. It starts with a
  full pass, then waits for: file events followed by `debounce` seconds
  of quiet (an editor's save burst or a `git pull` becomes one pass; a
  never-ending stream still gets one every `_MAX_BATCH_FACTOR` x debounce),
  the periodic `resync`, a failed push falling due, or `request_pass()`;
- one short-lived thread per hot-swap (the daemon's Load waits for requests
  in flight on the old build to finish).

Every pass and every hot-swap is published as an event (events.py) to the
`on_event` callback and to `wait_for`, in `seq` order. An unexpected error
in a pass is logged and the watcher keeps going. One watcher per folder:
a second one (another `ingot watch`, or a daemon watching the same folder)
is refused with the first one's pid.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ingot.registry.home import IngotHome
from ingot.registry.errors import LockTimeoutError
from ingot.registry.locks import file_lock
from ingot.registry.store import Store

from .errors import ConfigError, Problem
from .events import ReloadReport, Trigger, WatchEvent
from .reconcile import Reconciler, ReloadRequest, StateKeeper
from .reload import Reloader, ReloadResult
from .settings import WatchConfig
from .state import ReloadRecord, StateFile, WatcherInfo, WatchState, utc_now

__all__ = ["Watcher", "start_watcher"]

_log = logging.getLogger("ingot.watch")

E = TypeVar("E", bound=WatchEvent)

# File events that mean content changed; "opened" and "closed_no_write" are reads (ours included).
_CHANGE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})
# A tree that never goes quiet still gets a pass this many debounce periods after its first event.
_MAX_BATCH_FACTOR = 10
_LOCK_WAIT_S = 0.5


class _TreeEvents(FileSystemEventHandler):
    """Forwards relevant change events of the tree to the watcher."""

    def __init__(self, root: Path, ignored: tuple[Path, ...], notify: Callable[[str], None]) -> None:
        self._root = root
        self._ignored = ignored
        self._notify = notify

    def _relevant(self, raw: str | bytes) -> str | None:
        path = Path(os.fsdecode(raw))
        try:
            relative = path.relative_to(self._root)
        except ValueError:
            return None
        if any(part.startswith(".") for part in relative.parts):
            return None
        if any(path == p or p in path.parents for p in self._ignored):
            return None
        return relative.as_posix() or "."

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGE_EVENTS:
            return
        if event.is_directory and event.event_type in ("modified", "closed"):
            return  # a folder's mtime moves with its entries: the entries' own events say what changed
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        for raw in paths:
            if raw:
                relevant = self._relevant(raw)
                if relevant is not None:
                    self._notify(relevant)


class Watcher:
    """Watches one folder; create it with `start_watcher`, end it with `stop()`."""

    def __init__(
        self,
        config: WatchConfig,
        *,
        home: IngotHome,
        store: Store | None = None,
        reloader: Reloader | None = None,
        on_event: Callable[[WatchEvent], None] | None = None,
        in_daemon: bool = False,
    ) -> None:
        if not config.root.is_dir():
            raise ConfigError(f"{config.root} is not a folder", location=config.origin,
                              hint="watch the folder that holds your Modelfiles")
        self.config = config
        self.home = home
        self.store = store or Store.open(home)
        self._reloader = reloader if config.reload else None
        self._on_event = on_event
        self._in_daemon = in_daemon
        self.state_file = StateFile(home, config.root)
        self._ignored = (home.root.absolute(),)

        self._cond = threading.Condition()
        self._events: list[WatchEvent] = []
        self._pending: set[str] = set()
        self._first_event: float | None = None
        self._last_event = 0.0
        self._pass_requested = False
        self._retry_at: float | None = None
        self._stopping = False
        self._stack = ExitStack()
        self._worker: threading.Thread | None = None
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._keeper: StateKeeper | None = None
        self._reconciler: Reconciler | None = None
        self._started_at = utc_now()
        self._seq = 0
        self._publish_lock = threading.Lock()

    # ---- life ---------------------------------------------------------------------------

    def start(self) -> None:
        """Take the folder's lock, start watching, and run the first full pass in the background."""
        self.state_file.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # A status probe holds the lock shared for an instant: wait that out, not a running watcher.
            self._stack.enter_context(file_lock(self.state_file.lock_path, timeout=_LOCK_WAIT_S))
        except LockTimeoutError:
            self._stack.close()
            other = self.state_file.load().watcher
            who = f" (pid {other.pid})" if other is not None else ""
            raise ConfigError(
                f"{self.config.root} is already watched by another ingot process{who}",
                location=self.config.origin,
                hint="stop that watcher first; `ingot watch --status` shows it",
            ) from None
        try:
            state = self.state_file.load()
            info = WatcherInfo(os.getpid(), self._started_at, utc_now(), self._in_daemon)
            self._keeper = StateKeeper(self.state_file, state)
            self._keeper.update(lambda s: _with_watcher(s, info))
            self._reconciler = Reconciler(self.config, store=self.store, keeper=self._keeper, exclude=self._ignored)
            observer = Observer()
            observer.schedule(_TreeEvents(self.config.root, self._ignored, self._file_changed),
                              str(self.config.root), recursive=True)
            observer.daemon = True
            observer.start()
            self._observer = observer
        except BaseException:
            self._stack.close()
            raise
        self._worker = threading.Thread(target=self._work, name="ingot-watch", daemon=True)
        self._worker.start()
        _log.info("watching %s (state in %s)", self.config.root, self.state_file.path)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching: the pass under way finishes (its state is saved), then the threads end."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._worker is not None:
            self._worker.join(timeout)
        self._stack.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    # ---- what happened ------------------------------------------------------------------

    @property
    def events(self) -> tuple[WatchEvent, ...]:
        with self._cond:
            return tuple(self._events)

    def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda _event: True,
        *,
        after: int = 0,
        timeout: float = 60.0,
    ) -> E:
        """The first event of type `kind` with seq > `after` that satisfies `predicate`; TimeoutError if none comes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._events:
                    if event.seq > after and isinstance(event, kind) and predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching {kind.__name__} within {timeout:g} s")
                self._cond.wait(left)

    @property
    def last_seq(self) -> int:
        with self._cond:
            return self._events[-1].seq if self._events else 0

    def request_pass(self) -> None:
        """Run a full pass soon, whatever the files say (the `requested` trigger)."""
        with self._cond:
            self._pass_requested = True
            self._cond.notify_all()

    def state(self) -> WatchState:
        """The current state (what `ingot watch --status` shows)."""
        assert self._keeper is not None, "start() the watcher first"
        return self._keeper.get()

    # ---- the worker ---------------------------------------------------------------------

    def _file_changed(self, relative: str) -> None:
        now = time.monotonic()
        with self._cond:
            if not self._pending:
                self._first_event = now
            self._pending.add(relative)
            self._last_event = now
            self._cond.notify_all()

    def _next_trigger(self, last_pass_end: float) -> tuple[Trigger, tuple[str, ...]] | None:
        config = self.config
        with self._cond:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                deadlines = [last_pass_end + config.resync]
                if self._pass_requested:
                    self._pass_requested = False
                    return "requested", self._take_pending()
                if self._pending:
                    assert self._first_event is not None
                    due = min(self._last_event + config.debounce,
                              self._first_event + max(config.debounce * _MAX_BATCH_FACTOR, config.debounce))
                    if now >= due:
                        return "events", self._take_pending()
                    deadlines.append(due)
                if now >= last_pass_end + config.resync:
                    return "resync", self._take_pending()
                if self._retry_at is not None:
                    if now >= self._retry_at:
                        return "retry", self._take_pending()
                    deadlines.append(self._retry_at)
                self._cond.wait(max(min(deadlines) - now, 0.0))

    def _take_pending(self) -> tuple[str, ...]:
        paths = tuple(sorted(self._pending))
        self._pending.clear()
        self._first_event = None
        return paths

    def _work(self) -> None:
        assert self._reconciler is not None
        next_trigger: tuple[Trigger, tuple[str, ...]] | None = ("startup", ())
        while next_trigger is not None:
            trigger, paths = next_trigger
            try:
                self._run_pass(trigger, paths)
            except Exception:  # noqa: BLE001 - a bug in one pass must not end the watcher; the next pass retries
                _log.exception("watch pass over %s failed", self.config.root)
            next_trigger = self._next_trigger(time.monotonic())

    def _run_pass(self, trigger: Trigger, paths: tuple[str, ...]) -> None:
        assert self._reconciler is not None and self._keeper is not None
        with self._cond:
            self._retry_at = None
        report, reloads = self._reconciler.run(trigger=trigger, changed=paths)
        info_now = utc_now()
        self._keeper.update(lambda s: _with_watcher(s, _touched(s.watcher, info_now)))
        retry_wall = self._reconciler.next_retry_at()
        with self._cond:
            if retry_wall is not None:
                self._retry_at = time.monotonic() + max(retry_wall - time.time(), 0.0)
        self._publish(report)
        for request in reloads:
            self._start_reload(request)

    def _publish(self, event: WatchEvent) -> None:
        """Number the event (seq follows publication order) and hand it to listeners, in that order."""
        with self._publish_lock:
            with self._cond:
                self._seq += 1
                event = dataclasses.replace(event, seq=self._seq)
                self._events.append(event)
                self._cond.notify_all()
            if self._on_event is not None:
                try:
                    self._on_event(event)
                except Exception:  # noqa: BLE001 - a broken listener must not stop the watcher
                    _log.exception("watch event listener failed")

    # ---- hot-swaps ----------------------------------------------------------------------

    def _start_reload(self, request: ReloadRequest) -> None:
        if self._reloader is None:
            return
        thread = threading.Thread(target=self._reload, args=(request,), name="ingot-watch-reload", daemon=True)
        thread.start()

    def _reload(self, request: ReloadRequest) -> None:
        assert self._reloader is not None and self._keeper is not None
        try:
            result = self._reloader.reload(request.references, request.digest)
        except Exception as exc:  # noqa: BLE001 - reported as the model's problem, never raised into the daemon
            _log.exception("hot-swap of %s failed", request.key)
            result = ReloadResult("failed", Problem("reload", f"hot-swap failed: {exc}"))
        record = ReloadRecord(result.result, utc_now(), request.digest, result.problem)
        if result.result == "swapped":
            _log.info("hot-swapped %s to %s", request.references[0].short, request.digest)
        elif result.problem is not None:
            _log.warning("%s", result.problem)

        def store(state: WatchState) -> WatchState:
            model = state.models.get(request.key)
            if model is None or model.digest != request.digest:
                return state  # superseded by a newer build
            return _replace_model(state, request.key, record)

        self._keeper.update(store)
        references = tuple(r.tagged for r in request.references)
        self._publish(ReloadReport(0, request.key, references, request.digest, result.result, result.problem))


def _with_watcher(state: WatchState, info: WatcherInfo) -> WatchState:
    return dataclasses.replace(state, watcher=info)


def _touched(info: WatcherInfo | None, now: str) -> WatcherInfo:
    assert info is not None
    return dataclasses.replace(info, updated_at=now)


def _replace_model(state: WatchState, key: str, reload: ReloadRecord) -> WatchState:
    models = dict(state.models)
    models[key] = dataclasses.replace(models[key], reload=reload)
    return dataclasses.replace(state, models=models)


def start_watcher(
    config: WatchConfig,
    *,
    home: IngotHome | None = None,
    store: Store | None = None,
    reloader: Reloader | None = None,
    on_event: Callable[[WatchEvent], None] | None = None,
    in_daemon: bool = False,
) -> Watcher:
    """Start watching `config.root`; returns at once (the first full pass runs in the background).

    `reloader` hot-swaps rebuilt models (`DaemonReloader.from_env(home)` for
    the daemon the CLI would reach; a daemon passes one for its own socket).
    Raises ConfigError when the folder is missing or already watched.
    """
    watcher = Watcher(
        config, home=home or IngotHome.from_env(), store=store, reloader=reloader, on_event=on_event,
        in_daemon=in_daemon,
    )
    watcher.start()
    return watcher
