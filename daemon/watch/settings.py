"""What a watcher is told to do: `WatchConfig`, from `ingot watch` flags or a `watch:` YAML section.

The `watch:` section (in `$INGOT_HOME/config.yaml`; docs/gitops.md)::

    watch:
      dir: ~/models                 # required; relative paths are relative to config.yaml's folder
      push:                         # registries every model is pushed to (ingot.yaml may override)
        - localhost:5000/team       #   host[:port][/namespace]
        - registry: registry.example.com/ml
          insecure: true            #   plain HTTP / unverified TLS
      prune: false                  # untag models whose Modelfile was deleted (default: report orphans)
      reload: true                  # hot-swap rebuilt models in the running daemon
      copy: false                   # store copies of weight files instead of sharing their blocks
      debounce: 500ms               # quiet time after the last file event before reconciling
      resync: 5m                    # full reconcile this often, for events that were missed
      retry:                        # failed pushes are retried with exponential backoff
        initial: 5s
        max: 10m
        attempts: 3                 #   requests per push before it counts as failed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ingot.registry.errors import ReferenceError
from ingot.registry.reference import Reference

from .errors import ConfigError, Location
from .yamlnodes import YamlValue

__all__ = [
    "DEFAULT_DEBOUNCE",
    "DEFAULT_RESYNC",
    "PushTarget",
    "RetrySettings",
    "WatchConfig",
    "parse_push_target",
    "parse_push_targets",
    "parse_watch_section",
]

DEFAULT_DEBOUNCE = 0.5
DEFAULT_RESYNC = 300.0
_WATCH_KEYS = ("dir", "push", "prune", "reload", "copy", "debounce", "resync", "retry")
_TARGET_KEYS = ("registry", "insecure")
_RETRY_KEYS = ("initial", "max", "attempts")
_TARGET_SYNTAX = "host[:port][/namespace], e.g. localhost:5000/team"


@dataclass(frozen=True)
class PushTarget:
    """A registry (and optional namespace) models are pushed to; `origin` is where it was declared."""

    host: str
    namespace: str | None = None
    insecure: bool = False
    origin: Location | None = field(default=None, compare=False)

    @property
    def display(self) -> str:
        return f"{self.host}/{self.namespace}" if self.namespace else self.host

    def remote(self, local: Reference) -> Reference:
        """Where the local reference `local` goes on this registry (the namespace here wins over the local one)."""
        return Reference(
            name=local.name, namespace=self.namespace or local.namespace, tag=local.tag, host=self.host
        )


@dataclass(frozen=True)
class RetrySettings:
    """Backoff for failed pushes: `initial` doubling up to `max` seconds; `attempts` requests per try."""

    initial: float = 5.0
    max: float = 600.0
    attempts: int = 3

    def delay(self, failures: int) -> float:
        """Seconds to wait after `failures` consecutive failed tries (1 -> initial)."""
        return min(self.max, self.initial * (2 ** max(failures - 1, 0)))


@dataclass(frozen=True)
class WatchConfig:
    """Everything one watcher needs to know; see the module docstring for the YAML form."""

    root: Path
    push: tuple[PushTarget, ...] = ()
    prune: bool = False
    reload: bool = True
    copy: bool = False
    debounce: float = DEFAULT_DEBOUNCE
    resync: float = DEFAULT_RESYNC
    retry: RetrySettings = RetrySettings()
    origin: Location | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().absolute())
        if self.debounce < 0:
            raise ConfigError(f"debounce must not be negative, got {self.debounce:g}", location=self.origin)
        if self.resync <= 0:
            raise ConfigError(f"resync must be positive, got {self.resync:g}", location=self.origin)


def parse_push_target(text: str, *, insecure: bool = False, origin: Location | None = None) -> PushTarget:
    """`host[:port][/namespace]` -> PushTarget; ConfigError (at `origin`) when it is not one."""
    raw = text.strip()
    for scheme in ("http://", "https://"):
        if raw.lower().startswith(scheme):
            raw = raw[len(scheme):]
    raw = raw.rstrip("/")
    parts = raw.split("/")
    if not raw or len(parts) > 2 or "@" in raw:
        raise ConfigError(f"invalid push target {text!r}", location=origin, hint=f"write {_TARGET_SYNTAX}")
    try:
        probe = Reference.parse(f"{raw}/probe")
    except ReferenceError as exc:
        raise ConfigError(f"invalid push target {text!r}: {exc.message}", location=origin,
                          hint=f"write {_TARGET_SYNTAX}") from None
    first = parts[0].lower()
    looks_like_host = "." in first or ":" in first or first == "localhost" or first.startswith("[")
    if probe.host is None or not looks_like_host:
        raise ConfigError(
            f"push target {text!r} names no registry host",
            location=origin,
            hint=f"a host has a '.', a ':port' or is localhost: write {_TARGET_SYNTAX}",
        )
    return PushTarget(probe.host, probe.namespace if len(parts) == 2 else None, insecure, origin)


def parse_push_targets(value: YamlValue) -> tuple[PushTarget, ...]:
    """A `push:` list: strings, or mappings with `registry` and `insecure`."""
    targets: list[PushTarget] = []
    for item in value.sequence(allow_scalar=True):
        if item.node is not None and item.node.tag == "tag:yaml.org,2002:map":
            fields = item.mapping(_TARGET_KEYS, required=("registry",))
            registry = fields["registry"]
            insecure = fields["insecure"].boolean() if "insecure" in fields else False
            targets.append(_target(registry, insecure))
        else:
            targets.append(_target(item, False))
    seen: set[PushTarget] = set()
    for target in targets:
        if target in seen:
            raise ConfigError(f"push target {target.display} is listed twice", location=target.origin)
        seen.add(target)
    return tuple(targets)


def _target(value: YamlValue, insecure: bool) -> PushTarget:
    text = value.string()
    try:
        return parse_push_target(text, insecure=insecure, origin=value.location)
    except ConfigError as exc:
        raise value.error(exc.message, hint=exc.hint) from None


def parse_watch_section(value: YamlValue, *, base_dir: Path) -> WatchConfig:
    """The `watch:` section of config.yaml; relative `dir` paths resolve against `base_dir`."""
    fields = value.mapping(_WATCH_KEYS, required=("dir",))
    dir_value = fields["dir"]
    root = Path(dir_value.string()).expanduser()
    if not root.is_absolute():
        root = base_dir / root
    if not root.is_dir():
        raise dir_value.error(f"{root} is not a folder", hint="point dir at the folder that holds your Modelfiles")
    retry = RetrySettings()
    if "retry" in fields:
        retry_fields = fields["retry"].mapping(_RETRY_KEYS)
        initial = retry_fields["initial"].duration(minimum=0.01) if "initial" in retry_fields else retry.initial
        maximum = retry_fields["max"].duration(minimum=0.01) if "max" in retry_fields else max(retry.max, initial)
        if maximum < initial:
            raise retry_fields["max"].error(f"must be at least retry.initial ({initial:g} s)")
        attempts = retry_fields["attempts"].integer(minimum=1) if "attempts" in retry_fields else retry.attempts
        retry = RetrySettings(initial, maximum, attempts)
    return WatchConfig(
        root=root,
        push=parse_push_targets(fields["push"]) if "push" in fields else (),
        prune=fields["prune"].boolean() if "prune" in fields else False,
        reload=fields["reload"].boolean() if "reload" in fields else True,
        copy=fields["copy"].boolean() if "copy" in fields else False,
        debounce=fields["debounce"].duration() if "debounce" in fields else DEFAULT_DEBOUNCE,
        resync=fields["resync"].duration(minimum=1.0) if "resync" in fields else DEFAULT_RESYNC,
        retry=retry,
        origin=value.location,
    )
