"""Commands -> a checked `Modelfile`: what each instruction means and which may repeat.

Rules (Ollama's, with ingot's stricter FROM):

* exactly one FROM, with a value;
* PARAMETER names come from the table in `parameters.py`; values are typed
  and range-checked there. ``stop`` accumulates; any other repeated
  parameter keeps its last value (with a warning). Deprecated parameters
  are dropped with a warning;
* TEMPLATE, SYSTEM and REQUIRES keep their last value (with a warning when
  repeated); ADAPTER, LICENSE and MESSAGE accumulate in file order;
* MESSAGE roles are system, user or assistant (Ollama's set, any case);
* REQUIRES is a semantic version (``0.14.0``, a leading ``v`` is dropped);
* DRAFT, RENDERER and PARSER are refused: ingot does not support them (yet).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from .errors import ParameterError, shown
from .model import MESSAGE_ROLES, Diagnostic, Message, Modelfile, ParameterValue, SourceLocation
from .parameters import DEPRECATED_PARAMETERS, coerce_parameter
from .syntax import Command, Document, Source, Word

# Go's golang.org/x/mod/semver, which Ollama uses: "1", "1.2" are shorthands,
# pre-release and build suffixes only with all three numbers.
_NUMBER = r"(?:0|[1-9][0-9]*)"
_IDENT = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"{_NUMBER}(?:\.{_NUMBER}(?:\.{_NUMBER}(?:-{_IDENT}(?:\.{_IDENT})*)?(?:\+{_IDENT}(?:\.{_IDENT})*)?)?)?"
)


def is_valid_version(version: str) -> bool:
    """Whether `version` (without a leading ``v``) is what REQUIRES accepts."""
    return _SEMVER.fullmatch(version) is not None


_UNSUPPORTED_HINTS = {
    "draft": "remove the DRAFT line: ingot has no speculative decoding with a draft model yet",
    "renderer": "remove the RENDERER line: ingot renders prompts with TEMPLATE or the model's "
                "own chat template",
    "parser": "remove the PARSER line: ingot returns the model's output as generated",
}


@dataclass
class _Builder:
    """Accumulates one file's meaning; lives only for one `build_modelfile` call."""

    source: Source
    base: str | None = None
    base_line: int = 0
    base_location: SourceLocation | None = None
    parameters: dict[str, ParameterValue] = field(default_factory=dict)
    parameter_lines: dict[str, int] = field(default_factory=dict)
    template: str | None = None
    template_location: SourceLocation | None = None
    system: str | None = None
    requires: str | None = None
    single_lines: dict[str, int] = field(default_factory=dict)
    adapters: list[str] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)


def build_modelfile(document: Document) -> Modelfile:
    """Check `document`'s commands and build the `Modelfile`, or raise `ModelfileError`."""
    builder = _Builder(document.source)
    for command in document.commands:
        _apply(builder, command)
    if builder.base is None:
        raise document.source.error(
            1, 1, "missing FROM: a Modelfile must name the model it builds on",
            hint="add a line such as 'FROM ./model.gguf' or 'FROM llama3.2' (usually the first line)")
    return Modelfile(
        base=builder.base,
        parameters=builder.parameters,
        template=builder.template,
        template_location=builder.template_location,
        system=builder.system,
        adapters=tuple(builder.adapters),
        licenses=tuple(builder.licenses),
        messages=tuple(builder.messages),
        requires=builder.requires,
        warnings=tuple(builder.warnings),
        base_location=builder.base_location,
    )


def _apply(builder: _Builder, command: Command) -> None:
    source = builder.source
    name = command.instruction
    if name in _UNSUPPORTED_HINTS:
        raise source.error(command.line, command.column,
                           f"{name.upper()} is not supported by ingot (yet)",
                           hint=_UNSUPPORTED_HINTS[name])
    if name == "from":
        _apply_from(builder, command)
    elif name == "adapter":
        builder.adapters.append(_required_value(source, command, "a path to a LoRA adapter (GGUF)"))
    elif name == "license":
        builder.licenses.append(_text(command))
    elif name == "parameter":
        _apply_parameter(builder, command)
    elif name == "message":
        _apply_message(builder, command)
    elif name in ("template", "system"):
        _note_repeat(builder, command)
        setattr(builder, name, _text(command))
        if name == "template":
            builder.template_location = _text_position(source, command)
    elif name == "requires":
        _note_repeat(builder, command)
        builder.requires = _requires(source, command)
    else:  # pragma: no cover - the grammar only produces the instructions handled above
        raise source.error(command.line, command.column, f"unknown instruction '{name}'")


