"""Retries with exponential backoff for 408/429/5xx answers and dropped connections.

`Retry-After` (seconds or an HTTP date) is honoured, capped by the policy.
TLS failures are never retried: they do not heal by waiting.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
import urllib3.exceptions

from ingot.registry.oci.options import RetryPolicy

__all__ = [
    "RETRY_STATUSES",
    "Backoff",
    "is_retryable_exception",
    "retry_after_seconds",
]

_log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

_RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    ConnectionError,
    TimeoutError,
    # A body read below urllib3 (download._body_readinto) sees these unwrapped; urllib3 makes them ProtocolError.
    http.client.HTTPException,
)


def is_retryable_exception(exc: BaseException) -> bool:
    """Dropped, refused or stalled connections are worth another try; TLS errors are not."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(exc, _RETRYABLE_EXCEPTIONS)


def retry_after_seconds(response: requests.Response, *, now: float | None = None) -> float | None:
    """The delay a `Retry-After` header asks for, or None when absent or unreadable."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass
class Backoff:
    """The retry budget of one operation: how many tries are left and how long to wait.

    `reset()` gives the budget back (a download that received bytes is making
    progress and deserves fresh retries). `sleep` is injectable for callers
    that must stay responsive, and is `time.sleep` otherwise.
    """

    policy: RetryPolicy
    what: str
    sleep: Callable[[float], None] = time.sleep
    failures: int = 0

    def reset(self) -> None:
        self.failures = 0

    def exhausted(self) -> bool:
        return self.failures + 1 >= self.policy.attempts

    def delay(self, response: requests.Response | None = None) -> float:
        """How long to wait before the next try (the server's wish when it states one)."""
        if response is not None:
            asked = retry_after_seconds(response)
            if asked is not None:
                return min(asked, self.policy.max_retry_after)
        ceiling = min(self.policy.max_delay, self.policy.base_delay * (2**self.failures))
        # Full jitter: parallel transfers hit by one outage do not retry in lockstep.
        return random.uniform(ceiling / 2, ceiling)

    def wait(self, reason: str, response: requests.Response | None = None) -> None:
        """Count one failure and sleep before the next try."""
        seconds = self.delay(response)
        self.failures += 1
        _log.info("%s: %s; retry %d/%d in %.1fs", self.what, reason, self.failures,
                  self.policy.attempts - 1, seconds)
        self.sleep(seconds)
