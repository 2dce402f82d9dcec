"""The scheduler: which models are loaded, who may use them, and when they go.

Rules (Ollama's, with its sharp edges filed off):

* A model loads on first use and stays for its `keep_alive` after its last
  request (per request, default 5m; 0 unloads right after; negative keeps it).
* One load at a time per model: the first request loads, the others wait on
  the LOADING state; a failed load fails them all with the same error.
* Each model admits at most `max_queue` requests at once (running or waiting);
  one more gets `QueueFullError` at once. Batch requests count against every
  request admitted, interactive ones only against interactive ones: a batch job
  never fills the queue for people. (Who gets a slot first is the runner's
  business: `ingot.daemon.engine.admission`; `queue_state()` shows both.)
* At most `max_loaded` models; when the cap or memory is short, the least
  recently used idle model is unloaded. A model with requests in flight is
  never evicted: a new model waits for one to go idle instead, unless it could
  never fit, which fails at once with how much it needs.
* A request whose load-time options differ from the loaded copy's (num_ctx,
  num_gpu, num_batch, ...) reloads it once the copy's requests have finished.
* A load that runs out of memory is retried down the planner's ladder (fewer
  GPU layers, then a smaller batch) before failing with a message listing
  what was tried.
* A runner that dies is forgotten: the next request starts a fresh one.

All state lives in `LoadedModel` records guarded by one condition variable;
runners are started and closed outside it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ingot.daemon.engine.errors import LoadError, QueueFullError, RunnerDiedError
from ingot.daemon.engine.types import LoadOptions, Priority, RunnerStats
from ingot.daemon.errors import (
    InsufficientMemoryError,
    ModelLoadFailedError,
    ModelNotLoadedError,
    RequestCancelledError,
    ShuttingDownError,
)
from ingot.daemon.keepalive import DEFAULT_KEEP_ALIVE, KeepAlive
from ingot.daemon.lifecycle import LoadedModel, LoadPlan, ModelSpec, ModelState, Runner, RunningSnapshot
from ingot.daemon.memory import FreeMemory, MemoryProbe
from ingot.daemon.planner import PlanError
from ingot.daemon.queue_state import ByPriority, QueueState

__all__ = ["Lease", "Scheduler", "SchedulerEvents", "SchedulerLimits", "describe_attempt"]

_log = logging.getLogger("ingot.daemon.scheduler")

# How often the reaper looks at idle runners that may have died on their own.
_IDLE_CHECK_SECONDS = 5.0

StartRunner = Callable[[LoadOptions], Runner]
PlanLoad = Callable[[ModelSpec], LoadPlan]


@dataclass(frozen=True)
class SchedulerLimits:
    max_loaded: int = 3
    max_queue: int = 512
    max_memory: int | None = None  # cap on the summed estimates of loaded models, bytes
    default_keep_alive: KeepAlive = DEFAULT_KEEP_ALIVE
    runner_close_timeout: float = 5.0


class SchedulerEvents:
    """What the scheduler reports as it happens (metrics hook in here); every method is a no-op by default.

    Called from the scheduler's threads, sometimes holding its lock: keep them quick and non-blocking.
    """

    def model_loaded(self, name: str, seconds: float) -> None: ...

    def model_load_failed(self, name: str) -> None: ...

    def model_evicted(self, name: str, reason: str) -> None:
        """An idle model unloaded to make room: ``reason`` is "memory" or "max_loaded"."""

    def runner_crashed(self, name: str) -> None: ...


def _waiting_snapshot(name: str, admitted: int, load_count: int) -> RunningSnapshot:
    return RunningSnapshot(
        name=name,
        digest="",
        state=ModelState.WAITING,
        ram_bytes=0,
        vram_bytes=0,
        gpu_layers=0,
        total_layers=0,
        expires_at=None,
        keep_forever=False,
        active_requests=admitted,
        context_length=0,
        parallel=0,
        pid=0,
        load_count=load_count,
        loaded_at=0.0,
        settings=None,
    )


def _runner_stats(runner: Runner) -> RunnerStats | None:
    try:
        return runner.stats()
    except Exception:  # noqa: BLE001 - a runner dying right now reports nothing; the reaper notices
        return None


def describe_attempt(options: LoadOptions) -> str:
    return f"{options.n_gpu_layers} GPU layers with batch {options.n_batch}"


class Lease:
    """One request's use of a loaded model; release it exactly once (it is a context manager)."""

    def __init__(
        self,
        scheduler: Scheduler,
        entry: LoadedModel,
        keep_alive: KeepAlive,
        *,
        queue_ns: int,
        load_ns: int,
        priority: Priority = Priority.INTERACTIVE,
    ):
        self._scheduler = scheduler
        self._entry = entry
        self.keep_alive = keep_alive
        self.priority = priority
        self.queue_ns = queue_ns  # time spent waiting for admission and the load
        self.load_ns = load_ns  # the part of it spent on a load (0 when the model was ready)
        self._canceller: Callable[[], None] | None = None
        self._cancel_requested = False
        self._released = False
        self._lock = threading.Lock()

    @property
    def runner(self) -> Runner:
        runner = self._entry.runner
        assert runner is not None, "a lease is only handed out for a loaded model"
        return runner

    @property
    def options(self) -> LoadOptions:
        options = self._entry.options
        assert options is not None
        return options

    @property
    def spec(self) -> ModelSpec:
        return self._entry.spec

    def set_canceller(self, cancel: Callable[[], None] | None) -> None:
        """What to call to stop this request's work early (a shutdown past its grace period)."""
        with self._lock:
            self._canceller = cancel
            run_now = cancel is not None and self._cancel_requested
        if run_now:
            assert cancel is not None
            cancel()

    def cancel(self) -> None:
        with self._lock:
            self._cancel_requested = True
            cancel = self._canceller
        if cancel is not None:
            cancel()

    def runner_died(self) -> None:
        """Report that the runner failed this request; the scheduler replaces it."""
        self._scheduler._runner_died(self._entry)

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._scheduler._release(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# Actions `_next_step` hands back to `acquire`, carried out without the lock.
@dataclass(frozen=True)
class _Ready:
    entry: LoadedModel


@dataclass(frozen=True)
class _Load:
    entry: LoadedModel


@dataclass(frozen=True)
class _Stop:
    entry: LoadedModel


class _NeedPlan:
    pass


class Scheduler:
    """Loads, shares, evicts and unloads models; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        start_runner: StartRunner,
        plan_load: PlanLoad,
        memory: MemoryProbe,
        limits: SchedulerLimits = SchedulerLimits(),
        events: SchedulerEvents | None = None,
    ) -> None:
        self._events = events or SchedulerEvents()
        self._start_runner = start_runner
        self._plan_load = plan_load
        self._memory = memory
        self.limits = limits
        self._cond = threading.Condition()
        self._entries: dict[str, LoadedModel] = {}
        self._admitted: dict[str, int] = {}
        self._admitted_batch: dict[str, int] = {}  # the batch part of `_admitted`
        self._load_counts: dict[str, int] = {}
        self._leases: set[Lease] = set()
        self._closing = False
        self._stopped = False
        self._reaper = threading.Thread(target=self._reap_forever, name="ingot-reaper", daemon=True)
        self._reaper.start()

    # ---- requests ------------------------------------------------------------

    def acquire(
        self,
        spec: ModelSpec,
        *,
        keep_alive: KeepAlive | None = None,
        is_cancelled: Callable[[], bool] = lambda: False,
        any_settings: bool = False,
        priority: Priority = Priority.INTERACTIVE,
    ) -> Lease:
        """Admit a request for `spec`, loading the model if needed; blocks until it is ready.

        `any_settings` accepts a copy loaded with other load-time options (for
        tokenizing, which they do not change), so such calls never reload.

        Raises QueueFullError, ShuttingDownError, RequestCancelledError (after
        `wake()` when `is_cancelled` turned true), InsufficientMemoryError or
        ModelLoadFailedError.
        """
        started = time.monotonic_ns()
        with self._cond:
            if self._closing:
                raise ShuttingDownError()
            admitted = self._admitted_by(spec.name)
            counted = admitted.total if priority is Priority.BATCH else admitted.interactive
            if counted >= self.limits.max_queue:
                raise QueueFullError(
                    f"model {spec.name} already has {counted} {'' if priority is Priority.BATCH else 'interactive '}"
                    f"requests queued or running (the limit is {self.limits.max_queue}); retry later or raise --max-queue"
                )
            self._admitted[spec.name] = admitted.total + 1
            if priority is Priority.BATCH:
                self._admitted_batch[spec.name] = admitted.batch + 1
        try:
            entry = self._obtain(spec, is_cancelled, any_settings)
        except BaseException:
            with self._cond:
                self._unadmit(spec.name, priority)
                self._cond.notify_all()
            raise
        # The part of this request's wait that a load (its own or one it joined) took.
        load_ns = 0
        if entry.load_finished_ns > started:
            load_ns = entry.load_finished_ns - max(started, entry.load_started_ns)
        lease = Lease(
            self,
            entry,
            keep_alive or self.limits.default_keep_alive,
            queue_ns=time.monotonic_ns() - started,
            load_ns=load_ns,
            priority=priority,
        )
        with self._cond:
            self._leases.add(lease)
        return lease

    def wake(self) -> None:
        """Wake waiting requests so they notice a cancellation."""
        with self._cond:
            self._cond.notify_all()

    def _obtain(
        self, spec: ModelSpec, is_cancelled: Callable[[], bool], any_settings: bool
    ) -> LoadedModel:
        plan: LoadPlan | None = None
        free: FreeMemory | None = None  # read without the lock: probing GPUs can take a while
        waited_on: list[LoadedModel] = []
        while True:
            with self._cond:
                step = self._next_step(spec, plan, free, is_cancelled, waited_on, any_settings)
            if isinstance(step, _Ready):
                return step.entry
            if isinstance(step, _NeedPlan):
                if plan is None:
                    plan = self._plan_or_evict(spec)
                    if plan is None:
                        continue  # an idle model was unloaded to make room: plan again
                free = self._memory.free()
            elif isinstance(step, _Stop):
                self._stop(step.entry)
                free = None
            elif isinstance(step, _Load):
                self._load(step.entry)
                return step.entry

    def _plan_or_evict(self, spec: ModelSpec) -> LoadPlan | None:
        """The plan for `spec`; when it does not fit, unload the least recently used idle model and return None."""
        try:
            return self._plan_load(spec)
        except PlanError:
            with self._cond:
                idle = self._idle_by_age()
                victim = idle[0] if idle else None
                if victim is not None:
                    victim.state = ModelState.UNLOADING
                    victim.stopping = True
            if victim is None:
                raise
            _log.info("unloading idle %s: %s does not fit beside it", victim.spec.name, spec.name)
            self._events.model_evicted(victim.spec.name, "memory")
            self._stop(victim)
            return None

    def _idle_by_age(self) -> list[LoadedModel]:
        return sorted(
            (e for e in self._entries.values() if e.state is ModelState.READY and e.active == 0 and not e.stopping),
            key=lambda e: e.last_used,
        )

    def _next_step(
        self,
        spec: ModelSpec,
        plan: LoadPlan | None,
        free: FreeMemory | None,
        is_cancelled: Callable[[], bool],
        waited_on: list[LoadedModel],
        any_settings: bool = False,
    ) -> _Ready | _Load | _Stop | _NeedPlan:
        """Decide what `acquire` does next; waits on the condition while nothing can be done."""
        while True:
            if self._closing:
                raise ShuttingDownError()
            if is_cancelled():
                raise RequestCancelledError()
            for loading in waited_on:
                if loading.state is ModelState.STOPPED and loading.error is not None:
                    raise loading.error
            entry = self._entries.get(spec.name)
            if entry is not None:
                same = entry.spec.reload_key == spec.reload_key or (
                    any_settings and entry.spec.digest == spec.digest and entry.spec.adapters == spec.adapters
                )
                if entry.state is ModelState.READY and same:
                    assert entry.runner is not None
                    if not entry.runner.alive():
                        _log.warning("runner of %s (pid %d) died while idle", spec.name, entry.runner.pid)
                        self._events.runner_crashed(spec.name)
                        entry.state = ModelState.UNLOADING
                        entry.stopping = True
                        return _Stop(entry)
                    entry.active += 1
                    entry.expires_at = None
                    entry.last_used = time.monotonic()
                    return _Ready(entry)
                if entry.state is ModelState.LOADING and same:
                    if entry not in waited_on:
                        waited_on.append(entry)
                elif entry.state is ModelState.READY:
                    _log.info("reloading %s: its load-time options or file changed", spec.name)
                    entry.state = ModelState.UNLOADING
                    if entry.active == 0 and not entry.stopping:
                        entry.stopping = True
                        return _Stop(entry)
                self._cond.wait()
                continue
            if plan is None or free is None:
                return _NeedPlan()
            step = self._make_room(spec, plan, free)
            if step is not None:
                return step
            self._cond.wait()
            return _NeedPlan()  # memory may have been freed meanwhile: read it again

    def _make_room(self, spec: ModelSpec, plan: LoadPlan, free: FreeMemory) -> _Load | _Stop | None:
        """Register a LOADING entry if the model fits, else pick an idle model to evict.

        None means "wait": models with requests in flight hold what is missing.
        """
        live = list(self._entries.values())
        ram_free, vram_free = self._free_memory(live, free)
        fits_memory = plan.ram_bytes <= ram_free and plan.vram_bytes <= vram_free
        if len(live) < self.limits.max_loaded and fits_memory:
            entry = LoadedModel(
                spec=spec, plan=plan, active=1, last_used=time.monotonic(), load_started_ns=time.monotonic_ns()
            )
            self._entries[spec.name] = entry
            return _Load(entry)
        if not fits_memory:
            # What would be free with every other model unloaded: if even that
            # is too little, fail now instead of evicting anything.
            ram_best = ram_free + sum(e.plan.ram_bytes for e in live)
            vram_best = vram_free + sum(e.plan.vram_bytes for e in live)
            if plan.ram_bytes > ram_best or plan.vram_bytes > vram_best or not live:
                raise InsufficientMemoryError(
                    spec.name,
                    needed_bytes=plan.ram_bytes + plan.vram_bytes,
                    available_bytes=ram_best + vram_best,
                )
        idle = self._idle_by_age()
        if idle:
            victim = idle[0]
            _log.info("unloading idle %s to make room for %s", victim.spec.name, spec.name)
            self._events.model_evicted(victim.spec.name, "max_loaded" if fits_memory else "memory")
            victim.state = ModelState.UNLOADING
            victim.stopping = True
            return _Stop(victim)
        return None

    def _free_memory(self, live: list[LoadedModel], free: FreeMemory) -> tuple[int, int]:
        loading = [e for e in live if e.state is ModelState.LOADING]
        # A loading runner has not allocated yet, and mmap'ed weights sit in the
        # page cache that the OS counts as available: count both as taken.
        ram = free.ram_bytes - sum(e.plan.ram_bytes for e in loading)
        ram -= sum(e.plan.mapped_bytes for e in live if e.state is not ModelState.LOADING)
        vram = free.vram_bytes - sum(e.plan.vram_bytes for e in loading)
        if self.limits.max_memory is not None:
            ram = min(ram, self.limits.max_memory - sum(e.plan.ram_bytes + e.plan.vram_bytes for e in live))
        return max(ram, 0), max(vram, 0)

    def _load(self, entry: LoadedModel) -> None:
        name = entry.spec.name
        tried: list[str] = []
        try:
            runner, options = self._start_with_fallbacks(entry, tried)
        except BaseException as exc:
            self._events.model_load_failed(name)
            with self._cond:
                entry.state = ModelState.STOPPED
                entry.error = exc
                if self._entries.get(name) is entry:
                    del self._entries[name]
                self._cond.notify_all()
            raise
        with self._cond:
            entry.runner = runner
            entry.options = options
            entry.loaded_at = time.time()
            entry.load_finished_ns = time.monotonic_ns()
            self._load_counts[name] = self._load_counts.get(name, 0) + 1
            closing = self._closing
            if entry.state is ModelState.LOADING:
                entry.state = ModelState.UNLOADING if closing else ModelState.READY
            self._cond.notify_all()
        _log.info("loaded %s (pid %d, %s)", name, runner.pid, describe_attempt(options))
        self._events.model_loaded(name, (entry.load_finished_ns - entry.load_started_ns) / 1e9)
        if closing:
            raise ShuttingDownError()

    def _start_with_fallbacks(self, entry: LoadedModel, tried: list[str]) -> tuple[Runner, LoadOptions]:
        name = entry.spec.name
        plan: LoadPlan | None = entry.plan
        while plan is not None:
            options = plan.options
            try:
                return self._start_runner(options), options
            except LoadError as exc:
                if not exc.out_of_memory:
                    raise ModelLoadFailedError(
                        f"cannot load model {name}: {exc}",
                        hint="the model file may be damaged or unsupported: pull or create it again",
                    ) from exc
                _log.warning("loading %s with %s ran out of memory", name, describe_attempt(options))
                tried.append(describe_attempt(options))
            except RunnerDiedError as exc:
                raise ModelLoadFailedError(
                    f"cannot load model {name}: the runner exited while loading it ({exc})",
                    hint="the model file may be damaged or unsupported: pull or create it again",
                ) from exc
            plan = plan.next_attempt() if plan.next_attempt is not None else None
        free = self._memory.free()
        raise InsufficientMemoryError(
            name,
            needed_bytes=entry.plan.ram_bytes + entry.plan.vram_bytes,
            available_bytes=free.ram_bytes + free.vram_bytes,
            tried=tuple(tried),
        )

    def _stop(self, entry: LoadedModel) -> None:
        """Close the runner of an entry marked UNLOADING+stopping; called without the lock."""
        runner = entry.runner
        if runner is not None:
            try:
                runner.close(timeout=self.limits.runner_close_timeout)
            except Exception:  # noqa: BLE001 - a runner that will not close politely is killed
                _log.warning("runner of %s did not close cleanly; killing it", entry.spec.name, exc_info=True)
                try:
                    runner.kill()
                except Exception:  # noqa: BLE001
                    _log.exception("could not kill the runner of %s", entry.spec.name)
        with self._cond:
            entry.state = ModelState.STOPPED
            if self._entries.get(entry.spec.name) is entry:
                del self._entries[entry.spec.name]
            self._cond.notify_all()
        _log.info("unloaded %s", entry.spec.name)

    def _unadmit(self, name: str, priority: Priority) -> None:
        counts = [self._admitted] + ([self._admitted_batch] if priority is Priority.BATCH else [])
        for admitted in counts:
            left = admitted.get(name, 0) - 1
            if left > 0:
                admitted[name] = left
            else:
                admitted.pop(name, None)

    def _admitted_by(self, name: str) -> ByPriority:
        total, batch = self._admitted.get(name, 0), self._admitted_batch.get(name, 0)
        return ByPriority(interactive=total - batch, batch=batch)

    def _release(self, lease: Lease) -> None:
        entry = lease._entry
        with self._cond:
            self._leases.discard(lease)
            self._unadmit(entry.spec.name, lease.priority)
            entry.active -= 1
            entry.last_used = time.monotonic()
            entry.keep_alive = lease.keep_alive
            if entry.active == 0 and entry.state is ModelState.READY:
                seconds = lease.keep_alive.seconds
                entry.expires_at = None if seconds is None else entry.last_used + seconds
            self._cond.notify_all()

    def _runner_died(self, entry: LoadedModel) -> None:
        with self._cond:
            if entry.state in (ModelState.READY, ModelState.LOADING):
                pid = entry.runner.pid if entry.runner is not None else 0
                _log.warning("runner of %s (pid %d) died; the next request starts a new one", entry.spec.name, pid)
                self._events.runner_crashed(entry.spec.name)
                entry.state = ModelState.UNLOADING
            self._cond.notify_all()

    # ---- expiry ----------------------------------------------------------------

    def _reap_forever(self) -> None:
        while True:
            with self._cond:
                due = self._due_for_stop()
                while not due:
                    if self._stopped:
                        return
                    self._cond.wait(timeout=self._next_wake())
                    due = self._due_for_stop()
            for entry in due:
                self._stop(entry)

    def _due_for_stop(self) -> list[LoadedModel]:
        now = time.monotonic()
        due = []
        for entry in self._entries.values():
            if entry.active or entry.stopping:
                continue
            expired = entry.state is ModelState.READY and entry.expires_at is not None and entry.expires_at <= now
            died = entry.state is ModelState.READY and entry.runner is not None and not entry.runner.alive()
            if died:
                self._events.runner_crashed(entry.spec.name)
            if expired or died or entry.state is ModelState.UNLOADING:
                entry.state = ModelState.UNLOADING
                entry.stopping = True
                due.append(entry)
        return due

    def _next_wake(self) -> float:
        now = time.monotonic()
        wake = _IDLE_CHECK_SECONDS
        for entry in self._entries.values():
            if entry.expires_at is not None and not entry.active:
                wake = min(wake, max(entry.expires_at - now, 0.0))
        return wake

    # ---- control -------------------------------------------------------------------

    def unload(self, name: str) -> None:
        """Unload `name` now if idle, else once its requests finish. Raises ModelNotLoadedError."""
        with self._cond:
            entry = self._entries.get(name)
            if entry is None or entry.state is ModelState.STOPPED:
                raise ModelNotLoadedError(f"model {name} is not loaded", hint="'ingot ps' lists the loaded models")
            if entry.state is not ModelState.LOADING:
                entry.state = ModelState.UNLOADING
            stop_now = entry.active == 0 and not entry.stopping and entry.state is ModelState.UNLOADING
            if stop_now:
                entry.stopping = True
            self._cond.notify_all()
        if stop_now:
            self._stop(entry)

    def running(self) -> list[RunningSnapshot]:
        """Snapshots of every loaded (or loading, or unloading) model, by name."""
        now_mono, now_wall = time.monotonic(), time.time()
        with self._cond:
            snapshots = []
            runners: list[Runner | None] = []
            for name, entry in sorted(self._entries.items()):
                options = entry.options or entry.plan.options
                keep_forever = entry.keep_alive is not None and entry.keep_alive.forever
                expires = None if entry.expires_at is None else now_wall + (entry.expires_at - now_mono)
                snapshots.append(
                    RunningSnapshot(
                        name=name,
                        digest=entry.spec.digest,
                        state=entry.state,
                        ram_bytes=entry.plan.ram_bytes,
                        vram_bytes=entry.plan.vram_bytes,
                        gpu_layers=min(options.n_gpu_layers, entry.plan.total_layers + 1)
                        if options.n_gpu_layers >= 0
                        else entry.plan.total_layers + 1,
                        total_layers=entry.plan.total_layers,
                        expires_at=expires,
                        keep_forever=keep_forever and entry.active == 0,
                        active_requests=self._admitted.get(name, 0),
                        context_length=options.n_ctx,
                        parallel=options.n_parallel,
                        pid=entry.runner.pid if entry.runner is not None else 0,
                        load_count=self._load_counts.get(name, 0),
                        loaded_at=entry.loaded_at,
                        settings=entry.spec.settings,
                        device_bytes=entry.plan.device_bytes,
                    )
                )
                runners.append(entry.runner if entry.state is ModelState.READY else None)
            for name in sorted(set(self._admitted) - set(self._entries)):
                snapshots.append(_waiting_snapshot(name, self._admitted[name], self._load_counts.get(name, 0)))
                runners.append(None)
            admitted = [self._admitted_by(snapshot.name) for snapshot in snapshots]
        # Asking runners takes a round trip each: outside the lock.
        results = []
        for snapshot, runner, counts in zip(snapshots, runners, admitted):
            stats = _runner_stats(runner) if runner is not None else None
            results.append(
                dataclasses.replace(
                    snapshot,
                    slots_busy=stats.active_requests if stats is not None else 0,
                    queue=QueueState.of(snapshot.name, counts, stats),
                )
            )
        return results

    def queue_state(self) -> list[QueueState]:
        """Each model's requests by priority (admitted here; waiting and running in its runner), by name."""
        return [snapshot.queue for snapshot in self.running() if snapshot.queue is not None]

    def begin_shutdown(self) -> None:
        """Refuse new requests from now on; those waiting for a load get ShuttingDownError."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for admitted requests to finish; True if they all did."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._admitted:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=left)
            return True

    def cancel_all(self) -> int:
        """Cancel every request in flight; returns how many were cancelled."""
        with self._cond:
            leases = list(self._leases)
        for lease in leases:
            lease.cancel()
        return len(leases)

    def close(self) -> None:
        """Stop every runner and the reaper. Call after draining."""
        with self._cond:
            self._closing = True
            self._stopped = True
            entries = []
            for entry in self._entries.values():
                if not entry.stopping:
                    entry.state = ModelState.UNLOADING
                    entry.stopping = True
                    entries.append(entry)
            self._cond.notify_all()
        for entry in entries:
            self._stop(entry)
        self._reaper.join(timeout=self.limits.runner_close_timeout + 1)
