"""Grammars that constrain what a model writes: values of a JSON schema, or a tool call in its own format.

llama.cpp samples under a GBNF grammar (`llama_sampler_init_grammar` in the
request's sampler chain, see `ingot.daemon.engine.sampling`), so a reply
built this way always parses. JSON schemas become GBNF through
llama-cpp-python's converter (`llama_cpp.llama_grammar.SchemaConverter`).
The converter silently ignores keywords it cannot express (``minimum``,
``multipleOf``, ``not``, ...); such a schema is refused here instead,
naming the keyword's path, so a constrained answer also always validates.

A tool call is written exactly as the model's template writes one (the
pieces `ingot.modelfile.reply.ToolCallFormat` found in the template): for
Hermes ``<tool_call>\\n{"name": "get_weather", "arguments": {...}}\\n</tool_call>``.
When the model thinks first, the grammar lets it: an optional reasoning
block (anything up to the closing tag, matched character by character)
comes before the constrained part.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ingot.daemon.errors import InvalidOptionError
from ingot.modelfile.reply import ThinkingTags, ToolCallFormat

__all__ = ["check_expressible", "json_grammar", "schema_grammar", "tool_call_grammar"]

# Keywords the converter turns into grammar rules.
_EXPRESSED = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
    "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "pattern", "format",
    "minLength", "maxLength",
})
# Keywords that only describe (safe to ignore).
_ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "example", "$schema", "$id", "$comment", "deprecated",
    "readOnly", "writeOnly", "contentMediaType", "contentEncoding", "strict", "name",
})
_FORMATS = frozenset({"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"})
_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _refuse(field: str, path: str, message: str) -> InvalidOptionError:
    return InvalidOptionError(
        f"{field}{path}", message,
        hint="constrained output must always validate, so ingot refuses schema keywords its grammar cannot "
             "enforce; drop the keyword (or, for tools, use tool_choice auto)",
    )


def check_expressible(schema: Any, *, field: str, path: str = "") -> None:
    """Raise InvalidOptionError naming the first part of `schema` the grammar cannot enforce."""
    if schema is True or schema == {}:
        return
    if not isinstance(schema, Mapping):
        raise _refuse(field, path, f"a schema must be an object, not {json.dumps(schema)[:40]}")
    for key, value in schema.items():
        where = f"{path}.{key}"
        if key in _ANNOTATIONS:
            continue
        if key not in _EXPRESSED:
            raise _refuse(field, where, f"the JSON schema keyword {key!r} cannot be enforced by the grammar")
        if key == "type":
            kinds = value if isinstance(value, list) else [value]
            bad = [k for k in kinds if k not in _TYPES]
            if bad:
                raise _refuse(field, where, f"unknown type {bad[0]!r}; use one of {', '.join(sorted(_TYPES))}")
        elif key == "format" and value not in _FORMATS:
            raise _refuse(field, where, f"the string format {value!r} cannot be enforced by the grammar "
                                        f"(it can: {', '.join(sorted(_FORMATS))})")
        elif key == "$ref" and not (isinstance(value, str) and value.startswith("#")):
            raise _refuse(field, where, "only references inside the schema (#/...) are supported")
        elif key in _SCHEMA_MAPS:
            if not isinstance(value, Mapping):
                raise _refuse(field, where, "must be an object of schemas")
            for name, sub in value.items():
                check_expressible(sub, field=field, path=f"{where}.{name}")
        elif key in _SCHEMA_LISTS:
            if not isinstance(value, list) or not value:
                raise _refuse(field, where, "must be a non-empty list of schemas")
            for index, sub in enumerate(value):
                check_expressible(sub, field=field, path=f"{where}[{index}]")
        elif key in ("items", "additionalProperties") and not isinstance(value, bool):
            if isinstance(value, list):
                for index, sub in enumerate(value):
                    check_expressible(sub, field=field, path=f"{where}[{index}]")
            else:
                check_expressible(value, field=field, path=where)


# ---- GBNF text ----------------------------------------------------------------------------------

_LITERAL_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    out = []
    for char in text:
        if char in _LITERAL_ESCAPES:
            out.append(_LITERAL_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _class_char(char: str) -> str:
    if char.isalnum() and char.isascii():
        return char
    if ord(char) < 0x80:
        return f"\\x{ord(char):02x}"
    return char


def _sequence(*parts: str) -> str:
    return " ".join(p for p in parts if p and p != '""')


def _until(tag: str, prefix: str) -> list[tuple[str, str]]:
    """Rules ``{prefix}0 ::= ...`` matching any text up to and including the first `tag`.

    One rule per matched prefix of the tag (a KMP automaton), so no text
    containing the tag can slip through and the tag itself always ends it.
    """
    chars = sorted(set(tag))

    def after(matched: int, char: str) -> int:
        seen = tag[:matched] + char
        for size in range(min(len(seen), len(tag)), 0, -1):
            if seen.endswith(tag[:size]):
                return size
        return 0

    rules = []
    for matched in range(len(tag)):
        alternatives = [f"[^{''.join(_class_char(c) for c in chars)}] {prefix}0"]
        for char in chars:
            target = after(matched, char)
            alternatives.append(literal(char) if target == len(tag) else f"{literal(char)} {prefix}{target}")
        rules.append((f"{prefix}{matched}", " | ".join(alternatives)))
    return rules


def _assemble(body: str, rules: Sequence[tuple[str, str]], converted: str,
              thinking: ThinkingTags | None, opened: bool) -> str:
    lines = []
    if thinking is None:
        lines.append(f"root ::= {body}")
    else:
        reasoning = _sequence("think-0", "think-gap")
        head = reasoning if opened else f"( {_sequence(literal(thinking.open), reasoning)} )?"
        lines.append(f"root ::= {head} {body}")
        lines.append("think-gap ::= [ \\t\\n]{0,8}")
        lines.extend(f"{name} ::= {rule}" for name, rule in _until(thinking.close, "think-"))
    lines.extend(f"{name} ::= {rule}" for name, rule in rules)
    lines.append(converted)
    return "\n".join(lines) + "\n"


def _converter() -> Any:
    # Pure-Python converter shipped with llama-cpp-python, imported only when a grammar is built.
    from llama_cpp.llama_grammar import SchemaConverter

    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def _visit(converter: Any, schema: Any, name: str, *, field: str) -> str:
    try:
        resolved = converter.resolve_refs(json.loads(json.dumps(schema)), name)
        return str(converter.visit(resolved, name))
    except Exception as exc:  # noqa: BLE001 - the converter raises bare exceptions (and asserts) on bad schemas
        raise InvalidOptionError(field, f"the JSON schema cannot be turned into a grammar: {exc}") from None


def schema_grammar(schema: Any, *, field: str = "format", thinking: ThinkingTags | None = None,
                   thinking_opened: bool = False) -> str:
    """GBNF for values of `schema` (after an optional reasoning block)."""
    check_expressible(schema, field=field)
    converter = _converter()
    answer = _visit(converter, schema, "answer", field=field)
    return _assemble(answer, (), converter.format_grammar(), thinking, thinking_opened)


def json_grammar(*, thinking: ThinkingTags | None = None, thinking_opened: bool = False) -> str:
    """GBNF for any JSON object (``format: "json"``) after an optional reasoning block."""
    return schema_grammar({"type": "object"}, thinking=thinking, thinking_opened=thinking_opened)


def tool_call_grammar(fmt: ToolCallFormat, tools: Sequence[tuple[str, Mapping[str, Any]]], *,
                      parallel: bool, field: str = "tools", thinking: ThinkingTags | None = None,
                      thinking_opened: bool = False) -> str:
    """GBNF for one call (or several, with `parallel`) of `tools` ((name, parameters schema) pairs)."""
    converter = _converter()
    rules = []
    alternatives = []
    for index, (name, parameters) in enumerate(tools):
        where = f"{field}[{index}].function.parameters"
        check_expressible(parameters, field=where)
        arguments = _visit(converter, parameters, f"tool{index}-arguments", field=where)
        rules.append((f"call{index}", _sequence(literal(fmt.call_prefix + name + fmt.call_infix), arguments,
                                                literal(fmt.call_suffix))))
        alternatives.append(f"call{index}")
    rules.append(("call", " | ".join(alternatives)))
    body = _sequence(literal(fmt.lead), "call", f"( {literal(fmt.between)} call )*" if parallel else "",
                     literal(fmt.trail))
    if parallel and not fmt.between:
        body = _sequence(literal(fmt.lead), "call+", literal(fmt.trail))
    return _assemble(body, rules, converter.format_grammar(), thinking, thinking_opened)
