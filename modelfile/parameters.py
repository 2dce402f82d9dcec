"""The PARAMETER table: every option a Modelfile (or a request) may set, typed and bounded.

`coerce_parameter(name, value)` is the one place a parameter value is
checked. The Modelfile parser feeds it the text after ``PARAMETER name``;
the engine and daemon feed it per-request overrides, which may already be
typed (``0.7``, ``True``, ``["</s>"]``) or strings. Either way the result is
the canonical Python value, or a `ParameterError` naming the option.

Ranges are inclusive. Where llama.cpp gives a value no natural upper bound
the limit is the C ``int32`` range the engine passes it through.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from types import MappingProxyType
from collections.abc import Mapping
from typing import Literal

from .errors import ParameterError, shown
from .model import ParameterValue

ParameterType = Literal["int", "float", "bool", "string-list"]

_INT32_MAX = 2**31 - 1
_UINT32_MAX = 2**32 - 1

Number = int | float


@dataclass(frozen=True)
class ParameterSpec:
    """One row of the table: name, type, Ollama's default, inclusive bounds, help."""

    name: str
    type: ParameterType
    default: ParameterValue | None
    minimum: Number | None
    maximum: Number | None
    help: str


def _spec(name: str, type_: ParameterType, default: ParameterValue | None,
          minimum: Number | None, maximum: Number | None, help_: str) -> ParameterSpec:
    return ParameterSpec(name, type_, default, minimum, maximum, help_)


_TABLE = (
    _spec("num_ctx", "int", 4096, 1, 2**24,
          "Context window in tokens (prompt plus reply)."),
    _spec("num_batch", "int", 512, 1, 2**20,
          "Tokens evaluated per decode step while reading the prompt."),
    _spec("num_gpu", "int", -1, -1, _INT32_MAX,
          "Layers to offload to the GPU; -1 lets ingot decide, 0 keeps the model on the CPU."),
    _spec("main_gpu", "int", 0, 0, 255,
          "Index of the GPU that holds small tensors and scratch buffers."),
    _spec("use_mmap", "bool", None, None, None,
          "Map the weights file into memory instead of reading it; unset lets ingot decide."),
    _spec("num_thread", "int", 0, 0, 4096,
          "CPU threads for computation; 0 lets ingot decide (physical cores)."),
    _spec("num_keep", "int", 4, -1, _INT32_MAX,
          "Prompt tokens kept when the context overflows; -1 keeps the whole prompt."),
    _spec("seed", "int", -1, -1, _UINT32_MAX,
          "Random seed for sampling; -1 picks a new one per request."),
    _spec("num_predict", "int", -1, -2, _INT32_MAX,
          "Most tokens to generate; -1 means no limit, -2 fills the context."),
    _spec("top_k", "int", 40, 0, _INT32_MAX,
          "Sample only from the k most likely tokens; 0 disables the filter."),
    _spec("top_p", "float", 0.9, 0.0, 1.0,
          "Nucleus sampling: keep the most likely tokens whose probabilities add up to p."),
    _spec("min_p", "float", 0.0, 0.0, 1.0,
          "Drop tokens less likely than min_p times the most likely token."),
    _spec("typical_p", "float", 1.0, 0.0, 1.0,
          "Locally typical sampling; 1.0 disables it."),
    _spec("repeat_last_n", "int", 64, -1, _INT32_MAX,
          "How many recent tokens the repetition penalties look at; 0 disables, -1 means num_ctx."),
    _spec("temperature", "float", 0.8, 0.0, 100.0,
          "Randomness of sampling; 0 always picks the most likely token."),
    _spec("repeat_penalty", "float", 1.0, 0.0, 10.0,
          "Penalty for tokens seen in the last repeat_last_n tokens; 1.0 disables it."),
    _spec("presence_penalty", "float", 0.0, -2.0, 2.0,
          "Flat penalty for any token already present in the recent window."),
    _spec("frequency_penalty", "float", 0.0, -2.0, 2.0,
          "Penalty that grows with how often a token already appeared in the recent window."),
    _spec("stop", "string-list", (), None, None,
          "A stop sequence; repeat the PARAMETER line to add more. Generation ends when one appears."),
)

PARAMETERS: Mapping[str, ParameterSpec] = MappingProxyType({spec.name: spec for spec in _TABLE})
"""Every parameter ingot understands, by name."""

DEPRECATED_PARAMETERS: frozenset[str] = frozenset({
    "mirostat", "mirostat_eta", "mirostat_tau", "penalize_newline", "low_vram", "f16_kv",
    "logits_all", "vocab_only", "use_mlock", "numa", "num_gqa", "rope_frequency_base",
    "rope_frequency_scale", "tfs_z",
})
"""Parameters Ollama once had: a Modelfile using them gets a warning and they are dropped."""

