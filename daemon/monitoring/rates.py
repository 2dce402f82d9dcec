"""Generated tokens per model over the last minutes, in one-second buckets: `ingot ps`'s tokens/s and the page's chart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenRates"]


class TokenRates:
    """Counts tokens per model and second, forgetting anything older than `window_s`.

    Live streams add their tokens as they arrive, so a long answer shows up while it is
    still being written, not only when it ends.
    """

    def __init__(self, *, window_s: int = 900, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[int, int]] = {}

    def add(self, model: str, tokens: int) -> None:
        if tokens <= 0:
            return
        now = int(self._clock())
        with self._lock:
            buckets = self._buckets.setdefault(model, {})
            buckets[now] = buckets.get(now, 0) + tokens
            if len(buckets) > self._window_s:
                for second in [s for s in buckets if s <= now - self._window_s]:
                    del buckets[second]

    def per_second(self, model: str, *, over_s: int = 60) -> float:
        """Tokens per second over the last `over_s` seconds (the current second included)."""
        now = int(self._clock())
        with self._lock:
            buckets = self._buckets.get(model, {})
            total = sum(count for second, count in buckets.items() if second > now - over_s)
        return total / over_s

    def series(self, *, step_s: int = 10, span_s: int = 600) -> dict[str, list[float]]:
        """Tokens per second in `step_s` steps over the last `span_s` seconds, oldest first, per model."""
        now = int(self._clock())
        steps = span_s // step_s
        start = now - steps * step_s + 1
        out: dict[str, list[float]] = {}
        with self._lock:
            for model, buckets in self._buckets.items():
                values = [0.0] * steps
                for second, count in buckets.items():
                    if second >= start:
                        values[min((second - start) // step_s, steps - 1)] += count / step_s
                if any(values):
                    out[model] = values
        return out