def _apply_from(builder: _Builder, command: Command) -> None:
    base = _required_value(builder.source, command, "a model name or a path to a GGUF file")
    if builder.base is not None:
        raise builder.source.error(
            command.line, command.column,
            f"a second FROM (the first is on line {builder.base_line})",
            hint="a Modelfile builds on exactly one model: keep one FROM line")
    builder.base = base
    builder.base_line = command.line
    assert command.value is not None  # _required_value refused a FROM without one
    builder.base_location = SourceLocation(builder.source.filename, command.value.line, command.value.column)


def _apply_parameter(builder: _Builder, command: Command) -> None:
    source = builder.source
    if command.argument is None:
        raise source.error(command.end_line, command.end_column, "PARAMETER needs a name and a value",
                           hint="for example: PARAMETER temperature 0.7")
    word = command.argument
    key = word.text.lower()
    if command.value is None:
        raise source.error(command.end_line, command.end_column,
                           f"PARAMETER {shown(word.text)} needs a value",
                           hint="write 'PARAMETER name value' on one line")
    if key in DEPRECATED_PARAMETERS:
        builder.warnings.append(source.warning(
            word.line, word.column, f"parameter '{key}' is deprecated and ignored"))
        return
    try:
        value = coerce_parameter(key, command.value.text)
    except ParameterError as exc:
        at = word if exc.kind in ("unknown", "unsupported") else command.value
        raise source.error(at.line, at.column, exc.message, hint=exc.hint) from None
    if key == "stop":
        previous = builder.parameters.get("stop", ())
        builder.parameters["stop"] = tuple(previous) + tuple(value)  # type: ignore[arg-type]
        return
    if key in builder.parameters:
        builder.warnings.append(source.warning(
            word.line, word.column,
            f"parameter '{key}' is set again (first on line {builder.parameter_lines[key]}); "
            "the last value wins"))
    builder.parameters[key] = value
    builder.parameter_lines[key] = word.line


def _apply_message(builder: _Builder, command: Command) -> None:
    source = builder.source
    if command.argument is None:
        raise source.error(command.end_line, command.end_column, "MESSAGE needs a role and content",
                           hint="for example: MESSAGE user Is Toronto in Canada?")
    role = _role(source, command.argument)
    builder.messages.append(Message(role, _text(command)))


def _role(source: Source, word: Word) -> str:
    role = word.text.lower()
    if role in MESSAGE_ROLES:
        return role
    close = difflib.get_close_matches(role, MESSAGE_ROLES, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    hint += "valid roles: " + ", ".join(MESSAGE_ROLES)
    raise source.error(word.line, word.column, f"unknown message role {shown(word.text)}", hint=hint)


def _requires(source: Source, command: Command) -> str:
    version = _required_value(source, command, "the lowest Ollama version the model needs, e.g. 0.14.0")
    bare = version[1:] if version.startswith("v") else version
    if not is_valid_version(bare):
        assert command.value is not None
        raise source.error(command.value.line, command.value.column,
                           f"REQUIRES must be a version such as 0.14.0, got {shown(version)}",
                           hint="use MAJOR.MINOR.PATCH numbers (a leading v is allowed)")
    return bare


def _note_repeat(builder: _Builder, command: Command) -> None:
    name = command.instruction
    first = builder.single_lines.get(name)
    if first is not None:
        builder.warnings.append(builder.source.warning(
            command.line, command.column,
            f"{name.upper()} is given again (first on line {first}); the last one wins"))
    builder.single_lines[name] = command.line


def _text_position(source: Source, command: Command) -> SourceLocation | None:
    value = command.value
    if value is None:
        return None
    skip = {"bare": 0, "quoted": 1, "triple": 3}[value.style]
    return SourceLocation(source.filename, value.line, value.column + skip)


def _text(command: Command) -> str:
    # A text instruction with nothing after it means the empty text, as
    # `SYSTEM ""` does.
    return command.value.text if command.value is not None else ""


def _required_value(source: Source, command: Command, what: str) -> str:
    value = command.value
    if value is None or value.text.strip(" \t\n") == "":
        line, column = (value.line, value.column) if value else (command.end_line, command.end_column)
        raise source.error(line, column, f"{command.instruction.upper()} needs {what}",
                           hint=f"write '{command.instruction.upper()} <value>' on one line")
    return value.text
