"""One pass of the watcher: make the store and the registries match what the tree declares.

For every declared model, in dependency order (a model built FROM another
declared model comes after it):

1. read its inputs (inputs.py); a Modelfile that does not parse or names a
   missing file becomes the model's problem, and its last good build stays
   tagged;
2. unchanged fingerprint and tags in place: nothing to do; unchanged
   fingerprint but tags gone or moved: tag the last good build again;
   otherwise build the package (with the git commit and remote as
   annotations when the folder is a checkout) and tag every declared tag;
3. push every tag to every target that does not hold the current build yet;
   a failed push is retried with exponential backoff on later passes.

Then tags whose declaration went away are reported as orphans, or untagged
when `prune: true` (only while they still point at what the watcher built).
The state file is written once per pass. Builds whose models a daemon may
be serving are returned as `ReloadRequest`s for the watcher to hand on.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ingot.modelfile import FormatError, ModelfileError, ParameterError
from ingot.modelfile.syntax import parse_document
from ingot.registry.errors import IngotError, ReferenceError
from ingot.registry.gguf_info import GGUFError
from ingot.registry.oci import ClientOptions, RetryPolicy, push
from ingot.registry.package import build_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store

from .declarations import BrokenDeclaration, Declaration, Discovery, discover
from .errors import Location, Problem
from .events import ModelOutcome, PushOutcome, ReconcileReport, Trigger
from .gitinfo import git_annotations
from .inputs import DigestCache, InputsError, ModelInputs, read_inputs
from .settings import PushTarget, WatchConfig
from .state import BuildRecord, ModelRecord, OrphanRecord, PushRecord, StateFile, WatchState, utc_now

__all__ = ["Reconciler", "ReloadRequest", "StateKeeper"]

_log = logging.getLogger("ingot.watch")

# Failures that are the inputs' fault: reported at their Modelfile line, nothing logged.
_USER_ERRORS = (IngotError, ModelfileError, ParameterError, FormatError, OSError, ValueError)


@dataclass(frozen=True)
class ReloadRequest:
    key: str
    references: tuple[Reference, ...]
    digest: str


class StateKeeper:
    """The current `WatchState` of one folder, changed under a lock and saved after every change."""

    def __init__(self, file: StateFile, state: WatchState) -> None:
        self.file = file
        self._state = state
        self._lock = threading.Lock()

    def get(self) -> WatchState:
        with self._lock:
            return self._state

    def update(self, change: Callable[[WatchState], WatchState]) -> WatchState:
        with self._lock:
            self._state = change(self._state)
            self.file.save(self._state)
            return self._state


def _build_problem(exc: BaseException, inputs: ModelInputs) -> Problem:
    """A build failure, placed on the Modelfile line that caused it where that can be told."""
    if isinstance(exc, ModelfileError):
        return Problem("build", exc.message, exc.hint, exc.filename, exc.line, exc.column)
    location = inputs.from_location
    if isinstance(exc, GGUFError):
        for path, adapter_location in zip(inputs.modelfile.adapters, inputs.adapter_locations, strict=False):
            if Path(exc.path).name == Path(path).name:
                location = adapter_location
    if isinstance(exc, IngotError):
        return Problem.at("build", location, exc.message, exc.hint)
    if isinstance(exc, OSError):
        return Problem.at("build", location, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    return Problem.at("build", location, str(exc) or type(exc).__name__)


def _declared_base(declaration: Declaration) -> tuple[str, Location] | None:
    """The model FROM names (tagged) and where, when it names a model rather than a file; else None."""
    try:
        document = parse_document(declaration.source.read_bytes(), filename=str(declaration.source))
    except (OSError, ModelfileError):
        return None
    froms = [c for c in document.commands if c.instruction == "from" and c.value is not None]
    if not froms:
        return None
    value = froms[-1].value
    assert value is not None
    raw = value.text.strip()
    path = Path(raw).expanduser()
    if (path if path.is_absolute() else declaration.source.parent / path).exists():
        return None
    try:
        tagged = Reference.parse(raw).tagged
    except ReferenceError:
        return None
    return tagged, Location(str(declaration.source), value.line, value.column)


def _build_order(declarations: Iterable[Declaration]) -> tuple[list[Declaration], dict[str, Problem]]:
    """Declarations with every model before those built FROM it; those in a FROM cycle get a problem.

    A model FROM itself is left to `read_inputs`' caller, which says so at the FROM line.
    """
    pending = list(declarations)
    owner = {ref.tagged: d.key for d in pending for ref in d.references}
    bases = {d.key: _declared_base(d) for d in pending}
    needs: dict[str, str | None] = {}
    for d in pending:
        base = bases[d.key]
        needed = owner.get(base[0]) if base is not None else None
        needs[d.key] = needed if needed != d.key else None
    ordered: list[Declaration] = []
    placed: set[str] = set()
    while pending:
        ready = [d for d in pending if needs[d.key] is None or needs[d.key] in placed]
        if not ready:
            break
        for d in ready:
            ordered.append(d)
            placed.add(d.key)
        pending = [d for d in pending if d.key not in placed]
    cycle = {}
    for d in pending:
        base = bases[d.key]
        cycle[d.key] = Problem.at(
            "inputs", base[1] if base is not None else Location.start_of(d.source),
            f"FROM makes a cycle: {d.key} builds on {needs[d.key]}, which builds on it in turn",
            "build one of them FROM a GGUF file",
        )
    return ordered, cycle


class Reconciler:
    """Runs passes for one watched folder; used by one thread at a time (the watcher's worker)."""

    def __init__(
        self,
        config: WatchConfig,
        *,
        store: Store,
        keeper: StateKeeper,
        exclude: Iterable[Path] = (),
    ) -> None:
        self.config = config
        self.store = store
        self.keeper = keeper
        self._exclude = tuple(exclude)
        self._cache = DigestCache(keeper.get().files)
        self._client_retry = RetryPolicy(
            attempts=config.retry.attempts,
            base_delay=min(0.5, config.retry.initial),
            max_delay=min(5.0, config.retry.max),
        )

    # ---- one pass ----------------------------------------------------------------

    def run(
        self, *, trigger: Trigger, changed: Iterable[str] = ()
    ) -> tuple[ReconcileReport, list[ReloadRequest]]:
        """One pass; the report's `seq` is 0 until the watcher publishes it."""
        started = time.monotonic()
        at = utc_now()
        self._cache.begin_pass()
        discovery = discover(self.config, exclude=self._exclude)
        before = self.keeper.get()
        models: dict[str, ModelRecord] = {}
        outcomes: list[ModelOutcome] = []
        reloads: list[ReloadRequest] = []

        ordered, cycles = _build_order(discovery.declarations)
        for declaration in ordered:
            record, outcome = self._reconcile_model(declaration, before.models.get(declaration.key), at)
            models[declaration.key] = record
            outcomes.append(outcome)
            if outcome.action == "built" and record.digest is not None:
                reloads.append(ReloadRequest(declaration.key, declaration.references, record.digest))
        broken = list(discovery.broken)
        broken += [
            BrokenDeclaration(d.key, d.source, cycles[d.key], d.references)
            for d in discovery.declarations if d.key in cycles
        ]
        for item in broken:
            record, outcome = self._broken_model(item, before.models.get(item.key), at)
            models[item.key] = record
            outcomes.append(outcome)

        orphans, newly_orphaned, pruned = self._orphans(discovery, before, models, at)
        pushes: list[PushOutcome] = []
        for declaration in ordered:
            record = models[declaration.key]
            updated, attempts = self._push_model(declaration, record)
            models[declaration.key] = updated
            pushes.extend(attempts)

        files = self._cache.records()
        # A hot-swap thread may have stored a reload result while this pass ran: keep it.
        self.keeper.update(
            lambda state: dataclasses.replace(
                state,
                models={k: _keep_reload(v, state.models.get(k)) for k, v in sorted(models.items())},
                orphans=orphans,
                files=files,
            )
        )
        report = ReconcileReport(
            seq=0,
            trigger=trigger,
            at=at,
            seconds=time.monotonic() - started,
            models=tuple(sorted(outcomes, key=lambda o: o.key)),
            pushes=tuple(pushes),
            orphaned=newly_orphaned,
            pruned=pruned,
            files_hashed=self._cache.hashed,
            changed_paths=tuple(sorted(changed)),
        )
        return report, reloads

    # ---- one model -----------------------------------------------------------------

    def _failed(
        self, record: ModelRecord, problem: Problem, at: str, references: tuple[str, ...]
    ) -> tuple[ModelRecord, ModelOutcome]:
        same = record.problem == problem and record.build is not None and record.build.result == "failed"
        if not same:
            kept = f"; still serving {record.digest}" if record.digest else ""
            _log.warning("%s not built%s: %s", record.key, kept, problem)
        build = record.build if same else BuildRecord("failed", at, None, problem)
        # A model never built yet shows its declared names; one that was keeps the names it serves
        # (so a rename that fails to build does not orphan them).
        names = record.references if record.digest is not None else references
        record = dataclasses.replace(record, problem=problem, build=build, references=names)
        return record, ModelOutcome(record.key, references, "failed", record.digest, record.digest, problem)

    def _broken_model(
        self, item: BrokenDeclaration, previous: ModelRecord | None, at: str
    ) -> tuple[ModelRecord, ModelOutcome]:
        record = previous or ModelRecord(item.key, str(item.source))
        declared = tuple(r.tagged for r in item.references) or record.references
        return self._failed(record, item.problem, at, declared)

    def _reconcile_model(
        self, declaration: Declaration, previous: ModelRecord | None, at: str
    ) -> tuple[ModelRecord, ModelOutcome]:
        references = tuple(r.tagged for r in declaration.references)
        record = previous or ModelRecord(declaration.key, str(declaration.source))
        record = dataclasses.replace(record, source=str(declaration.source))
        try:
            inputs = read_inputs(declaration, self.store, self._cache)
        except InputsError as exc:
            return self._failed(record, exc.problem, at, references)
        if inputs.base_reference is not None and inputs.base_reference.tagged in references:
            problem = Problem.at("inputs", inputs.from_location,
                                 f"FROM names {inputs.base_reference.short}, the model this file declares",
                                 "build FROM a GGUF file or another model")
            return self._failed(record, problem, at, references)

        good = record.digest
        if record.fingerprint == inputs.fingerprint and good is not None:
            moved = [r for r in declaration.references if self._tagged_digest(r) != good]
            if not moved:
                record = dataclasses.replace(record, references=references, problem=None)
                return record, ModelOutcome(record.key, references, "unchanged", good, good)
            if self._retag(moved, good):
                record = dataclasses.replace(record, references=references, problem=None)
                return record, ModelOutcome(record.key, references, "retagged", record.digest, record.digest)

        started = time.monotonic()
        annotations = {**git_annotations(declaration.source.parent), **declaration.labels}
        try:
            descriptor = build_package(
                self.store,
                inputs.modelfile,
                declaration.source.parent,
                ref=declaration.references[0],
                annotations=annotations,
                link=not self.config.copy,
            )
            for reference in declaration.references[1:]:
                self.store.tag(reference, descriptor)
        except _USER_ERRORS as exc:
            return self._failed(record, _build_problem(exc, inputs), at, references)
        except Exception as exc:  # noqa: BLE001 - a bug in one build must not stop the others
            _log.exception("building %s failed unexpectedly", declaration.key)
            return self._failed(record, _build_problem(exc, inputs), at, references)
        _log.info("built %s %s from %s", declaration.references[0].short, descriptor.digest, declaration.key)
        previous_digest = record.digest
        record = dataclasses.replace(
            record,
            references=references,
            fingerprint=inputs.fingerprint,
            digest=descriptor.digest,
            built_at=at,
            build=BuildRecord("ok", at, descriptor.digest, None, time.monotonic() - started),
            problem=None,
        )
        return record, ModelOutcome(record.key, references, "built", descriptor.digest, previous_digest)

    def _tagged_digest(self, reference: Reference) -> str | None:
        descriptor = self.store.resolve(reference)
        return descriptor.digest if descriptor is not None else None

    def _retag(self, references: list[Reference], digest: str) -> bool:
        """Point `references` at the manifest `digest` if it is still stored; False when it is gone."""
        descriptor = self.store.resolve(references[0].with_digest(digest))
        if descriptor is None:
            return False
        for reference in references:
            self.store.tag(reference, descriptor)
        return True

    # ---- orphans ----------------------------------------------------------------------

    def _orphans(
        self, discovery: Discovery, before: WatchState, models: Mapping[str, ModelRecord], at: str
    ) -> tuple[dict[str, OrphanRecord], tuple[str, ...], tuple[str, ...]]:
        declared = {ref for record in models.values() for ref in record.references}
        orphans = {ref: o for ref, o in before.orphans.items() if ref not in declared}
        newly: list[str] = []
        for key, old in before.models.items():
            kept = models.get(key)
            for ref in old.references:
                if ref in declared or ref in orphans or (kept is not None and ref in kept.references):
                    continue
                orphans[ref] = OrphanRecord(ref, old.digest, old.source, at)
                newly.append(ref)
        pruned: list[str] = []
        if self.config.prune:
            for ref, orphan in list(orphans.items()):
                reference = Reference.parse(ref)
                current = self._tagged_digest(reference)
                if current is not None and current == orphan.digest:
                    self.store.untag(reference)
                    _log.info("pruned %s (its Modelfile %s is gone)", reference.short, orphan.source)
                    pruned.append(ref)
                elif current is not None:
                    _log.info("not pruning %s: it now points at %s, not the watcher's build", reference.short, current)
                del orphans[ref]
        return dict(sorted(orphans.items())), tuple(sorted(newly)), tuple(sorted(pruned))

    # ---- pushes ----------------------------------------------------------------------

    def _push_model(self, declaration: Declaration, record: ModelRecord) -> tuple[ModelRecord, list[PushOutcome]]:
        if record.digest is None:
            return record, []
        wanted: dict[str, tuple[Reference, PushTarget]] = {}
        for reference in declaration.references:
            for target in declaration.push:
                remote = target.remote(reference)
                wanted[remote.tagged] = (reference, target)
        pushes = {k: v for k, v in record.pushes.items() if k in wanted}
        outcomes: list[PushOutcome] = []
        for remote_name, (reference, target) in wanted.items():
            existing = pushes.get(remote_name)
            if existing is not None and existing.result == "ok" and existing.digest == record.digest:
                continue
            attempt = 1
            if existing is not None and existing.result == "failed" and existing.attempted_digest == record.digest:
                if existing.next_retry_at is not None and existing.next_retry_at > time.time():
                    continue  # backing off
                attempt = existing.attempts + 1
            pushes[remote_name], outcome = self._push_one(
                declaration, reference, target, remote_name, record.digest, attempt, existing
            )
            outcomes.append(outcome)
        return dataclasses.replace(record, pushes=pushes), outcomes

    def _push_one(
        self,
        declaration: Declaration,
        reference: Reference,
        target: PushTarget,
        remote_name: str,
        digest: str,
        attempt: int,
        existing: PushRecord | None,
    ) -> tuple[PushRecord, PushOutcome]:
        options = ClientOptions(insecure=target.insecure, retry=self._client_retry)
        now = utc_now()
        try:
            result = push(self.store, reference.with_digest(digest), destination=Reference.parse(remote_name),
                          options=options)
        except Exception as exc:  # noqa: BLE001 - every failure is retried later; unexpected ones are logged too
            if not isinstance(exc, (IngotError, OSError, ValueError)):
                _log.exception("pushing %s failed unexpectedly", remote_name)
            delay = self.config.retry.delay(attempt)
            # Where the target was declared (ingot.yaml or config.yaml); a --push flag has no place.
            location = target.origin
            message = exc.message if isinstance(exc, IngotError) else str(exc)
            hint = exc.hint if isinstance(exc, IngotError) else None
            problem = Problem.at("push", location, f"push to {Reference.parse(remote_name).short} failed: {message}",
                                 hint or f"retrying in {delay:.0f} s")
            _log.warning("%s (attempt %d, next in %.1f s)", problem, attempt, delay)
            record = PushRecord(
                target=remote_name,
                result="failed",
                digest=existing.digest if existing is not None else None,
                pushed_at=existing.pushed_at if existing is not None else None,
                attempted_digest=digest,
                attempts=attempt,
                last_attempt_at=now,
                next_retry_at=time.time() + delay,
                problem=problem,
            )
            return record, PushOutcome(declaration.key, remote_name, digest, "failed", attempt, delay, 0, problem)
        _log.info("pushed %s %s", Reference.parse(remote_name).short, digest)
        record = PushRecord(remote_name, "ok", digest, now, digest, 0, now, None, None)
        return record, PushOutcome(declaration.key, remote_name, digest, "pushed", attempt, None,
                                   result.bytes_transferred)

    def next_retry_at(self) -> float | None:
        """The wall-clock time the earliest failed push is due again, if any."""
        due = [
            p.next_retry_at
            for m in self.keeper.get().models.values()
            for p in m.pushes.values()
            if p.result == "failed" and p.next_retry_at is not None and p.attempted_digest == m.digest
        ]
        return min(due) if due else None


def _keep_reload(record: ModelRecord, current: ModelRecord | None) -> ModelRecord:
    """The pass's record, with the reload result a hot-swap thread stored meanwhile."""
    if current is None or current.reload is None or current.reload == record.reload:
        return record
    return dataclasses.replace(record, reload=current.reload)