_UNSUPPORTED: Mapping[str, str] = MappingProxyType({
    "draft_num_predict": "it tunes DRAFT models, which ingot does not support (yet)",
})

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE_TEXT = frozenset({"1", "t", "true"})
_FALSE_TEXT = frozenset({"0", "f", "false"})


def closest_parameter(name: str) -> str | None:
    """The valid parameter name closest to `name`, if any is close."""
    matches = difflib.get_close_matches(name.lower(), list(PARAMETERS), n=1, cutoff=0.6)
    return matches[0] if matches else None


def lookup_parameter(name: str) -> ParameterSpec:
    """The spec for `name` (case-insensitive), or a `ParameterError` that suggests a fix."""
    key = name.lower()
    spec = PARAMETERS.get(key)
    if spec is not None:
        return spec
    if key in DEPRECATED_PARAMETERS:
        raise ParameterError(key, f"parameter '{key}' is deprecated and no longer has any effect",
                             kind="deprecated", hint="remove it")
    if key in _UNSUPPORTED:
        raise ParameterError(key, f"parameter '{key}' is not supported: {_UNSUPPORTED[key]}",
                             kind="unsupported", hint="remove it")
    close = closest_parameter(key)
    hint = f"did you mean '{close}'? " if close else ""
    hint += "valid parameters: " + ", ".join(sorted(PARAMETERS))
    raise ParameterError(name, f"unknown parameter {shown(name)}", kind="unknown", hint=hint)


def coerce_parameter(name: str, value: object) -> ParameterValue:
    """Check `value` for parameter `name` and return it typed.

    Strings are parsed the way a Modelfile writes them (``"4096"``,
    ``"0.7"``, ``"true"``); typed values are accepted as they are (an int
    where a float is expected, a whole float where an int is). ``stop``
    accepts one string or a list of strings and always returns a tuple.
    """
    spec = lookup_parameter(name)
    if spec.type == "string-list":
        return _coerce_stop(spec, value)
    if spec.type == "bool":
        return _coerce_bool(spec, value)
    number: Number = _coerce_int(spec, value) if spec.type == "int" else _coerce_float(spec, value)
    _check_range(spec, number)
    return number


def render_parameter(value: ParameterValue) -> str:
    """The text `coerce_parameter` reads back as `value` (one element for ``stop``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _type_error(spec: ParameterSpec, expected: str, value: object) -> ParameterError:
    got = shown(value) if isinstance(value, str) else repr(value)
    return ParameterError(spec.name, f"parameter '{spec.name}' expects {expected}, got {got}",
                          kind="type", hint=f"for example: {spec.name} {_example(spec)}")


def _example(spec: ParameterSpec) -> str:
    if spec.default is None or spec.default == ():
        return {"bool": "true", "string-list": '"</s>"'}.get(spec.type, "1")
    return render_parameter(spec.default)


def _coerce_int(spec: ParameterSpec, value: object) -> int:
    if isinstance(value, bool):
        raise _type_error(spec, "a whole number", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        # JSON and protobuf Struct carry every number as a double.
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    raise _type_error(spec, "a whole number", value)


def _coerce_float(spec: ParameterSpec, value: object) -> float:
    if isinstance(value, bool):
        raise _type_error(spec, "a number", value)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise _type_error(spec, "a number", value)
    if not math.isfinite(number):
        raise _type_error(spec, "a finite number", value)
    return number


def _coerce_bool(spec: ParameterSpec, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_TEXT:
            return True
        if text in _FALSE_TEXT:
            return False
    raise _type_error(spec, "true or false", value)


def _coerce_stop(spec: ParameterSpec, value: object) -> tuple[str, ...]:
    items: tuple[object, ...]
    if isinstance(value, str):
        items = (value,)
    elif isinstance(value, (list, tuple)):
        items = tuple(value)
    else:
        raise _type_error(spec, "a string or a list of strings", value)
    for item in items:
        if not isinstance(item, str):
            raise _type_error(spec, "strings", item)
        if item == "":
            raise ParameterError(spec.name, "parameter 'stop' must not be empty",
                                 kind="range", hint='give the text that ends a reply, e.g. stop "</s>"')
    return tuple(items)  # type: ignore[arg-type]


def _check_range(spec: ParameterSpec, number: Number) -> None:
    low, high = spec.minimum, spec.maximum
    if (low is None or number >= low) and (high is None or number <= high):
        return
    if low is not None and high is not None:
        expected = f"between {render_parameter(low)} and {render_parameter(high)}"
    elif low is not None:
        expected = f"at least {render_parameter(low)}"
    else:
        expected = f"at most {render_parameter(high)}"  # type: ignore[arg-type]
    raise ParameterError(spec.name,
                         f"parameter '{spec.name}' must be {expected}, got {render_parameter(number)}",
                         kind="range", hint=spec.help)
