"""Which models a folder tree declares: one per `Modelfile` or `*.Modelfile`, named by folder or `ingot.yaml`.

The convention (docs/gitops.md):

- `team-chat/Modelfile` declares the model `team-chat:latest`: the folder's
  name (lower-cased), tag `latest`. A `Modelfile` at the top of the tree is
  named after the tree's folder.
- `chat.Modelfile` declares `chat:latest`: the file name before `.Modelfile`.
  Several `*.Modelfile` may share a folder.
- Beside it, an optional `ingot.yaml` (for `Modelfile`) or `chat.ingot.yaml`
  (for `chat.Modelfile`) overrides that::

      name: team/chat          # [namespace/]name, no registry host and no tag
      tags: [latest, "1.4"]    # every tag points at the same build
      push: [localhost:5000/team]   # replaces the watch-level targets; [] pushes nowhere
      labels:                  # manifest annotations
        org.opencontainers.image.description: Support bot

Folders whose name starts with `.` (`.git`, `.venv`...) are skipped. Two
files declaring the same name:tag are both refused until one is changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingot.registry.errors import ReferenceError
from ingot.registry.reference import DEFAULT_TAG, Reference

from .errors import ConfigError, Location, Problem
from .settings import PushTarget, WatchConfig, parse_push_targets
from .yamlnodes import YamlValue, decode_yaml

__all__ = [
    "MODELFILE_NAME",
    "MODELFILE_SUFFIX",
    "SETTINGS_NAME",
    "BrokenDeclaration",
    "Declaration",
    "Discovery",
    "declare",
    "discover",
    "is_declaration_file",
    "settings_path_for",
]

MODELFILE_NAME = "Modelfile"
MODELFILE_SUFFIX = ".Modelfile"
SETTINGS_NAME = "ingot.yaml"
_SETTINGS_KEYS = ("name", "tags", "push", "labels")


@dataclass(frozen=True)
class Declaration:
    """One model the tree declares, with everything needed to build, tag and push it."""

    key: str  # the Modelfile's path relative to the watched root, with '/'
    source: Path  # the Modelfile, absolute
    references: tuple[Reference, ...]  # local references, one per tag; the package is built as the first
    push: tuple[PushTarget, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    settings: Path | None = None  # the ingot.yaml that applied, if any
    settings_digest: str | None = None  # sha256 of its bytes: part of the build inputs
    name_location: Location | None = None  # where the name came from (ingot.yaml's `name:`), for conflicts


@dataclass(frozen=True)
class BrokenDeclaration:
    """A Modelfile whose declaration cannot be used (bad ingot.yaml, bad name, a name clash)."""

    key: str
    source: Path
    problem: Problem
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True)
class Discovery:
    """What one walk of the tree found, sorted by key."""

    declarations: tuple[Declaration, ...]
    broken: tuple[BrokenDeclaration, ...]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(d.key for d in self.declarations) | frozenset(b.key for b in self.broken)


def is_declaration_file(name: str) -> bool:
    return name == MODELFILE_NAME or (name.endswith(MODELFILE_SUFFIX) and len(name) > len(MODELFILE_SUFFIX))


def settings_path_for(modelfile: Path) -> Path:
    """`ingot.yaml` beside a `Modelfile`; `NAME.ingot.yaml` beside a `NAME.Modelfile`."""
    if modelfile.name == MODELFILE_NAME:
        return modelfile.with_name(SETTINGS_NAME)
    return modelfile.with_name(modelfile.name[: -len(MODELFILE_SUFFIX)] + "." + SETTINGS_NAME)


def _default_name(root: Path, modelfile: Path) -> str:
    if modelfile.name == MODELFILE_NAME:
        return modelfile.parent.name.lower()
    return modelfile.name[: -len(MODELFILE_SUFFIX)].lower()


def _walk(root: Path, exclude: Sequence[Path]) -> list[Path]:
    excluded = {p.absolute() for p in exclude}
    found: list[Path] = []
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d) not in excluded)
        found.extend(here / name for name in sorted(filenames) if is_declaration_file(name))
    return found


def _local_reference(name: str, tag: str, where: YamlValue | None) -> Reference:
    try:
        ref = Reference.parse(name)
    except ReferenceError as exc:
        hint = exc.hint or "a name is [namespace/]name in lower case, e.g. team/chat"
        if where is None:
            raise ConfigError(f"'{name}' is not a valid model name: {exc.message}",
                              hint=f"name the model in {SETTINGS_NAME}: name: my-model") from None
        raise where.error(f"'{name}' is not a valid model name: {exc.message}", hint=hint) from None
    if ref.host is not None:
        message = f"the name '{name}' includes a registry host ({ref.host})"
        hint = "name the model without a host and list registries under push:"
        if where is None:
            raise ConfigError(message, hint=hint)
        raise where.error(message, hint=hint)
    if ref.digest is not None or ":" in name.rsplit("/", 1)[-1]:
        message = f"the name '{name}' includes a tag or digest"
        if where is None:
            raise ConfigError(message, hint="list tags under tags:")
        raise where.error(message, hint="list tags under tags:")
    try:
        return ref.with_tag(tag)
    except ReferenceError as exc:
        raise ConfigError(f"invalid tag {tag!r}: {exc.message}") from None


def _tags(value: YamlValue) -> tuple[str, ...]:
    tags: list[str] = []
    for item in value.sequence(allow_scalar=True):
        tag = item.string(allow_numbers=True)
        try:
            Reference(name="probe", tag=tag)
        except ReferenceError as exc:
            raise item.error(f"invalid tag {tag!r}: {exc.message}",
                             hint="letters, digits, '_', '.', '-'; not starting with '.' or '-'") from None
        if tag in tags:
            raise item.error(f"tag {tag!r} is listed twice")
        tags.append(tag)
    if not tags:
        raise value.error("lists no tag", hint=f"leave tags: out for '{DEFAULT_TAG}'")
    return tuple(tags)


def declare(root: Path, modelfile: Path, defaults: tuple[PushTarget, ...]) -> Declaration:
    """The declaration of one Modelfile; raises ConfigError for a bad ingot.yaml or name."""
    key = modelfile.relative_to(root).as_posix()
    settings_path = settings_path_for(modelfile)
    if not settings_path.is_file():
        name = _default_name(root, modelfile)
        reference = _local_reference(name, DEFAULT_TAG, None)
        return Declaration(key, modelfile, (reference,), defaults)
    try:
        data = settings_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {settings_path}: {exc.strerror or exc}",
                          location=Location.start_of(settings_path)) from None
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    document = decode_yaml(data, filename=str(settings_path))
    fields = document.mapping(_SETTINGS_KEYS)
    name_value = fields.get("name")
    name = name_value.string() if name_value is not None else _default_name(root, modelfile)
    tags = _tags(fields["tags"]) if "tags" in fields else (DEFAULT_TAG,)
    references = tuple(_local_reference(name, tag, name_value) for tag in tags)
    push = parse_push_targets(fields["push"]) if "push" in fields else defaults
    labels = fields["labels"].string_map() if "labels" in fields else {}
    where = name_value.location if name_value is not None else Location.start_of(settings_path)
    return Declaration(key, modelfile, references, push, labels, settings_path, digest, where)


def discover(config: WatchConfig, *, exclude: Sequence[Path] = ()) -> Discovery:
    """Walk the watched tree and declare every Modelfile in it; name clashes break both sides."""
    root = config.root
    declarations: list[Declaration] = []
    broken: list[BrokenDeclaration] = []
    for modelfile in _walk(root, exclude):
        try:
            declarations.append(declare(root, modelfile, config.push))
        except ConfigError as exc:
            problem = exc.problem("settings")
            if problem.file is None:
                problem = Problem.at("settings", Location.start_of(modelfile), exc.message, exc.hint)
            broken.append(BrokenDeclaration(modelfile.relative_to(root).as_posix(), modelfile, problem))
    owners: dict[str, list[Declaration]] = {}
    for declaration in declarations:
        for reference in declaration.references:
            owners.setdefault(reference.tagged, []).append(declaration)
    clashing: dict[str, tuple[str, list[Declaration]]] = {}
    for tagged, claimants in owners.items():
        if len(claimants) > 1:
            for claimant in claimants:
                clashing.setdefault(claimant.key, (tagged, claimants))
    kept: list[Declaration] = []
    for declaration in declarations:
        if declaration.key not in clashing:
            kept.append(declaration)
            continue
        tagged, claimants = clashing[declaration.key]
        others = ", ".join(c.key for c in claimants if c.key != declaration.key)
        location = declaration.name_location or Location.start_of(declaration.source)
        broken.append(
            BrokenDeclaration(
                declaration.key,
                declaration.source,
                Problem.at(
                    "conflict", location, f"{Reference.parse(tagged).short} is also declared by {others}",
                    f"give one of them another name in its {SETTINGS_NAME}",
                ),
                declaration.references,
            )
        )
    return Discovery(tuple(kept), tuple(sorted(broken, key=lambda b: b.key)))
