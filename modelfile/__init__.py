"""The Modelfile language: parse a Modelfile into a typed `Modelfile`, and write one back.

::

    from ingot.modelfile import parse, parse_file, format_modelfile

    m = parse_file("Modelfile")          # raises ModelfileError (file:line:col, hint)
    m.base, m.parameters["num_ctx"], m.system, m.warnings
    text = format_modelfile(m)            # canonical form; parse(text) == m

The language is Ollama's (see docs/modelfile.md): FROM, PARAMETER, TEMPLATE,
SYSTEM, ADAPTER, LICENSE, MESSAGE, REQUIRES. DRAFT, RENDERER and PARSER are
recognised and refused: ingot does not support them (yet).
"""

from __future__ import annotations

import os

from .errors import FormatError, ModelfileError, ParameterError
from .formatter import format_modelfile
from .model import MESSAGE_ROLES, Diagnostic, Message, Modelfile, ParameterValue
from .parameters import (
    DEPRECATED_PARAMETERS,
    PARAMETERS,
    ParameterSpec,
    coerce_parameter,
    lookup_parameter,
)
from .semantics import build_modelfile
from .syntax import parse_document

__all__ = [
    "DEPRECATED_PARAMETERS",
    "MESSAGE_ROLES",
    "PARAMETERS",
    "Diagnostic",
    "FormatError",
    "Message",
    "Modelfile",
    "ModelfileError",
    "ParameterError",
    "ParameterSpec",
    "ParameterValue",
    "coerce_parameter",
    "format_modelfile",
    "lookup_parameter",
    "parse",
    "parse_file",
]


def parse(source: str | bytes, *, filename: str = "<string>") -> Modelfile:
    """Read a Modelfile from text or bytes (UTF-8, or UTF-16 with a BOM).

    Raises `ModelfileError` for anything wrong with it; `filename` only labels
    the error messages and warnings.
    """
    return build_modelfile(parse_document(source, filename=filename))


def parse_file(path: str | os.PathLike[str]) -> Modelfile:
    """Read the Modelfile at `path`; `OSError` if it cannot be read, else as `parse`."""
    with open(path, "rb") as handle:
        data = handle.read()
    return parse(data, filename=os.fspath(path))
