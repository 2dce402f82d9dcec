"""Request fields that become the servicers' inputs: options, keep_alive and format.

Every option goes through `ingot.modelfile.parameters.coerce_parameter`, the
same check a Modelfile PARAMETER gets, so a bad value is a 400 naming the
option. Options Ollama once had (mirostat, numa, ...) are accepted and
ignored, as Ollama does; unknown names are an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ingot.daemon.keepalive import KeepAliveError, parse_keep_alive
from ingot.daemon.options import options_to_proto
from ingot.modelfile.errors import ParameterError
from ingot.modelfile.model import ParameterValue
from ingot.modelfile.parameters import DEPRECATED_PARAMETERS, PARAMETERS, coerce_parameter
from ingot.proto.ingot.v1 import common_pb2

from .errors import HttpError

__all__ = ["Entry", "checked_options", "format_text", "keep_alive_text", "option_entries", "options_message"]

_log = logging.getLogger("ingot.daemon.http")


Entry = tuple[str, str, object]  # (field name for error messages, parameter name, value)


def option_entries(values: Mapping[str, Any] | None, *, prefix: str = "", only_known: bool = False) -> list[Entry]:
    """`values` (an `options` object, or top-level fields) as checkable entries.

    With `only_known`, names that are not parameters are left out: top-level
    fields of an OpenAI request include many that are not options at all.
    """
    if not values:
        return []
    entries: list[Entry] = []
    for name, value in values.items():
        key = name.lower()
        if only_known and key not in PARAMETERS and key not in DEPRECATED_PARAMETERS:
            continue
        entries.append((f"{prefix}{name}", key, value))
    return entries


def checked_options(entries: Iterable[Entry]) -> dict[str, ParameterValue]:
    """Check each entry with `coerce_parameter`; later entries win. None values mean "not set"."""
    merged: dict[str, ParameterValue] = {}
    for label, name, value in entries:
        if value is None:
            continue
        try:
            merged[name] = coerce_parameter(name, value)
        except ParameterError as exc:
            if exc.kind == "deprecated":
                _log.info("ignoring deprecated option %r", label)
                continue
            raise HttpError(400, f"invalid option {label!r}: {exc}", param=label) from None
    return merged


def options_message(values: Mapping[str, ParameterValue]) -> common_pb2.Options:
    return options_to_proto(values)


def keep_alive_text(value: str | int | float | None, *, param: str = "keep_alive") -> str | None:
    """A keep_alive as the servicers take it ("5m", "300", "-1"); numbers are seconds, as in Ollama."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise HttpError(400, f"invalid {param}: expected a duration such as '5m' or a number of seconds", param=param)
    text = value if isinstance(value, str) else repr(value)
    try:
        parse_keep_alive(text)
    except KeepAliveError as exc:
        raise HttpError(400, str(exc), param=param) from None
    return text


def format_text(value: str | Mapping[str, Any] | None, *, param: str = "format") -> str:
    """Ollama's `format` ("", "json" or a JSON schema object) as the servicers' string form."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value.strip() not in ("", "json"):
            raise HttpError(400, f"invalid {param} {value!r}: use \"json\" or a JSON schema object", param=param)
        return value.strip()
    return json.dumps(value)
