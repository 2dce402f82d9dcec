"""The render budget: how much one prompt render may spend, and the meter that counts it.

A package pulled from a registry brings its own template and the daemon runs
it on every request, so a template is untrusted code. Every render (Go or
Jinja) runs against a `RenderBudget`:

| limit | config.yaml key (`templates:`) | default | counts |
|---|---|---|---|
| wall time | `max_render_time` | 5 s | seconds since the render began, checked at every step, loop turn and call |
| output | `max_output_bytes` | 16 MiB | UTF-8 bytes written, checked as output grows; no value a template builds may be longer |
| loop iterations | `max_loop_iterations` | 1,000,000 | turns of every `range` / `for`, all loops of the render together |
| nesting depth | `max_nesting_depth` | 64 | nested blocks and `template` calls (Go); nested macro and function calls (Jinja) |

The largest real chat templates render a long conversation in about a
millisecond, a few hundred loop turns and a nesting depth under ten; the
defaults are three or more orders of magnitude above that.

A `Meter` is one render's running count. It is not thread-safe and lives for
one render (the per-turn renders of a legacy Go template share one). Going
over raises `BudgetExceeded`, which each dialect turns into a
`TemplateBudgetError` pointing at the place in the template that spent it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from .errors import TemplateError

__all__ = [
    "BUDGET_KEYS",
    "BoundedText",
    "DEFAULT_BUDGET",
    "BudgetExceeded",
    "Meter",
    "RenderBudget",
    "TemplateBudgetError",
    "utf8_length",
]

OUTPUT_BYTES = "max_output_bytes"
RENDER_TIME = "max_render_time"
LOOP_ITERATIONS = "max_loop_iterations"
NESTING_DEPTH = "max_nesting_depth"

BUDGET_KEYS = (RENDER_TIME, OUTPUT_BYTES, LOOP_ITERATIONS, NESTING_DEPTH)
"""The limits' names, as config.yaml's `templates:` section spells them."""

# How many steps pass between two reads of the clock: a step costs about a
# microsecond, a clock read a twentieth of that, so this keeps the check cheap
# while a runaway render still stops within a millisecond of its deadline.
_CLOCK_EVERY = 32


@dataclass(frozen=True)
class RenderBudget:
    """The limits of one render; see the module docstring for what each counts."""

    max_render_time: float = 5.0
    max_output_bytes: int = 16 * 1024 * 1024
    max_loop_iterations: int = 1_000_000
    max_nesting_depth: int = 64

    def __post_init__(self) -> None:
        if not self.max_render_time > 0:
            raise ValueError(f"{RENDER_TIME} must be positive, got {self.max_render_time}")
        for key in (OUTPUT_BYTES, LOOP_ITERATIONS, NESTING_DEPTH):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1, got {getattr(self, key)}")

    def describe(self, key: str) -> str:
        """The limit `key` in words: "16.0 MiB of output", "2 s of render time"."""
        if key == OUTPUT_BYTES:
            return f"{_size(self.max_output_bytes)} of output"
        if key == RENDER_TIME:
            return f"{self.max_render_time:g} s of render time"
        if key == LOOP_ITERATIONS:
            return f"{self.max_loop_iterations:,} loop iterations"
        return f"a nesting depth of {self.max_nesting_depth}"


DEFAULT_BUDGET = RenderBudget()


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


class BudgetExceeded(Exception):
    """A render went over one limit; `key` names it (`max_output_bytes`...).

    Internal to the template package: the dialects catch it and raise a
    `TemplateBudgetError` with the template's position.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class TemplateBudgetError(TemplateError):
    """A template that went over its render budget.

    ``limit`` is the config.yaml key of the limit that was hit
    (``max_output_bytes``, ``max_render_time``, ``max_loop_iterations`` or
    ``max_nesting_depth``). The daemon answers RESOURCE_EXHAUSTED (HTTP 400).
    """

    def __init__(self, message: str, *, limit: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_budget_error, (self.message, self.limit, self.filename, self.line, self.column,
                                        self.hint, self.source_line))


