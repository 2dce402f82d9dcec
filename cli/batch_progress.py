"""The `ingot batch` progress bar (rich, on stderr): done/total, tokens/s, ETA and failures.

Drawn only when stderr is a terminal, and only after `delay_s`, so a quick
or piped run prints no bar at all. Fed `BatchProgress` snapshots from the
thread that writes the results.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress, TaskID

    from ingot.daemon.batch.runner import BatchProgress

__all__ = ["BatchBar"]


class BatchBar:
    def __init__(self, *, enabled: bool | None = None, delay_s: float = 1.0) -> None:
        self._enabled = sys.stderr.isatty() if enabled is None else enabled
        self._delay_s = delay_s
        self._started = time.monotonic()
        self._rich: RichProgress | None = None
        self._task: TaskID | None = None

    def __call__(self, progress: BatchProgress) -> None:
        if not self._enabled or time.monotonic() - self._started < self._delay_s:
            return
        if self._rich is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._rich = Progress(
                TextColumn("batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} tok/s"),
                TimeRemainingColumn(),
                TextColumn("[red]{task.fields[failed]} failed" if progress.failed else "{task.fields[failed]} failed"),
                console=Console(stderr=True),
            )
            self._rich.start()
            self._task = self._rich.add_task("batch", total=progress.total, completed=progress.done, rate="-", failed=0)
        assert self._task is not None
        tokens = progress.completion_tokens or progress.prompt_tokens
        rate = f"{tokens / progress.elapsed_s:.1f}" if progress.elapsed_s > 0 else "-"
        self._rich.update(self._task, completed=progress.done, rate=rate, failed=progress.failed)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
