"""How Go values look from Python while a template runs.

Python values stand in for Go's: ``str`` string, ``int`` int, ``float``
float64, ``bool`` bool, ``bytes`` []byte, ``list``/``tuple`` slices,
``dict`` map[string]any, `GoStruct` subclasses structs. Two sentinels keep
Go's two kinds of "nothing" apart, because templates can tell them apart:

* ``None`` is Go's *invalid* value (what a pipeline yields for a missing map
  key); a field of it is again ``None`` and it prints as ``<no value>``;
* `NIL` is a nil interface met inside data (a map entry that is missing or
  null, a null list element); asking it for a field is an error, as in Go.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar


class _NilInterface:
    """The nil interface value found inside data (see module docstring)."""

    _instance: ClassVar[_NilInterface | None] = None

    def __new__(cls) -> _NilInterface:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NIL"

    def __reduce__(self) -> str:
        return "NIL"


NIL = _NilInterface()


def unwrap(value: Any) -> Any:
    """Go's "dig into the interface": a nil interface becomes the invalid value."""
    return None if value is NIL else value


@dataclass(frozen=True)
class JsonField:
    """How encoding/json writes one struct field: its key and whether it is omitted when empty."""

    name: str
    key: str
    omitempty: bool = False


class GoStruct:
    """A Go struct value; subclasses are frozen dataclasses whose fields are the Go fields."""

    GO_TYPE: ClassVar[str] = "struct"
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = ()

    @classmethod
    def go_field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    def go_fields(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in self.go_field_names()]


class OrderedGoMap(dict):  # type: ignore[type-arg]
    """A Go map whose JSON keeps insertion order (Ollama's ordered maps).

    Ranging over it or printing it with ``%v`` sorts the keys, as for any Go map.
    """


def go_type_name(value: Any) -> str:
    """The Go type a value stands for, as fmt's ``%T`` and error messages spell it."""
    if value is None or value is NIL:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "[]uint8"
    go_type = getattr(type(value), "GO_TYPE", None)
    if go_type:
        return str(go_type)
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def is_true(value: Any) -> bool:
    """Go template truthiness: false, 0, nil, and empty strings and collections are false."""
    if value is None or value is NIL:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (str, bytes, bytearray, list, tuple, dict)):
        return len(value) > 0
    # Struct values are always true.
    return True


def sorted_map_keys(mapping: dict) -> list[Any]:  # type: ignore[type-arg]
    """Keys in the order Go's fmt and range visit a map: sorted."""
    try:
        return sorted(mapping)
    except TypeError:
        return sorted(mapping, key=repr)
