"""Byte progress bars (rich) for long commands, fed by `ingot.registry.digest.Progress` events.

    with progress_display() as report:
        build_package(..., progress=report)

One bar per `status` text (a new bar when the status changes or its count
goes back to zero). Nothing is drawn unless stdout is a terminal, and
nothing before `delay_s` has passed, so quick commands print no bar at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ingot.registry.digest import Progress, ProgressCallback

# rich is imported only once a bar is drawn: commands that import this module
# must not make `ingot --help` load it.
if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress, TaskID

__all__ = ["ByteProgress", "progress_display"]


class ByteProgress:
    """Turns Progress events into rich bars, starting only after `delay_s`."""

    def __init__(self, console: Console, *, delay_s: float = 1.0) -> None:
        self._console = console
        self._delay_s = delay_s
        self._started_at = time.monotonic()
        self._rich: RichProgress | None = None
        # Latest event per bar, in arrival order; bars get created lazily.
        self._pending: dict[int, Progress] = {}
        self._tasks: dict[int, TaskID] = {}
        self._current: dict[str, tuple[int, int]] = {}  # status -> (bar id, last completed)
        self._next_id = 0

    def __call__(self, event: Progress) -> None:
        bar = self._bar_for(event)
        self._pending[bar] = event
        if self._rich is None:
            if time.monotonic() - self._started_at < self._delay_s:
                return
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress as RichProgress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._rich = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._rich.start()
        self._flush()

    def _bar_for(self, event: Progress) -> int:
        known = self._current.get(event.status)
        if known is None or event.completed < known[1]:
            bar = self._next_id
            self._next_id += 1
        else:
            bar = known[0]
        self._current[event.status] = (bar, event.completed)
        return bar

    def _flush(self) -> None:
        assert self._rich is not None
        for bar, event in self._pending.items():
            description = event.status + (f" {event.digest.split(':', 1)[-1][:12]}" if event.digest else "")
            total = event.total or None
            if bar not in self._tasks:
                self._tasks[bar] = self._rich.add_task(description, total=total, completed=event.completed)
            else:
                self._rich.update(self._tasks[bar], description=description, total=total, completed=event.completed)
        self._pending.clear()

    def close(self) -> None:
        if self._rich is not None:
            self._flush()
            self._rich.stop()
            self._rich = None

    @property
    def shown(self) -> bool:
        """Whether any bar was drawn."""
        return bool(self._tasks)


@contextmanager
def progress_display(
    *, enabled: bool | None = None, delay_s: float = 1.0, console: Console | None = None
) -> Iterator[ProgressCallback]:
    """Yield a progress callback drawing bars on `console` (default stdout) when `enabled`.

    `enabled` None means: only when stdout is a terminal.
    """
    if enabled is None:
        enabled = sys.stdout.isatty()
    if not enabled:
        yield _ignore
        return
    if console is None:
        from rich.console import Console

        console = Console()
    display = ByteProgress(console, delay_s=delay_s)
    try:
        yield display
    finally:
        display.close()


def _ignore(event: Progress) -> None:
    del event
