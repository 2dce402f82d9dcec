"""How long a model stays loaded after its last request: Ollama's `keep_alive`.

Accepted forms (as Ollama takes them):

    "5m", "1h30m", "90s", "250ms"   a Go-style duration
    "300", "2.5"                    a number of seconds
    "0"                             unload as soon as the request finishes
    "-1", "-5m"                     any negative value: keep it loaded forever
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_KEEP_ALIVE", "KeepAlive", "KeepAliveError", "parse_keep_alive"]


class KeepAliveError(ValueError):
    """A keep_alive value does not parse."""


@dataclass(frozen=True)
class KeepAlive:
    """`seconds` is None for "forever"; 0 means unload right after the request."""

    seconds: float | None

    @property
    def forever(self) -> bool:
        return self.seconds is None

    def __str__(self) -> str:
        if self.seconds is None:
            return "forever"
        return _format_seconds(self.seconds)


DEFAULT_KEEP_ALIVE = KeepAlive(300.0)

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_NUMBER = re.compile(r"[+-]?(\d+(?:\.\d*)?|\.\d+)")


def parse_keep_alive(text: str) -> KeepAlive:
    """Parse a keep_alive string; raise KeepAliveError naming the accepted forms."""
    raw = text.strip()
    if _NUMBER.fullmatch(raw):
        return _from_seconds(float(raw))
    sign = 1.0
    body = raw
    if body[:1] in "+-" and body:
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    total = 0.0
    position = 0
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise KeepAliveError(
            f"invalid keep_alive {text!r}: write a duration such as '5m', '1h30m' or '90s', "
            "a number of seconds, 0 to unload after the request, or -1 to keep the model loaded"
        )
    return _from_seconds(sign * total)


def _from_seconds(seconds: float) -> KeepAlive:
    return KeepAlive(None) if seconds < 0 else KeepAlive(seconds)


def _format_seconds(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if value)
