"""Ties one RPC's end (client cancel, deadline, disconnect) to the work it started.

gRPC runs `context.add_callback` callbacks when an RPC terminates for any
reason; a `CallWatch` turns that into a flag the scheduler polls while the
request waits, and into cancelling the runner stream while it generates, so
the slot frees as soon as the client is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc

__all__ = ["CallWatch"]


class CallWatch:
    def __init__(self, context: grpc.ServicerContext, *, wake: Callable[[], None]) -> None:
        self._context = context
        self._wake = wake
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._cancellers: list[Callable[[], None]] = []
        if not context.add_callback(self._on_end):
            self._ended.set()

    def cancelled(self) -> bool:
        """True once the RPC has ended from the client's side (or the server is stopping it)."""
        return self._ended.is_set() or not self._context.is_active()

    def deadline_passed(self) -> bool:
        remaining = self._context.time_remaining()
        return remaining is not None and remaining <= 0

    def on_cancel(self, cancel: Callable[[], None]) -> Callable[[], None]:
        """Run `cancel` when the RPC ends (at once if it already has); returns a remover."""
        with self._lock:
            run_now = self._ended.is_set()
            if not run_now:
                self._cancellers.append(cancel)
        if run_now:
            cancel()

        def remove() -> None:
            with self._lock:
                if cancel in self._cancellers:
                    self._cancellers.remove(cancel)

        return remove

    def _on_end(self) -> None:
        with self._lock:
            self._ended.set()
            cancellers, self._cancellers = self._cancellers, []
        for cancel in cancellers:
            cancel()
        self._wake()
