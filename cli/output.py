"""Shared output helpers for `ingot` commands: JSON, aligned tables, human sizes and times, user errors.

A user error (bad input, missing model, unreadable file) is printed as
`error: <message>` on stderr and the command exits 1, never with a
traceback: wrap a handler in `@user_errors()` to get that.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import IO, Any, TypeVar

__all__ = [
    "error",
    "human_ago",
    "human_size",
    "print_json",
    "print_table",
    "user_error_types",
    "user_errors",
]

Handler = TypeVar("Handler", bound=Callable[..., int])


def print_json(data: Any, *, file: IO[str] | None = None) -> None:
    """Print `data` as indented JSON (keys in the order given) followed by a newline."""
    out = file or sys.stdout
    out.write(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    out.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, file: IO[str] | None = None) -> None:
    """Print rows as plain left-aligned columns under upper-case headers (greppable, like `docker ps`)."""
    out = file or sys.stdout
    table = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        out.write("   ".join(cells).rstrip() + "\n")


def human_size(n: int) -> str:
    """Bytes in decimal units, as Ollama and Docker show them: `512 B`, `4.1 MB`, `1.2 GB`."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000 or unit == "PB":
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def human_ago(timestamp: str | None, *, now: datetime | None = None) -> str:
    """An RFC 3339 UTC timestamp as `3 minutes ago`; `-` when unknown or unparsable."""
    if not timestamp:
        return "-"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    seconds = int(((now or datetime.now(timezone.utc)) - then).total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 60:
        return "just now" if seconds < 5 else f"{seconds} seconds ago"
    for size, unit in _TIME_UNITS:
        if seconds >= size:
            count = seconds // size
            if count == 1:
                return f"{'an' if unit == 'hour' else 'a'} {unit} ago"
            return f"{count} {unit}s ago"
    raise AssertionError("unreachable")


_TIME_UNITS = ((365 * 86400, "year"), (30 * 86400, "month"), (7 * 86400, "week"), (86400, "day"), (3600, "hour"), (60, "minute"))


def error(message: object) -> None:
    """Print `error: <message>` on stderr."""
    print(f"error: {message}", file=sys.stderr)


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input or state, not a bug: reported without a traceback."""
    from ingot.modelfile.errors import FormatError, ModelfileError, ParameterError
    from ingot.registry.errors import IngotError
    from ingot.registry.gguf_info import GGUFError
    from ingot.registry.quantize import QuantizeError

    return (IngotError, ModelfileError, ParameterError, FormatError, GGUFError, QuantizeError, OSError)


def _one_message(exc: BaseException) -> str:
    from ingot.modelfile.errors import ModelfileError

    text = str(exc) or type(exc).__name__
    if isinstance(exc, ModelfileError):
        return text  # file:line:col, the line and a caret: meant to span lines
    return "; ".join(line.removeprefix("hint: ").strip() for line in text.splitlines() if line.strip())


def user_errors(*extra: type[BaseException] | str) -> Callable[[Handler], Handler]:
    """Decorate a command handler: known user errors (plus `extra`) print one `error:` line and return 1.

    An `extra` may be named as `"package.module:ClassName"` instead of passed
    as a class: it is imported only when an exception reaches the handler's
    edge, so a command module need not load a heavy library (grpc, jinja2)
    when the parser is built just to name the error type it reports.
    """
    for name in extra:
        if isinstance(name, str) and name.count(":") != 1:
            raise ValueError(f"user_errors({name!r}): name an exception as 'package.module:ClassName'")

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> int:
            try:
                return handler(*args, **kwargs)
            except user_error_types() + _exception_types(extra) as exc:
                error(_one_message(exc))
                return 1

        return run  # type: ignore[return-value]

    return decorate


def _exception_types(extra: tuple[type[BaseException] | str, ...]) -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = []
    for entry in extra:
        if isinstance(entry, str):
            module, _, name = entry.partition(":")
            entry = getattr(importlib.import_module(module), name)
            if not (isinstance(entry, type) and issubclass(entry, BaseException)):
                raise TypeError(f"user_errors: {module}:{name} is not an exception class")
        types.append(entry)
    return tuple(types)
