"""`format_modelfile(m)`: the canonical text of a `Modelfile`.

The canonical form, which `ingot fmt` writes:

* instructions in a fixed order: FROM, ADAPTER..., PARAMETER... (sorted by
  name; ``stop`` lines in their order), TEMPLATE, SYSTEM, MESSAGE...,
  LICENSE..., REQUIRES; a blank line between these groups;
* upper-case instruction names, lower-case parameter names and roles, one
  space between fields, LF line ends, UTF-8, a final newline, no comments;
* values bare when that reads back the same (one line, no leading or
  trailing blank, not starting with a quote, not empty); otherwise
  ``"..."`` for one line without quotes, else ``\"\"\"...\"\"\"``.

Modelfile syntax has no escapes, so a few values cannot be written at all:
text containing a carriage return or NUL, and text in which ``\"\"\"`` is
followed by blanks and a line end (that would close a triple-quoted value
early; such text cannot be in a parsed Modelfile either). Those, and
objects `parse` would never build (an unknown parameter, an empty FROM...),
raise `FormatError`. For every Modelfile `parse` returns,
``parse(format_modelfile(m)) == m``.
"""

from __future__ import annotations

import re

from .errors import FormatError, ParameterError
from .model import MESSAGE_ROLES, Modelfile
from .parameters import coerce_parameter, render_parameter
from .semantics import is_valid_version

_EARLY_CLOSE = re.compile(r'"""[ \t]*\n')


def format_modelfile(m: Modelfile) -> str:
    """The canonical Modelfile text for `m`; raises `FormatError` if `m` cannot be written."""
    groups: list[list[str]] = [
        [f"FROM {_required(m.base, 'FROM')}"]
        + [f"ADAPTER {_required(adapter, 'ADAPTER')}" for adapter in m.adapters],
        _parameter_lines(m),
        [] if m.template is None else [f"TEMPLATE {quote_value(m.template, 'TEMPLATE')}"],
        [] if m.system is None else [f"SYSTEM {quote_value(m.system, 'SYSTEM')}"],
        [_message_line(message.role, message.content) for message in m.messages],
        [f"LICENSE {quote_value(text, 'LICENSE')}" for text in m.licenses],
        [] if m.requires is None else [f"REQUIRES {_requires(m.requires)}"],
    ]
    return "\n\n".join("\n".join(group) for group in groups if group) + "\n"


def quote_value(value: str, what: str = "value") -> str:
    """`value` as Modelfile text that reads back exactly: bare, ``"..."`` or ``\"\"\"...\"\"\"``."""
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a string, not {type(value).__name__}")
    for char, name in (("\r", "a carriage return"), ("\x00", "a NUL character")):
        if char in value:
            raise FormatError(f"{what} contains {name}, which a Modelfile cannot hold")
    if _EARLY_CLOSE.search(value):
        raise FormatError(f'{what} contains """ followed by the end of a line, which a Modelfile '
                          "cannot hold (there are no escape sequences)")
    if value and "\n" not in value and value[0] not in '" \t' and value[-1] not in " \t":
        return value
    if "\n" not in value and '"' not in value:
        return f'"{value}"'
    return f'"""{value}"""'


def _required(value: str, what: str) -> str:
    if not isinstance(value, str) or value.strip(" \t\n") == "":
        raise FormatError(f"{what} needs a non-empty value, got {value!r}")
    return quote_value(value, what)


def _parameter_lines(m: Modelfile) -> list[str]:
    lines: list[str] = []
    for name in sorted(m.parameters):
        try:
            value = coerce_parameter(name, m.parameters[name])
        except ParameterError as exc:
            raise FormatError(str(exc)) from None
        if name != name.lower():
            raise FormatError(f"parameter names are lower-case: write '{name.lower()}', not '{name}'")
        what = f"PARAMETER {name}"
        if isinstance(value, tuple):
            lines.extend(f"{what} {quote_value(item, what)}" for item in value)
        else:
            lines.append(f"{what} {quote_value(render_parameter(value), what)}")
    return lines


def _message_line(role: str, content: str) -> str:
    if role not in MESSAGE_ROLES:
        raise FormatError(f"message role must be one of {', '.join(MESSAGE_ROLES)}, got {role!r}")
    return f"MESSAGE {role} {quote_value(content, f'MESSAGE {role}')}"


def _requires(version: str) -> str:
    if not isinstance(version, str) or version.startswith("v") or not is_valid_version(version):
        raise FormatError(f"REQUIRES must be a version such as 0.14.0 (no leading v), got {version!r}")
    return version
