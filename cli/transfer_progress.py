"""Progress of `ingot push` / `ingot pull`: one bar per blob plus an overall bar, JSON lines, or nothing.

    with transfer_display(mode) as report:
        pull(store, ref, progress=report)

`bars` draws rich bars (bytes, rate, ETA) on a terminal and nothing
elsewhere; `json` prints every event as one JSON object per line
(`{"status", "digest", "total", "completed"}`) for scripts; `quiet` prints
nothing. Events arrive already serialized by the registry layer.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Literal

from ingot.registry.digest import Progress, ProgressCallback

# rich and ingot.registry.oci (oras, requests) are imported only once bars are
# drawn: commands import this module at their top, and `ingot --help` must not
# load either.
if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

__all__ = ["DisplayMode", "TransferBars", "json_events", "transfer_display"]

DisplayMode = Literal["bars", "json", "quiet"]


class TransferBars:
    """Rich bars: `overall` over every blob, and one per blob digest."""

    def __init__(self, console: Console, *, title: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress as RichProgress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from ingot.registry.oci import progress as status

        self._writing_manifest = status.WRITING_MANIFEST
        # Statuses after which a blob's bar is full: its bytes are accounted for.
        self._finished = frozenset({status.EXISTS, status.MOUNTED, status.DONE, status.VERIFYING})
        self._labels = {
            status.EXISTS: "exists",
            status.MOUNTED: "mounted",
            status.UPLOADING: "pushing",
            status.DOWNLOADING: "pulling",
            status.VERIFYING: "verifying",
            status.DONE: "done",
        }
        self._rich = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._rich.start()
        # First, so it stays on top of the per-blob bars.
        self._overall: TaskID = self._rich.add_task(title, total=None, completed=0)
        self._blobs: dict[str, TaskID] = {}
        self._sizes: dict[str, int] = {}
        self._done: dict[str, int] = {}

    def __call__(self, event: Progress) -> None:
        if event.status == self._writing_manifest:
            self._rich.console.print(f"{self._writing_manifest} {event.digest or ''}".rstrip(), highlight=False)
            return
        if event.digest is None or event.status not in self._labels:
            return
        digest = event.digest
        completed = event.total if event.status in self._finished else event.completed
        label = f"{self._labels.get(event.status, event.status):9} {digest.split(':', 1)[-1][:12]}"
        if digest not in self._blobs:
            self._blobs[digest] = self._rich.add_task(label, total=event.total or None, completed=completed)
        else:
            self._rich.update(self._blobs[digest], description=label, total=event.total or None, completed=completed)
        self._sizes[digest] = event.total
        self._done[digest] = completed
        total = sum(self._sizes.values())
        self._rich.update(self._overall, total=total or None, completed=sum(self._done.values()))

    def close(self) -> None:
        self._rich.stop()


def json_events(out: IO[str]) -> ProgressCallback:
    """A callback printing each event as one JSON line on `out`."""

    def report(event: Progress) -> None:
        out.write(json.dumps({"status": event.status, "digest": event.digest, "total": event.total,
                              "completed": event.completed}) + "\n")
        out.flush()

    return report


@contextmanager
def transfer_display(mode: DisplayMode, *, title: str, console: Console | None = None) -> Iterator[ProgressCallback]:
    """Yield the progress callback for `mode`; bars only when stdout is a terminal."""
    if mode == "json":
        yield json_events(sys.stdout)
        return
    if mode == "quiet" or not (console is not None or sys.stdout.isatty()):
        yield _ignore
        return
    if console is None:
        from rich.console import Console

        console = Console()
    bars = TransferBars(console, title=title)
    try:
        yield bars
    finally:
        bars.close()


def _ignore(event: Progress) -> None:
    del event
