"""Run one job per blob on a small thread pool; the first failure (or Ctrl-C) stops the rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

__all__ = ["run_parallel"]

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(
    job: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int,
    name: str,
    on_abort: Callable[[], None] | None = None,
) -> list[R]:
    """`[job(item) for item in items]`, up to `workers` at a time; re-raises the first error.

    `on_abort` runs when a job failed or the caller was interrupted: it should
    make the running jobs stop soon (see `TransferProgress.cancel`).
    """
    if not items:
        return []
    if workers <= 1 or len(items) == 1:
        return [job(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix=name)
    futures: list[Future[R]] = []
    try:
        futures = [pool.submit(job, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
        if failed:
            if on_abort is not None:
                on_abort()
            for future in futures:
                future.cancel()
            wait(futures)
            raise failed[0].exception()  # type: ignore[misc]
        return [f.result() for f in futures]
    except BaseException:
        if on_abort is not None:
            on_abort()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
