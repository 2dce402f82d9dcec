"""Progress of a transfer, reported as `Progress(status, digest, total, completed)` events.

Statuses, in the order a blob meets them (docs/registries.md lists them too):

| status              | digest      | meaning                                                     |
|---------------------|-------------|-------------------------------------------------------------|
| `resolving`         | None        | looking the reference up (local store or registry)          |
| `exists`            | blob        | already where it is going: skipped, no bytes sent           |
| `mounted`           | blob        | cross-repository mount on the registry: no bytes sent       |
| `uploading`         | blob        | bytes sent so far (`completed`) of `total`                   |
| `downloading`       | blob        | bytes stored so far, resumed ones included                   |
| `verifying`         | blob        | sha256 and size being checked before the blob enters the store |
| `done`              | blob        | blob finished                                               |
| `converting`        | manifest    | a foreign package (Ollama, Docker Model Runner) being rewritten |
| `writing manifest`  | manifest    | manifest being written (registry) or stored and tagged (pull) |
| `success`           | manifest    | the whole transfer finished; totals over all blobs          |

Callbacks are serialized (one at a time, whatever thread the transfer runs
in) and byte updates are throttled, so a slow renderer never sees a flood.

The same object carries cancellation: once `cancel()` is called (Ctrl-C, or
another blob of the transfer failed), the next byte update of every worker
raises `TransferCancelled`, so threads stop within one chunk.
"""

from __future__ import annotations

import threading
import time

from ingot.registry.digest import Progress, ProgressCallback

__all__ = [
    "CONVERTING",
    "DONE",
    "DOWNLOADING",
    "EXISTS",
    "MOUNTED",
    "RESOLVING",
    "SUCCESS",
    "UPLOADING",
    "VERIFYING",
    "WRITING_MANIFEST",
    "BlobProgress",
    "TransferCancelled",
    "TransferProgress",
]

RESOLVING = "resolving"
EXISTS = "exists"
MOUNTED = "mounted"
UPLOADING = "uploading"
DOWNLOADING = "downloading"
VERIFYING = "verifying"
DONE = "done"
CONVERTING = "converting"
WRITING_MANIFEST = "writing manifest"
SUCCESS = "success"

# Byte updates closer together than this are folded into the next one.
_MIN_INTERVAL_S = 0.1


class TransferCancelled(Exception):
    """Raised in a worker thread once its transfer was cancelled."""


class TransferProgress:
    """Funnels events from worker threads into one (optional) callback; carries cancellation."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def check(self) -> None:
        """Raise TransferCancelled when the transfer was cancelled."""
        if self._cancelled.is_set():
            raise TransferCancelled("transfer cancelled")

    def emit(self, status: str, digest: str | None, total: int, completed: int) -> None:
        if self._callback is None:
            return
        with self._lock:
            self._callback(Progress(status, digest, total, completed))

    def blob(self, status: str, digest: str, total: int) -> BlobProgress:
        return BlobProgress(self, status, digest, total)


class BlobProgress:
    """Byte progress of one blob: `update(completed)` as often as wanted, throttled here."""

    def __init__(self, sink: TransferProgress, status: str, digest: str, total: int) -> None:
        self._sink = sink
        self.status = status
        self.digest = digest
        self.total = total
        self.completed = 0
        self._last = 0.0

    def update(self, completed: int, *, force: bool = False) -> None:
        self._sink.check()
        self.completed = completed
        now = time.monotonic()
        if force or completed >= self.total or now - self._last >= _MIN_INTERVAL_S:
            self._last = now
            self._sink.emit(self.status, self.digest, self.total, completed)
