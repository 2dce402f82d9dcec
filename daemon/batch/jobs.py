"""The OpenAI Batch API's state in the daemon: uploaded files and batch jobs under `$INGOT_HOME/batches`.

    batches/files/<file-id>          a file's bytes (inputs, and finished outputs)
    batches/files/<file-id>.json     its file object
    batches/jobs/<batch-id>.json     the batch object, rewritten atomically at each change
    batches/jobs/<batch-id>.output.jsonl, .errors.jsonl
                                     results while it runs (`ResultFile`: append + fsync)

Jobs run one at a time, in the order they were created, on a thread of
their own, through the servicers in-process (`InProcessCalls`) at batch
priority. Statuses: validating -> in_progress -> finalizing -> completed,
or failed (the input cannot run at all: missing, empty, duplicate custom_ids),
or cancelling -> cancelled (partial results are kept, as OpenAI does). A job
a daemon stop interrupted keeps its status; the next daemon resumes it where
its result files end (`BatchRun` skips what is answered). `completion_window`
is recorded (expires_at) but not enforced: a local job runs to the end.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BatchError, DuplicateCustomIdError
from .execute import Calls, check_body
from .lines import ENDPOINTS, parse_input
from .results import ResultFile
from .runner import BatchProgress, BatchRun

__all__ = ["BatchJobs", "FileStore", "JobNotFoundError", "StoredFile"]

_log = logging.getLogger("ingot.daemon.batch")

_ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
_WINDOW_S = {"24h": 86400}
_SAVE_EVERY_S = 1.0  # request_counts are written at most this often while a job runs


class JobNotFoundError(BatchError, LookupError):
    """No file or batch by that id."""


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _safe(ident: str, prefix: str) -> bool:
    # Ids become file names: only what _new_id makes.
    return ident.startswith(prefix + "-") and ident[len(prefix) + 1 :].isalnum()


@dataclass(frozen=True)
class StoredFile:
    info: dict[str, Any]  # the file object: id, object, bytes, created_at, filename, purpose
    path: Path


class FileStore:
    """Files of the Files API (purpose batch, batch_output)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def create(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        ident = _new_id("file")
        path = self.root / ident
        with open(path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return self._register(ident, filename, purpose, path)

    def adopt(self, source: Path, filename: str, purpose: str) -> StoredFile:
        """Turn a finished results file into a stored file (moved, not copied)."""
        ident = _new_id("file")
        path = self.root / ident
        os.replace(source, path)
        return self._register(ident, filename, purpose, path)

    def _register(self, ident: str, filename: str, purpose: str, path: Path) -> StoredFile:
        info = {"id": ident, "object": "file", "bytes": path.stat().st_size, "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}
        _write_json(self.root / f"{ident}.json", info)
        return StoredFile(info, path)

    def get(self, ident: str) -> StoredFile:
        meta = self.root / f"{ident}.json"
        if not _safe(ident, "file") or not meta.is_file():
            raise JobNotFoundError(f"no file {ident!r}", hint="GET /v1/files lists the files")
        return StoredFile(json.loads(meta.read_text()), self.root / ident)

    def list(self) -> list[dict[str, Any]]:
        found = [json.loads(p.read_text()) for p in self.root.glob("file-*.json")]
        return sorted(found, key=lambda f: (f["created_at"], f["id"]))

    def delete(self, ident: str) -> None:
        stored = self.get(ident)
        stored.path.unlink(missing_ok=True)
        (self.root / f"{ident}.json").unlink()


# Makes the Calls a job runs through; and the slots of the models it uses (its concurrency).
CallsFactory = Callable[[str], Calls]
SlotsOf = Callable[[set[str]], int]


class BatchJobs:
    """Batch objects, persisted, and the thread that runs them; `start()` resumes unfinished ones."""

    def __init__(self, root: Path, *, calls: CallsFactory, slots: SlotsOf) -> None:
        self.files = FileStore(root / "files")
        self._jobs_dir = root / "jobs"
        self._jobs_dir.mkdir(parents=True, exist_ok=True)
        self._calls = calls
        self._slots = slots
        self._lock = threading.Condition()
        self._queue: deque[str] = deque()
        self._cancel: dict[str, threading.Event] = {}
        self._stopping = threading.Event()  # the daemon stops: leave jobs to be resumed
        self._thread: threading.Thread | None = None

    # ---- the API -------------------------------------------------------------------------------

    def create(self, *, input_file_id: str, endpoint: str, completion_window: str,
               metadata: dict[str, str] | None) -> dict[str, Any]:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
        if completion_window not in _WINDOW_S:
            raise ValueError(f"completion_window must be one of {', '.join(_WINDOW_S)}, got {completion_window!r}")
        stored = self.files.get(input_file_id)
        if stored.info["purpose"] != "batch":
            raise ValueError(f"file {input_file_id} has purpose {stored.info['purpose']!r}, not 'batch'")
        now = int(time.time())
        job: dict[str, Any] = {
            "id": _new_id("batch"), "object": "batch", "endpoint": endpoint, "errors": None,
            "input_file_id": input_file_id, "completion_window": completion_window, "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + _WINDOW_S[completion_window], "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": metadata,
        }
        with self._lock:
            self._save(job)
            self._enqueue(job["id"])
        return job

    def get(self, ident: str) -> dict[str, Any]:
        path = self._jobs_dir / f"{ident}.json"
        if not _safe(ident, "batch") or not path.is_file():
            raise JobNotFoundError(f"no batch {ident!r}", hint="GET /v1/batches lists the batches")
        with self._lock:
            return json.loads(path.read_text())  # type: ignore[no-any-return]

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            jobs = [json.loads(p.read_text()) for p in self._jobs_dir.glob("batch-*.json")]
        return sorted(jobs, key=lambda j: (j["created_at"], j["id"]), reverse=True)

    def cancel(self, ident: str) -> dict[str, Any]:
        with self._lock:
            job = self.get(ident)
            if job["status"] in ("validating", "in_progress", "finalizing"):
                job["status"] = "cancelling"
                job["cancelling_at"] = int(time.time())
                self._save(job)
                self._cancel.setdefault(ident, threading.Event()).set()
            return job

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Resume every unfinished job (oldest first) and start the worker thread."""
        with self._lock:
            for job in sorted(self.list(), key=lambda j: (j["created_at"], j["id"])):
                if job["status"] in _ACTIVE:
                    if job["status"] == "cancelling":
                        self._cancel.setdefault(job["id"], threading.Event()).set()
                    self._enqueue(job["id"])
        self._thread = threading.Thread(target=self._work, name="ingot-batch-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop running jobs (they resume at the next start); in-flight requests are cancelled and redone."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_idle(self, timeout: float) -> bool:
        """True once no job is queued or running (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queue or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    _running = False

    def _enqueue(self, ident: str) -> None:
        if ident not in self._queue:
            self._queue.append(ident)
            self._lock.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping.is_set():
                    self._lock.wait()
                if self._stopping.is_set():
                    return
                ident = self._queue.popleft()
                self._running = True
            try:
                self._run(ident)
            except Exception:  # noqa: BLE001 - one broken job must not stop the others
                _log.exception("batch %s failed", ident)
                self._fail(ident, "internal_error", "the daemon failed this batch; its log has the details")
            finally:
                with self._lock:
                    self._running = False
                    self._lock.notify_all()

    # ---- running one job -----------------------------------------------------------------------

    def _save(self, job: dict[str, Any]) -> None:
        _write_json(self._jobs_dir / f"{job['id']}.json", job)

    def _update(self, ident: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            job = json.loads((self._jobs_dir / f"{ident}.json").read_text())
            if job["status"] == "cancelling" and fields.get("status") not in (None, "cancelled"):
                fields.pop("status")  # a cancel that arrived meanwhile wins
            job.update(fields)
            self._save(job)
            return job  # type: ignore[no-any-return]

    def _fail(self, ident: str, code: str, message: str, line: int | None = None) -> None:
        error = {"code": code, "message": message, "param": None, "line": line}
        self._update(ident, status="failed", failed_at=int(time.time()), errors={"object": "list", "data": [error]})

    def _run(self, ident: str) -> None:
        job = self.get(ident)
        cancel = self._cancel.setdefault(ident, threading.Event())
        try:
            source = self.files.get(job["input_file_id"]).path
            with open(source, "rb") as handle:
                parsed = parse_input(handle, filename=job["input_file_id"], check=check_body,
                                     only_endpoint=job["endpoint"])
        except (JobNotFoundError, OSError) as exc:
            self._fail(ident, "missing_input", f"the input file cannot be read: {exc}")
            return
        except DuplicateCustomIdError as exc:
            self._fail(ident, "duplicate_custom_id", str(exc))
            return
        total = len(parsed.requests) + len(parsed.bad)
        if total == 0:
            self._fail(ident, "empty_file", "the input file holds no requests")
            return
        line_errors = [{"code": b.code, "message": b.message, "param": b.param, "line": b.line} for b in parsed.bad]
        job = self._update(
            ident,
            status="in_progress" if job["status"] == "validating" else job["status"],
            in_progress_at=job["in_progress_at"] or int(time.time()),
            errors={"object": "list", "data": line_errors[:100]} if line_errors else None,
        )
        output_path = self._jobs_dir / f"{ident}.output.jsonl"
        errors_path = self._jobs_dir / f"{ident}.errors.jsonl"
        last_save = [0.0]

        def counted(progress: BatchProgress) -> None:
            now = time.monotonic()
            if now - last_save[0] >= _SAVE_EVERY_S:
                last_save[0] = now
                self._update(ident, request_counts=_counts(progress, output, errors))

        stop = threading.Event()
        watcher = threading.Thread(target=_join_events, args=(stop, cancel, self._stopping), daemon=True)
        watcher.start()
        models = {str(r.body.get("model", "")) for r in parsed.requests} - {""}
        with ResultFile.open(output_path) as output, ResultFile.open(errors_path) as errors:
            if job["status"] not in ("finalizing", "cancelling"):
                run = BatchRun(parsed, self._calls(ident), output=output, errors=errors,
                               concurrency=self._slots(models), on_progress=counted)
                try:
                    run.run(stop)
                finally:
                    stop.set()
            else:
                run = BatchRun(parsed, self._calls(ident), output=output, errors=errors, concurrency=1)
            stop.set()
            if self._stopping.is_set() and not cancel.is_set():
                self._update(ident, request_counts=_counts(run.progress, output, errors))
                return  # the daemon stops: resume next time
            job = self._update(ident, status="finalizing", finalizing_at=job["finalizing_at"] or int(time.time()),
                               request_counts=_counts(run.progress, output, errors))
            run.finish("input")
            has_output, has_errors = bool(output.records), bool(errors.records)
        output_id = self.files.adopt(output_path, f"{ident}_output.jsonl", "batch_output").info["id"] if has_output else None
        error_id = self.files.adopt(errors_path, f"{ident}_error.jsonl", "batch_output").info["id"] if has_errors else None
        for path in (output_path, errors_path):
            path.unlink(missing_ok=True)
        now = int(time.time())
        if job["status"] == "cancelling":
            self._update(ident, status="cancelled", cancelled_at=now, output_file_id=output_id, error_file_id=error_id)
        else:
            self._update(ident, status="completed", completed_at=now, output_file_id=output_id, error_file_id=error_id)


def _counts(progress: BatchProgress, output: ResultFile, errors: ResultFile) -> dict[str, int]:
    return {"total": progress.total, "completed": len(output.records), "failed": len(errors.records)}


def _join_events(target: threading.Event, *sources: threading.Event) -> None:
    """Set `target` once any of `sources` is set (or target is set by its owner)."""
    while not target.is_set():
        if any(source.wait(0.1) for source in sources):
            target.set()
