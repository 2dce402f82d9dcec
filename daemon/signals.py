"""Waiting in the main thread for SIGTERM / SIGINT while other threads run.

The kernel delivers a process-directed signal to any thread that does not
block it: uvicorn's, gRPC's, watchdog's. Python runs the handler in the main
thread, but only once that thread wakes up; one blocked on a lock would sleep
through it. The signal wakeup fd is written whichever thread caught the
signal, so a main thread waiting in select() on it always wakes.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable
from types import FrameType, TracebackType

__all__ = ["SignalWaiter"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SignalWaiter:
    """Within `with`, SIGTERM/SIGINT are caught; `wait()` blocks until the first, later ones call `on_repeat`."""

    def __init__(self, *, on_repeat: Callable[[], None] | None = None) -> None:
        self._on_repeat = on_repeat
        self._seen: list[int] = []
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1
        self._pipe: tuple[int, int] | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._seen.append(signum)
        if len(self._seen) > 1 and self._on_repeat is not None:
            self._on_repeat()

    def __enter__(self) -> SignalWaiter:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        self._pipe = (read_end, write_end)
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        self._previous_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        return self

    def wait(self) -> signal.Signals:
        """Block until a stop signal has arrived; return the first one."""
        assert self._pipe is not None, "use SignalWaiter in a with statement"
        while not self._seen:
            select.select([self._pipe[0]], [], [])
            os.read(self._pipe[0], 4096)
        return signal.Signals(self._seen[0])

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        signal.set_wakeup_fd(self._previous_wakeup)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
