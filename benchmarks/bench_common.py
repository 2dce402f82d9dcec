"""What the concurrency benchmarks share: running jobs released together and timing them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "bench-data" / "bench-q4_k_m.gguf"  # benchmarks/make_bench_model.py makes it
MODEL = "bench"  # the package name the daemon benchmarks create
N_CTX = 1024  # per request slot, on every side of a comparison
SEED = 1234


def released_together(jobs: Sequence[Callable[[], T]], *, what: str = "requests") -> tuple[list[T], float]:
    """Run every job in its own thread, all started at once; (results, seconds from release to the last end).

    Any job's exception stops the benchmark: a number from a burst where some
    requests failed would flatter whoever failed fastest.
    """
    barrier = threading.Barrier(len(jobs) + 1)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(job: Callable[[], T]) -> None:
        barrier.wait()
        try:
            result = job()
        except BaseException as exc:  # noqa: BLE001 - reported below, in the main thread
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{what}: {len(errors)} of {len(jobs)} failed: {errors[0]!r}")
    return results, elapsed


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used so far (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
