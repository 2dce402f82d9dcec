"""YAML read as nodes that remember where they came from, so every complaint says file:line:col.

PyYAML's `compose` keeps a mark (0-based line and column) on every node;
`YamlValue` wraps a node with its dotted path (`watch.push[1]`) and offers
typed accessors that raise `ConfigError` at the node's position, with a
"did you mean" for misspelt keys. Duplicate keys, which PyYAML silently
merges, are refused.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ingot.daemon.keepalive import KeepAliveError, parse_keep_alive

from .errors import ConfigError, Location

__all__ = ["YamlValue", "decode_yaml", "load_yaml_file", "parse_yaml"]

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


def _location(filename: str, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(filename)
    return Location(filename, mark.line + 1, mark.column + 1)


@dataclass(frozen=True)
class YamlValue:
    """One YAML node, where it is, and how to refer to it in a message."""

    node: yaml.Node | None  # None: the document is empty
    filename: str
    path: str  # e.g. "watch.push[0]"; "" for the document itself

    @property
    def location(self) -> Location:
        return _location(self.filename, self.node.start_mark if self.node is not None else None)

    def error(self, message: str, hint: str | None = None) -> ConfigError:
        what = f"{self.path}: " if self.path else ""
        return ConfigError(what + message, location=self.location, hint=hint)

    @property
    def is_null(self) -> bool:
        return self.node is None or (isinstance(self.node, yaml.ScalarNode) and self.node.tag == _NULL)

    def _kind(self) -> str:
        if self.node is None or self.is_null:
            return "nothing"
        if isinstance(self.node, yaml.MappingNode):
            return "a mapping"
        if isinstance(self.node, yaml.SequenceNode):
            return "a list"
        return {
            _STR: "a string",
            _BOOL: "a boolean",
            _INT: "a number",
            _FLOAT: "a number",
        }.get(self.node.tag, f"a {self.node.tag.rsplit(':', 1)[-1]}")

    def _child(self, node: yaml.Node, suffix: str) -> YamlValue:
        return YamlValue(node, self.filename, suffix if not self.path else self.path + suffix)

    # ---- containers --------------------------------------------------------

    def mapping(self, known: Iterable[str], *, required: Iterable[str] = ()) -> dict[str, YamlValue]:
        """The keys of a mapping (only `known` ones allowed), each as a YamlValue."""
        known = tuple(known)
        if self.is_null:
            result: dict[str, YamlValue] = {}
        else:
            if not isinstance(self.node, yaml.MappingNode):
                raise self.error(f"expected a mapping of {', '.join(known)}, found {self._kind()}")
            result = {}
            for key_node, value_node in self.node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                    raise YamlValue(key_node, self.filename, self.path).error("keys must be plain words")
                key = str(key_node.value)
                key_value = YamlValue(key_node, self.filename, self.path)
                if key not in known:
                    close = difflib.get_close_matches(key, known, n=1)
                    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
                    raise key_value.error(f"unknown key '{key}'", hint=hint)
                if key in result:
                    raise key_value.error(f"'{key}' is given twice", hint="keep one of them")
                result[key] = self._child(value_node, f".{key}" if self.path else key)
        for key in required:
            if key not in result:
                raise self.error(f"'{key}' is required")
        return result

    def sequence(self, *, allow_scalar: bool = False) -> list[YamlValue]:
        """The items of a list; `allow_scalar` also takes one bare value as a list of one."""
        if self.is_null:
            return []
        if isinstance(self.node, yaml.SequenceNode):
            return [self._child(item, f"[{i}]") for i, item in enumerate(self.node.value)]
        if allow_scalar and isinstance(self.node, (yaml.ScalarNode, yaml.MappingNode)):
            return [self]
        raise self.error(f"expected a list, found {self._kind()}")

    # ---- scalars -----------------------------------------------------------

    def _scalar(self) -> Any:
        assert isinstance(self.node, yaml.ScalarNode)
        return yaml.SafeLoader("").construct_object(self.node, deep=True)

    def string(self, *, allow_numbers: bool = False) -> str:
        """A non-empty string; `allow_numbers` also takes `1.2` or `3` (a tag like `tags: [1.2]`)."""
        if isinstance(self.node, yaml.ScalarNode) and self.node.tag == _STR:
            text = str(self.node.value)
            if not text.strip():
                raise self.error("must not be empty")
            return text
        if allow_numbers and isinstance(self.node, yaml.ScalarNode) and self.node.tag in (_INT, _FLOAT):
            return str(self.node.value)  # as written: 1.10 stays "1.10", not 1.1
        raise self.error(f"expected a string, found {self._kind()}")

    def boolean(self) -> bool:
        if isinstance(self.node, yaml.ScalarNode) and self.node.tag == _BOOL:
            return bool(self._scalar())
        raise self.error(f"expected true or false, found {self._kind()}")

    def integer(self, *, minimum: int | None = None) -> int:
        if not (isinstance(self.node, yaml.ScalarNode) and self.node.tag == _INT):
            raise self.error(f"expected a whole number, found {self._kind()}")
        value = int(self._scalar())
        if minimum is not None and value < minimum:
            raise self.error(f"must be at least {minimum}, got {value}")
        return value

    def duration(self, *, minimum: float = 0.0) -> float:
        """Seconds, from a number (`2.5`) or a duration (`500ms`, `5m`, `1h30m`)."""
        if isinstance(self.node, yaml.ScalarNode) and self.node.tag in (_INT, _FLOAT):
            seconds = float(self._scalar())
        elif isinstance(self.node, yaml.ScalarNode) and self.node.tag == _STR:
            try:
                parsed = parse_keep_alive(str(self.node.value))
            except KeepAliveError:
                parsed = None
            if parsed is None or parsed.seconds is None:
                raise self.error(
                    f"invalid duration {str(self.node.value)!r}",
                    hint="write a number of seconds or a duration such as 500ms, 30s, 5m, 1h",
                )
            seconds = parsed.seconds
        else:
            raise self.error(f"expected a duration, found {self._kind()}", hint="e.g. 500ms, 30s, 5m")
        if seconds < minimum or seconds != seconds:
            raise self.error(f"must be at least {minimum:g} seconds, got {seconds:g}")
        return seconds

    def string_map(self) -> dict[str, str]:
        """A mapping of string keys to scalar values, all kept as strings (labels, annotations)."""
        if self.is_null:
            return {}
        if not isinstance(self.node, yaml.MappingNode):
            raise self.error(f"expected a mapping of names to values, found {self._kind()}")
        result: dict[str, str] = {}
        for key_node, value_node in self.node.value:
            key_value = YamlValue(key_node, self.filename, self.path)
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR or not str(key_node.value):
                raise key_value.error("keys must be non-empty strings")
            key = str(key_node.value)
            if key in result:
                raise key_value.error(f"'{key}' is given twice", hint="keep one of them")
            child = self._child(value_node, f".{key}")
            if not isinstance(value_node, yaml.ScalarNode) or value_node.tag == _NULL:
                raise child.error(f"expected a string, found {child._kind()}")
            result[key] = str(value_node.value)
        return result


def parse_yaml(text: str, *, filename: str) -> YamlValue:
    """Compose one YAML document; syntax errors become ConfigError at the problem's mark."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", location=_location(filename, mark),
                          hint="check the indentation and quoting around this place") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", location=Location(filename)) from None
    return YamlValue(node, filename, "")


def decode_yaml(data: bytes, *, filename: str) -> YamlValue:
    """Compose YAML from a file's bytes (UTF-8, with or without a BOM)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", location=Location(filename),
                          hint="save the file as UTF-8") from None
    return parse_yaml(text, filename=filename)


def load_yaml_file(path: Path) -> YamlValue:
    """Read and compose the YAML file at `path`; unreadable or undecodable files are ConfigErrors too."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_yaml(data, filename=str(path))
