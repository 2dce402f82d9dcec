"""Running a batch: up to `concurrency` requests in flight, each result appended and fsync'd as it lands.

`BatchRun(parsed, calls, output=..., errors=...)` works out what is left to
do -- every custom_id not yet in the output or (as a final failure) in the
errors file -- and `run()` does it. The daemon's continuous batching turns
`concurrency` requests in flight into that many sequences decoded together,
so the default is the model's slots.

* Answers with status 200 go to the output file; every other answer, and a
  record per bad input line, to the errors file.
* Failures worth retrying (`RETRYABLE`: queue full, runner died, daemon
  stopping) are retried in the run with backoff; those still failing are
  written, and a rerun tries them again. Bad-line records are written afresh
  by every run (the input may have been fixed).
* `stop` set (Ctrl-C, a cancelled job), the daemon gone, or with `fail_fast`
  the first failure: nothing new starts, what is in flight is finished (or,
  when cancelled, dropped to be redone), nothing written is ever lost.
* `finish("input")` sorts both files into input order at the end; while a
  run goes (and after a kill) lines are in the order they finished.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .errors import DaemonGoneError
from .execute import CallFailed, Calls, Outcome, execute, prepare
from .lines import BatchRequest, ParsedInput
from .records import bad_line_record, is_bad_line, is_retryable, result_record
from .results import ResultFile

__all__ = ["BatchProgress", "BatchRun", "Cancellable", "Order"]

_log = logging.getLogger("ingot.daemon.batch")

Order = Literal["input", "completion"]
_RETRIES = 3
_BACKOFF_S = 0.5
_POLL_S = 0.2  # how often the writer looks at `stop` while results are outstanding


class Cancellable(Protocol):
    def cancel_all(self) -> None:
        """Cancel every call in flight (they fail, and the run drops them to be redone)."""


@dataclass(frozen=True)
class BatchProgress:
    total: int  # input requests, bad lines included
    done: int  # finished, in earlier runs or this one (bad lines count as done)
    succeeded: int  # this run
    failed: int  # this run: error answers and bad lines
    skipped: int  # already finished by an earlier run
    bad_lines: int
    prompt_tokens: int  # this run
    completion_tokens: int
    elapsed_s: float
    stopped: str = ""  # why the run stopped early: "interrupted", "fail-fast", "daemon gone"; "" if it did not


class BatchRun:
    """One pass over a parsed input; see the module docstring."""

    def __init__(
        self,
        parsed: ParsedInput,
        calls: Calls,
        *,
        output: ResultFile,
        errors: ResultFile,
        concurrency: int,
        fail_fast: bool = False,
        on_progress: Callable[[BatchProgress], None] | None = None,
        retries: int = _RETRIES,
        backoff_s: float = _BACKOFF_S,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.parsed = parsed
        self._calls = calls
        self.output = output
        self.errors = errors
        self.concurrency = concurrency
        self._fail_fast = fail_fast
        self._on_progress = on_progress
        self._retries = retries
        self._backoff_s = backoff_s
        self._stopping = threading.Event()
        self._started = time.monotonic()
        # Bad lines and retryable failures are found again; final failures stand.
        kept = [r for r in errors.records if not is_bad_line(r) and not is_retryable(r)]
        if len(kept) != len(errors.records):
            errors.rewrite(kept)
        finished = output.custom_ids | errors.custom_ids
        self.todo: list[BatchRequest] = [r for r in parsed.requests if r.custom_id not in finished]
        self._progress = BatchProgress(
            total=len(parsed.requests) + len(parsed.bad),
            done=len(parsed.requests) - len(self.todo),
            succeeded=0,
            failed=0,
            skipped=len(parsed.requests) - len(self.todo),
            bad_lines=len(parsed.bad),
            prompt_tokens=0,
            completion_tokens=0,
            elapsed_s=0.0,
        )

    @property
    def progress(self) -> BatchProgress:
        return dataclasses.replace(self._progress, elapsed_s=time.monotonic() - self._started)

    def run(self, stop: threading.Event | None = None) -> BatchProgress:
        """Do what is left; returns the final progress (`stopped` says whether it ended early).

        Raises DaemonGoneError when the daemon stopped answering (what was
        written stays; a rerun resumes).
        """
        stop = stop or threading.Event()
        self._started = time.monotonic()
        for bad in self.parsed.bad:
            self.errors.append(bad_line_record(bad))
            self._count(ok=False, done=1)
        if self._fail_fast and self.parsed.bad:
            self._stopped("fail-fast")
            return self.progress
        gone: CallFailed | None = None
        pending = iter(self.todo)
        in_flight: dict[Future[Outcome], BatchRequest] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="ingot-batch") as pool:
            try:
                while True:
                    while not self._stopping.is_set() and len(in_flight) < self.concurrency:
                        request = next(pending, None)
                        if request is None:
                            break
                        in_flight[pool.submit(self._one, request, stop)] = request
                    if not in_flight:
                        break
                    finished, _ = wait(in_flight, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                    for future in finished:
                        request = in_flight.pop(future)
                        try:
                            outcome = future.result()
                        except CallFailed as exc:  # fatal: the daemon is gone
                            gone = gone or exc
                            self._stopped("daemon gone")
                            continue
                        self._record(request, outcome)
                    if stop.is_set() and not self._stopping.is_set():
                        self._stopped("interrupted")
                        _cancel(self._calls)
            except BaseException:  # KeyboardInterrupt: drop what is in flight, keep what is written
                self._stopped("interrupted")
                _cancel(self._calls)
                raise
        if gone is not None:
            raise DaemonGoneError(
                f"the daemon stopped answering ({gone.message})",
                hint="what finished is saved: rerun the same command once it is back to do the rest",
            )
        return self.progress

    def finish(self, order: Order) -> None:
        """Sort both files into input order (for `order` "input"); leave them as they are otherwise."""
        if order != "input":
            return
        lines = self.parsed.lines_by_id
        last = float("inf")

        def key(record: dict[str, Any]) -> float:
            error = record.get("error")
            if is_bad_line(record) and isinstance(error, dict) and isinstance(error.get("line"), int):
                return error["line"]
            return lines.get(record.get("custom_id"), last)  # type: ignore[arg-type]

        for results in (self.output, self.errors):
            ordered = sorted(results.records, key=key)
            if ordered != results.records:
                results.rewrite(ordered)

    # ---- internals ---------------------------------------------------------------------------

    def _one(self, request: BatchRequest, stop: threading.Event) -> Outcome:
        prepared = prepare(request.url, request.body)  # checked when the input was read
        attempt = 0
        while True:
            outcome = execute(prepared, self._calls)
            if not outcome.retryable or attempt >= self._retries or self._stopping.is_set():
                return outcome
            if stop.wait(self._backoff_s * 2**attempt):
                return outcome
            attempt += 1

    def _record(self, request: BatchRequest, outcome: Outcome) -> None:
        if not outcome.ok and outcome.retryable and self._stopping.is_set():
            return  # cancelled or refused because we are stopping: redone by the next run
        record = result_record(request.custom_id, outcome)
        (self.output if outcome.ok else self.errors).append(record)
        self._count(ok=outcome.ok, done=1, outcome=outcome)
        if not outcome.ok and self._fail_fast:
            self._stopped("fail-fast")

    def _count(self, *, ok: bool, done: int, outcome: Outcome | None = None) -> None:
        p = self._progress
        self._progress = dataclasses.replace(
            p,
            done=p.done + done,
            succeeded=p.succeeded + ok,
            failed=p.failed + (not ok),
            prompt_tokens=p.prompt_tokens + (outcome.prompt_tokens if outcome else 0),
            completion_tokens=p.completion_tokens + (outcome.completion_tokens if outcome else 0),
        )
        if self._on_progress is not None:
            self._on_progress(self.progress)

    def _stopped(self, why: str) -> None:
        if not self._stopping.is_set():
            self._stopping.set()
            self._progress = dataclasses.replace(self._progress, stopped=why)


def _cancel(calls: Calls) -> None:
    cancel = getattr(calls, "cancel_all", None)
    if cancel is not None:
        cancel()