def _rebuild_budget_error(message: str, limit: str, filename: str, line: int, column: int,
                          hint: str | None, source_line: str | None) -> TemplateBudgetError:
    return TemplateBudgetError(message, limit=limit, filename=filename, line=line, column=column, hint=hint,
                               source_line=source_line)


def budget_hint(key: str) -> str:
    return (f"a runaway template (a package's TEMPLATE or its GGUF chat template); if it is legitimate, "
            f"raise templates.{key} in $INGOT_HOME/config.yaml")


def utf8_length(text: str) -> int:
    """`len(text.encode())` without the copy for ASCII text (the usual prompt)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


class Meter:
    """One render's spending against `budget`; raises `BudgetExceeded` when a limit is passed."""

    def __init__(self, budget: RenderBudget = DEFAULT_BUDGET, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self._clock = clock
        self._deadline = clock() + budget.max_render_time
        self.output_bytes = 0
        self.iterations = 0
        self.depth = 0
        self._ticks = 0

    def over(self, key: str, what: str) -> BudgetExceeded:
        return BudgetExceeded(key, f"template render budget exceeded: {what} "
                                   f"(limit: {self.budget.describe(key)}, templates.{key})")

    def tick(self) -> None:
        """One step of work; reads the clock every few steps."""
        self._ticks += 1
        if self._ticks % _CLOCK_EVERY == 0:
            self.check_time()

    def check_time(self) -> None:
        if self._clock() > self._deadline:
            raise self.over(RENDER_TIME, f"still rendering after {self.budget.max_render_time:g} s")

    def write(self, text: str) -> None:
        """Count `text` about to be written to the output."""
        self.output_bytes += utf8_length(text)
        if self.output_bytes > self.budget.max_output_bytes:
            raise self.over(OUTPUT_BYTES, "the prompt grew past the output limit")

    def room(self) -> int:
        """How many characters one value may have: no more than the whole output may."""
        return self.budget.max_output_bytes

    def check_size(self, length: int, what: str = "a value") -> None:
        """Refuse a string (or list) of `length` before or after it is built."""
        if length > self.budget.max_output_bytes:
            raise self.over(OUTPUT_BYTES, f"{what} would be {length:,} characters long")

    def iterations_left(self) -> int:
        return self.budget.max_loop_iterations - self.iterations

    def iterate(self, count: int = 1) -> None:
        """`count` more loop turns (checked before they run when the count is known)."""
        self.iterations += count
        if self.iterations > self.budget.max_loop_iterations:
            raise self.over(LOOP_ITERATIONS, "too many loop iterations")
        self.tick()

    def enter(self) -> None:
        """One level deeper (a nested block, a template or macro call)."""
        self.depth += 1
        if self.depth > self.budget.max_nesting_depth:
            raise self.over(NESTING_DEPTH, "blocks or calls nest too deeply (runaway recursion?)")

    def leave(self) -> None:
        self.depth -= 1


def too_long(length: int, limit: int, what: str) -> BudgetExceeded:
    """The error for a value of `length` characters built past `limit`."""
    return BudgetExceeded(OUTPUT_BYTES, f"template render budget exceeded: {what} would be longer than "
                                        f"{limit:,} characters (limit: templates.{OUTPUT_BYTES})")


class BoundedText:
    """A string built from pieces for a render's `meter` (None: unbounded).

    Refused as soon as it passes the longest value the meter allows, and
    every piece is a step, so building a long value also watches the clock.
    """

    def __init__(self, meter: Meter | None, what: str) -> None:
        self._meter = meter
        self._limit = meter.room() if meter is not None else None
        self._what = what
        self._pieces: list[str] = []
        self.length = 0

    def add(self, piece: str) -> None:
        self.check(len(piece))
        self.length += len(piece)
        self._pieces.append(piece)
        if self._meter is not None:
            self._meter.tick()

    def check(self, extra: int) -> None:
        """Refuse before building a piece known to be `extra` characters long."""
        if self._limit is not None and self.length + extra > self._limit:
            raise too_long(self.length + extra, self._limit, self._what)

    def text(self) -> str:
        return "".join(self._pieces)
