"""Inter-process file locks (flock(2)) with a timeout and a log line while waiting.

A lock file may be deleted by its holder (per-digest lock files are cleaned
up); a waiter that then wins the lock on the unlinked inode would hold nothing.
So after every acquisition the path is checked to still name the locked inode,
and the lock is taken again on the new file if not.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingot.registry.errors import LockTimeoutError

__all__ = ["file_lock", "try_file_lock"]

_log = logging.getLogger(__name__)

# How often a blocked waiter re-tries, and how often it says it is waiting.
_POLL_S = 0.05
_LOG_EVERY_S = 10.0


def _open_locked(path: Path, *, shared: bool, blocking_deadline: float | None, wait: bool) -> int | None:
    """Open `path` and flock it; return the fd, or None when `wait` is False and it is held."""
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    started = time.monotonic()
    last_log = started
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                    if not wait:
                        os.close(fd)
                        return None
                    now = time.monotonic()
                    if blocking_deadline is not None and now >= blocking_deadline:
                        raise LockTimeoutError(
                            f"timed out after {now - started:.0f}s waiting for the lock {path}",
                            hint="another ingot process is using the store; retry when it is done",
                        ) from None
                    if now - last_log >= _LOG_EVERY_S:
                        _log.info("waiting for lock %s (%.0fs so far)", path, now - started)
                        last_log = now
                    time.sleep(_POLL_S)
            # The holder before us may have unlinked the file: re-lock the new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


@contextmanager
def file_lock(path: str | Path, *, shared: bool = False, timeout: float | None = None) -> Iterator[None]:
    """Hold an flock on `path` (created if missing) for the duration of the block.

    `timeout` None waits forever; otherwise LockTimeoutError after that many seconds.
    """
    path = Path(path)
    deadline = None if timeout is None else time.monotonic() + timeout
    fd = _open_locked(path, shared=shared, blocking_deadline=deadline, wait=True)
    assert fd is not None
    try:
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


@contextmanager
def try_file_lock(path: str | Path, *, shared: bool = False) -> Iterator[bool]:
    """Try once to take the lock; yield whether it was taken (and hold it if so)."""
    fd = _open_locked(Path(path), shared=shared, blocking_deadline=None, wait=False)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)
