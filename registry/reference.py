"""Model references: `[host[:port]/][namespace/]name[:tag][@sha256:<64 hex>]`.

Modelled on Ollama's types/model/name.go, with OCI distribution's rules for
what each part may hold (so every valid reference can be pushed as is):

| part      | allowed                                                          | length | default   |
|-----------|------------------------------------------------------------------|--------|-----------|
| host      | DNS name, IPv4 or `[IPv6]`, optional `:port` (1-65535)           | <= 253 | none      |
| namespace | lowercase letters and digits, single `_`, `__` or `-` runs between | 1-80 | `library` |
| name      | like namespace, and `.` between letters/digits too               | 1-80   | required  |
| tag       | letters, digits, `_`, `.`, `-`; not starting with `.` or `-`     | 1-128  | `latest`  |
| digest    | `sha256:` + 64 lowercase hex                                     | 71     | none      |

Host, namespace and name are case-insensitive and normalized to lowercase
(registries require lowercase repository names); the tag keeps its case.

No host means the local store: `ingot create`, `run`, `list` work with such
names. `push`/`pull` need a host, either in the reference or from
`$INGOT_REGISTRY` (see `Reference.for_remote`).

Two `/`-separated parts are `namespace/name` unless the first looks like a
host (contains `.` or `:`, or is `localhost`), as Docker reads them; three
parts are always `host/namespace/name`. A leading `http://` or `https://`
is dropped, as Ollama does.

`str(ref)` is the full normalized form (`library/name:latest`,
`host/ns/name:tag@sha256:...`), and `ref.short` the shortest form that parses
back to the same reference (`name`, `ns/name:tag`, `host:5000/name`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ingot.registry.digest import parse_digest
from ingot.registry.errors import DigestError, ReferenceError

__all__ = ["DEFAULT_NAMESPACE", "DEFAULT_TAG", "Reference"]

DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

MAX_HOST = 253
MAX_NAME = 80
MAX_TAG = 128
# Anything longer cannot be valid; refusing early keeps error messages short.
_MAX_REFERENCE = MAX_HOST + 1 + MAX_NAME + 1 + MAX_NAME + 1 + MAX_TAG + 1 + 71 + len("https://")

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?")
_NAMESPACE_RE = re.compile(r"[a-z0-9]+(?:(?:__?|-+)[a-z0-9]+)*")
_NAME_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")

_SYNTAX = "[host[:port]/][namespace/]name[:tag][@sha256:<64 hex>]"


def _shown(s: str) -> str:
    return repr(s if len(s) <= 100 else s[:97] + "...")


def _check_host(host: str) -> str:
    host = host.lower()
    if not host:
        raise ReferenceError("empty host", hint=f"write {_SYNTAX}")
    if len(host) > MAX_HOST:
        raise ReferenceError(f"host is {len(host)} characters long; at most {MAX_HOST} are allowed")
    match = _HOST_RE.fullmatch(host)
    if match is None:
        raise ReferenceError(
            f"invalid host {_shown(host)}",
            hint="a host is a DNS name, IPv4 address or [IPv6] address with an optional :port, e.g. localhost:5000",
        )
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise ReferenceError(f"invalid port {port} in host {_shown(host)}: ports are 1-65535")
    return host


def _check_component(kind: str, value: str, pattern: re.Pattern[str], allowed: str) -> str:
    value = value.lower()
    if not value:
        raise ReferenceError(f"empty {kind}", hint=f"write {_SYNTAX}")
    if len(value) > MAX_NAME:
        raise ReferenceError(f"{kind} is {len(value)} characters long; at most {MAX_NAME} are allowed")
    if pattern.fullmatch(value) is None:
        raise ReferenceError(f"invalid {kind} {_shown(value)}: {allowed}")
    return value


def _check_namespace(namespace: str) -> str:
    namespace = _check_component(
        "namespace",
        namespace,
        _NAMESPACE_RE,
        "use lowercase letters and digits, with single '_', '__' or '-' runs between them",
    )
    if namespace == "localhost":
        raise ReferenceError(
            "'localhost' cannot be a namespace: it is read as a registry host",
            hint="write localhost/NAMESPACE/NAME for a local registry, or pick another namespace",
        )
    return namespace


def _check_name(name: str) -> str:
    return _check_component(
        "name",
        name,
        _NAME_RE,
        "use lowercase letters and digits, with '.', '_', '__' or '-' runs between them "
        "(start and end with a letter or digit)",
    )


def _check_tag(tag: str) -> str:
    if not tag:
        raise ReferenceError("empty tag after ':'", hint="drop the ':' to use the tag 'latest'")
    if len(tag) > MAX_TAG:
        raise ReferenceError(f"tag is {len(tag)} characters long; at most {MAX_TAG} are allowed")
    if _TAG_RE.fullmatch(tag) is None:
        raise ReferenceError(
            f"invalid tag {_shown(tag)}: use letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        )
    return tag


def _check_digest(digest: str) -> str:
    try:
        return parse_digest(digest)
    except DigestError as exc:
        raise ReferenceError(exc.message, hint="write NAME@sha256:<64 lowercase hex>") from None


def _looks_like_host(part: str) -> bool:
    return "." in part or ":" in part or part.lower() == "localhost"


@dataclass(frozen=True)
class Reference:
    """A validated, normalized model reference; constructing one checks every part."""

    name: str
    namespace: str = DEFAULT_NAMESPACE
    tag: str = DEFAULT_TAG
    host: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name(self.name))
        object.__setattr__(self, "namespace", _check_namespace(self.namespace))
        object.__setattr__(self, "tag", _check_tag(self.tag))
        if self.host is not None:
            object.__setattr__(self, "host", _check_host(self.host))
        if self.digest is not None:
            object.__setattr__(self, "digest", _check_digest(self.digest))

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse `text`, filling defaults; raise ReferenceError naming the bad part."""
        if not isinstance(text, str):
            raise ReferenceError(f"a model reference must be a string, not {type(text).__name__}")
        original = text
        if not text:
            raise ReferenceError("empty model reference", hint=f"write {_SYNTAX}")
        if len(text) > _MAX_REFERENCE:
            raise ReferenceError(f"model reference is {len(text)} characters long; at most {_MAX_REFERENCE} fit")
        if any(c.isspace() for c in text):
            raise ReferenceError(f"model reference {_shown(original)} contains whitespace")
        for scheme in ("http://", "https://"):
            if text.lower().startswith(scheme):
                text = text[len(scheme) :]
                break
        try:
            return cls._parse_parts(text)
        except ReferenceError as exc:
            raise ReferenceError(f"invalid model reference {_shown(original)}: {exc.message}", hint=exc.hint) from None

    @classmethod
    def _parse_parts(cls, text: str) -> Reference:
        digest: str | None = None
        if "@" in text:
            text, _, digest = text.partition("@")
            if "@" in digest:
                raise ReferenceError("more than one '@'")
            if not text:
                raise ReferenceError("a digest needs a model name before the '@'", hint="write NAME@sha256:<hex>")
        segments = text.split("/")
        if len(segments) > 3:
            raise ReferenceError(
                f"{len(segments)} '/'-separated parts; at most 3 (host/namespace/name)", hint=f"write {_SYNTAX}"
            )
        last = segments[-1]
        tag = DEFAULT_TAG
        has_tag = ":" in last
        if has_tag:
            last, _, tag = last.partition(":")
            if ":" in tag:
                raise ReferenceError(f"more than one ':' in {_shown(segments[-1])}")
            _check_tag(tag)
        host: str | None = None
        namespace = DEFAULT_NAMESPACE
        if len(segments) == 3:
            host, namespace = segments[0], segments[1]
            if not host:
                raise ReferenceError("empty host before the first '/'")
            if not namespace:
                raise ReferenceError("empty namespace between '/'s")
        elif len(segments) == 2:
            first = segments[0]
            if not first:
                raise ReferenceError("empty namespace before '/'")
            if _looks_like_host(first):
                host = first
            else:
                namespace = first
        if not last:
            raise ReferenceError("empty name" + (" before ':'" if has_tag else ""))
        return cls(name=last, namespace=namespace, tag=tag, host=host, digest=digest)

    # ---- display -----------------------------------------------------------

    @property
    def repository(self) -> str:
        """`namespace/name`: the repository path on a registry."""
        return f"{self.namespace}/{self.name}"

    @property
    def tagged(self) -> str:
        """The full form without the digest: the key a tag is stored under."""
        prefix = f"{self.host}/" if self.host else ""
        return f"{prefix}{self.namespace}/{self.name}:{self.tag}"

    def __str__(self) -> str:
        return self.tagged + (f"@{self.digest}" if self.digest else "")

    @property
    def short(self) -> str:
        """The shortest display that parses back to this reference (defaults omitted)."""
        parts: list[str] = []
        if self.host:
            parts.append(self.host)
        keep_namespace = self.namespace != DEFAULT_NAMESPACE or (
            self.host is not None and not _looks_like_host(self.host)
        )
        if keep_namespace:
            parts.append(self.namespace)
        parts.append(self.name)
        text = "/".join(parts)
        if self.tag != DEFAULT_TAG:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    # ---- derived references --------------------------------------------------

    @property
    def is_local(self) -> bool:
        """True when no registry host is named: the reference lives in the local store only."""
        return self.host is None

    def with_tag(self, tag: str) -> Reference:
        """The same repository with another tag (and no digest)."""
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str | None) -> Reference:
        return replace(self, digest=digest)

    def with_host(self, host: str | None) -> Reference:
        return replace(self, host=host)

    def without_digest(self) -> Reference:
        return replace(self, digest=None) if self.digest else self

    def for_remote(self, default_host: str | None) -> Reference:
        """This reference with a registry host: its own, else `default_host` (from $INGOT_REGISTRY).

        Raises ReferenceError when neither names one.
        """
        if self.host:
            return self
        if default_host:
            return replace(self, host=default_host)
        raise ReferenceError(
            f"'{self.short}' names no registry host",
            hint="write HOST[:PORT]/NAME (e.g. localhost:5000/" + self.short + ") or set INGOT_REGISTRY",
        )

    @staticmethod
    def is_valid(text: str) -> bool:
        """Whether `text` parses."""
        try:
            Reference.parse(text)
        except ReferenceError:
            return False
        return True

