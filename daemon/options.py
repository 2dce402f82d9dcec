"""Request options: proto `Options` + the package's PARAMETERs + defaults -> what the engine takes.

Precedence, as in Ollama: a request's option beats the Modelfile's PARAMETER,
which beats the table default (`ingot.modelfile.parameters.PARAMETERS`).
Every value goes through `coerce_parameter`, so a bad one fails with a
`ParameterError` naming the option (INVALID_ARGUMENT to the client).

Options split in two: load-time ones (`LoadSettings`: a change reloads the
model) and per-request sampling (`SamplingOptions`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ingot.daemon.engine.types import Priority, SamplingOptions
from ingot.daemon.errors import InvalidOptionError
from ingot.daemon.grammar import schema_grammar
from ingot.modelfile.model import ParameterValue
from ingot.modelfile.parameters import PARAMETERS, coerce_parameter
from ingot.proto.ingot.v1 import common_pb2

__all__ = [
    "LOAD_TIME_OPTIONS",
    "LoadSettings",
    "ResolvedOptions",
    "options_from_proto",
    "options_to_proto",
    "priority_from_proto",
    "resolve_format",
    "resolve_options",
]

LOAD_TIME_OPTIONS = frozenset({"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread"})


@dataclass(frozen=True)
class LoadSettings:
    """The load-time options of a request, before the offload planner turns num_gpu into layers."""

    num_ctx: int
    num_batch: int
    num_gpu: int  # -1: the planner decides
    main_gpu: int
    use_mmap: bool
    num_thread: int | None  # None: the engine decides


@dataclass(frozen=True)
class ResolvedOptions:
    load: LoadSettings
    sampling: SamplingOptions
    num_keep: int


def options_from_proto(options: common_pb2.Options | None) -> dict[str, ParameterValue]:
    """The options a request sets explicitly, checked and typed, by parameter name."""
    if options is None:
        return {}
    values: dict[str, ParameterValue] = {}
    for field, value in options.ListFields():
        if field.name == "priority":
            continue  # scheduling, not a parameter: `priority_from_proto`
        if field.name == "stop":
            if value:
                values["stop"] = coerce_parameter("stop", list(value))
            continue
        values[field.name] = coerce_parameter(field.name, value)
    return values


def priority_from_proto(options: common_pb2.Options | None) -> Priority:
    """The request's priority; unset and PRIORITY_UNSPECIFIED mean interactive."""
    if options is None or not options.HasField("priority"):
        return Priority.INTERACTIVE
    if options.priority == common_pb2.PRIORITY_BATCH:
        return Priority.BATCH
    if options.priority in (common_pb2.PRIORITY_UNSPECIFIED, common_pb2.PRIORITY_INTERACTIVE):
        return Priority.INTERACTIVE
    raise InvalidOptionError("priority", f"unknown priority {options.priority}", hint="use PRIORITY_INTERACTIVE or PRIORITY_BATCH")


def options_to_proto(values: Mapping[str, ParameterValue]) -> common_pb2.Options:
    """The reverse, for Show and ListRunning; names the message has no field for are skipped."""
    message = common_pb2.Options()
    known = {f.name for f in common_pb2.Options.DESCRIPTOR.fields}
    for name, value in values.items():
        if name not in known:
            continue
        if name == "stop":
            message.stop.extend(value if isinstance(value, tuple) else (str(value),))
        else:
            setattr(message, name, value)
    return message


def _merged(modelfile_parameters: Mapping[str, ParameterValue], overrides: Mapping[str, ParameterValue]) -> dict[str, ParameterValue]:
    merged: dict[str, ParameterValue] = {
        name: spec.default for name, spec in PARAMETERS.items() if spec.default is not None
    }
    for name, value in modelfile_parameters.items():
        merged[name] = coerce_parameter(name, value)
    merged.update(overrides)
    return merged


def resolve_options(
    modelfile_parameters: Mapping[str, ParameterValue],
    overrides: Mapping[str, ParameterValue],
    *,
    json_output: bool = False,
    grammar: str | None = None,
) -> ResolvedOptions:
    """Merge and convert; raises ParameterError naming a bad option."""
    values = _merged(modelfile_parameters, overrides)
    num_ctx = int(values["num_ctx"])  # type: ignore[arg-type]
    num_thread = int(values["num_thread"])  # type: ignore[arg-type]
    use_mmap = values.get("use_mmap")
    load = LoadSettings(
        num_ctx=num_ctx,
        num_batch=int(values["num_batch"]),  # type: ignore[arg-type]
        num_gpu=int(values["num_gpu"]),  # type: ignore[arg-type]
        main_gpu=int(values["main_gpu"]),  # type: ignore[arg-type]
        use_mmap=True if use_mmap is None else bool(use_mmap),
        num_thread=num_thread or None,
    )
    seed = int(values["seed"])  # type: ignore[arg-type]
    num_predict = int(values["num_predict"])  # type: ignore[arg-type]
    repeat_last_n = int(values["repeat_last_n"])  # type: ignore[arg-type]
    sampling = SamplingOptions(
        temperature=float(values["temperature"]),  # type: ignore[arg-type]
        top_k=int(values["top_k"]),  # type: ignore[arg-type]
        top_p=float(values["top_p"]),  # type: ignore[arg-type]
        min_p=float(values["min_p"]),  # type: ignore[arg-type]
        typical_p=float(values["typical_p"]),  # type: ignore[arg-type]
        repeat_penalty=float(values["repeat_penalty"]),  # type: ignore[arg-type]
        repeat_last_n=num_ctx if repeat_last_n == -1 else repeat_last_n,
        presence_penalty=float(values["presence_penalty"]),  # type: ignore[arg-type]
        frequency_penalty=float(values["frequency_penalty"]),  # type: ignore[arg-type]
        seed=None if seed == -1 else seed,
        # -2 ("fill the context") and -1 ("no limit") both run until a stop
        # condition or the end of the context window.
        num_predict=-1 if num_predict < 0 else num_predict,
        stop=tuple(values.get("stop", ())),  # type: ignore[arg-type]
        json_output=json_output,
        grammar=grammar,
    )
    return ResolvedOptions(load=load, sampling=sampling, num_keep=int(values["num_keep"]))  # type: ignore[arg-type]


def resolve_format(text: str) -> tuple[bool, str | None]:
    """`format` of a request -> (json_output, GBNF grammar or None).

    "" is free text, "json" any JSON value, anything else must be a JSON
    schema the output is constrained to.
    """
    raw = text.strip()
    if not raw:
        return False, None
    if raw == "json":
        return True, None
    try:
        schema = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidOptionError(
            "format", f"not 'json' and not a JSON schema ({exc.msg} at column {exc.colno})",
            hint='use format "json" or a JSON schema such as {"type": "object"}',
        ) from None
    if not isinstance(schema, dict):
        raise InvalidOptionError("format", "a JSON schema must be an object", hint='e.g. {"type": "object"}')
    # Refuses schema keywords the grammar cannot enforce, naming them (see ingot.daemon.grammar).
    return False, schema_grammar(schema, field="format")
