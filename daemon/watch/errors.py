"""Where something went wrong, and what the watcher reports about it.

::

    IngotError (ingot.registry.errors)
    └── ConfigError        config.yaml / ingot.yaml that cannot be used: file:line:col, message, hint

`Location` is a 1-based (file, line, column); `Problem` is one error the
watcher keeps visible in its status (a Modelfile that does not parse, a
missing weight file, a failed push...) until the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ingot.registry.errors import IngotError

__all__ = ["ConfigError", "Location", "Problem", "ProblemKind"]

ProblemKind = Literal["modelfile", "settings", "inputs", "build", "push", "reload", "conflict"]


@dataclass(frozen=True)
class Location:
    """A place in a file; `line` and `column` are 1-based."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    @classmethod
    def start_of(cls, path: str | Path) -> Location:
        return cls(str(path), 1, 1)


class ConfigError(IngotError, ValueError):
    """A configuration file (or option) that cannot be used; `str()` starts with file:line:col."""

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None) -> None:
        self.location = location
        where = f"{location}: " if location is not None else ""
        IngotError.__init__(self, where + message, hint=hint)
        self.message = message

    def problem(self, kind: ProblemKind = "settings") -> Problem:
        return Problem.at(kind, self.location, self.message, self.hint)


@dataclass(frozen=True)
class Problem:
    """One error kept in the watcher's status until what caused it is fixed."""

    kind: ProblemKind
    message: str
    hint: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @classmethod
    def at(cls, kind: ProblemKind, location: Location | None, message: str, hint: str | None = None) -> Problem:
        if location is None:
            return cls(kind, message, hint)
        return cls(kind, message, hint, location.file, location.line, location.column)

    @property
    def location(self) -> Location | None:
        if self.file is None:
            return None
        return Location(self.file, self.line or 1, self.column or 1)

    def __str__(self) -> str:
        where = f"{self.location}: " if self.file is not None else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "hint": self.hint,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Problem:
        return cls(
            kind=data.get("kind", "build"),
            message=str(data.get("message", "")),
            hint=data.get("hint"),
            file=data.get("file"),
            line=data.get("line"),
            column=data.get("column"),
        )
