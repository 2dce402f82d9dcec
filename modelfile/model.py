"""The typed result of reading a Modelfile: `Modelfile`, `Message`, `Diagnostic`.

These are plain frozen values: they know nothing of the syntax they came
from (see `syntax.py`) nor of how they are written back (`formatter.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ParameterValue = int | float | bool | str | tuple[str, ...]

MESSAGE_ROLES: tuple[str, ...] = ("system", "user", "assistant")
"""The roles a MESSAGE may have; the same three Ollama accepts."""


@dataclass(frozen=True)
class Message:
    """One MESSAGE line: an example turn of conversation shipped with the model."""

    role: str
    content: str


@dataclass(frozen=True)
class Diagnostic:
    """A warning about a Modelfile that was still accepted (deprecated parameter, repeats...)."""

    filename: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}: warning: {self.message}"


@dataclass(frozen=True)
class SourceLocation:
    """Where a value was written (1-based line and column, in characters)."""

    filename: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Modelfile:
    """A Modelfile, typed and checked.

    ``base`` is FROM as written (a model name or a path, resolved later by the
    registry). ``parameters`` holds only the parameters the file sets, already
    typed (``stop`` is a tuple of strings). ``warnings`` does not take part in
    equality: two files that mean the same thing compare equal.
    """

    base: str
    parameters: dict[str, ParameterValue] = field(default_factory=dict, hash=False)
    template: str | None = None
    system: str | None = None
    adapters: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    messages: tuple[Message, ...] = ()
    requires: str | None = None
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False, repr=False)
    # Where FROM's value was written, for errors found when it is resolved (a missing file).
    base_location: SourceLocation | None = field(default=None, compare=False, repr=False)
    # Where TEMPLATE's text starts (after its quotes) (None when not read from one), so an
    # error inside the template can point at the Modelfile's own line and column.
    template_location: SourceLocation | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Accept lists from callers but store tuples, so the value stays frozen
        # and equal to what parse() builds.
        object.__setattr__(self, "parameters", dict(self.parameters))
        object.__setattr__(self, "adapters", tuple(self.adapters))
        object.__setattr__(self, "licenses", tuple(self.licenses))
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        stop = self.parameters.get("stop")
        if isinstance(stop, list):
            self.parameters["stop"] = tuple(stop)
        if self.parameters.get("stop") == ():
            # No stop sequences and an empty list of them mean the same file.
            del self.parameters["stop"]
