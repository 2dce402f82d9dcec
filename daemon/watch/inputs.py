"""A declared model's build inputs and their fingerprint: rebuild when, and only when, it changes.

Inputs are the Modelfile's bytes, the ingot.yaml's bytes, and what FROM and
ADAPTER name: files by content digest, a model of the local store by its
manifest digest (so a model built FROM another one is rebuilt when that one
is). Weight files are hashed through `DigestCache`, which trusts a digest
while the file's (size, mtime_ns, inode) stay the same, so an unchanged
7 GB GGUF is not re-read on every pass.

Every failure is a `Problem` at the Modelfile position that caused it: the
parser's own line and column, or the FROM / ADAPTER value that names a
missing file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingot.modelfile import Modelfile, ModelfileError
from ingot.modelfile.semantics import build_modelfile
from ingot.modelfile.syntax import Command, parse_document
from ingot.registry.digest import hash_stream
from ingot.registry.errors import ReferenceError
from ingot.registry.reference import Reference
from ingot.registry.store import Store

from .declarations import Declaration
from .errors import Location, Problem

__all__ = [
    "FINGERPRINT_VERSION",
    "DigestCache",
    "FileRecord",
    "InputsError",
    "ModelInputs",
    "modelfile_problem",
    "read_inputs",
]

# Bumped when what goes into a fingerprint changes, so old states rebuild once.
FINGERPRINT_VERSION = 1
# Timestamps are only as fine as the kernel's clock tick: a file hashed within
# this window of its last write may be written again without its mtime moving
# ("racy git"), so such digests are not trusted on the next pass.
_RACY_WINDOW_NS = 2_000_000_000


@dataclass(frozen=True)
class FileRecord:
    """A file's digest and the stat fields it was computed under."""

    size: int
    mtime_ns: int
    inode: int
    digest: str
    hashed_at_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "inode": self.inode,
            "digest": self.digest,
            "hashed_at_ns": self.hashed_at_ns,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileRecord:
        return cls(int(data["size"]), int(data["mtime_ns"]), int(data["inode"]), str(data["digest"]),
                   int(data.get("hashed_at_ns", 0)))


class DigestCache:
    """sha256 digests of files by absolute path, reused while (size, mtime_ns, inode) are unchanged.

    Used by one thread at a time (the watcher's worker). `hashed` counts the
    files actually read, for reports and tests.
    """

    def __init__(self, records: Mapping[str, FileRecord] | None = None) -> None:
        self._records: dict[str, FileRecord] = dict(records or {})
        self._used: set[str] = set()
        self.hashed = 0

    def digest(self, path: Path) -> str:
        key = str(path)
        st = path.stat()
        record = self._records.get(key)
        self._used.add(key)
        if (
            record is not None
            and (record.size, record.mtime_ns, record.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)
            and record.hashed_at_ns - record.mtime_ns > _RACY_WINDOW_NS
        ):
            return record.digest
        hashed_at = time.time_ns()
        with path.open("rb", buffering=0) as stream:
            digest, size = hash_stream(stream, total=st.st_size)
            after = path.stat()
        self.hashed += 1
        before = (st.st_size, st.st_mtime_ns, st.st_ino)
        if (after.st_size, after.st_mtime_ns, after.st_ino) == before and size == st.st_size:
            self._records[key] = FileRecord(size, st.st_mtime_ns, st.st_ino, digest, hashed_at)
        else:
            self._records.pop(key, None)  # written while we read it: the next pass hashes it again
        return digest

    def begin_pass(self) -> None:
        self._used.clear()
        self.hashed = 0

    def records(self) -> dict[str, FileRecord]:
        """The records of the files used since `begin_pass` (older ones are dropped when saved)."""
        return {k: v for k, v in self._records.items() if k in self._used}


class InputsError(Exception):
    """The inputs of a model cannot be read; `problem` says where and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class ModelInputs:
    """A declared model's parsed Modelfile and the fingerprint of everything its build reads."""

    modelfile: Modelfile
    fingerprint: str
    base_reference: Reference | None  # FROM names a model of the store (None: a file)
    from_location: Location
    adapter_locations: tuple[Location, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)  # path -> digest of FROM and ADAPTER files


def modelfile_problem(exc: ModelfileError) -> Problem:
    return Problem("modelfile", exc.message, exc.hint, exc.filename, exc.line, exc.column)


def _value_location(source: Path, command: Command | None) -> Location:
    if command is None:
        return Location.start_of(source)
    if command.value is not None:
        return Location(str(source), command.value.line, command.value.column)
    return Location(str(source), command.line, command.column)


def _looks_like_path(raw: str) -> bool:
    return raw.startswith((".", "/", "~")) or raw.lower().endswith(".gguf")


def _resolve_path(raw: str, folder: Path) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else folder / path


def _gguf_in(folder: Path, location: Location) -> Path:
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputsError(Problem.at("inputs", location, f"FROM folder {folder} holds no .gguf file",
                                     "point FROM at a GGUF file"))
    names = ", ".join(p.name for p in found)
    raise InputsError(Problem.at("inputs", location, f"FROM folder {folder} holds {len(found)} GGUF files: {names}",
                                 "name the one to use"))


def _file_digest(cache: DigestCache, path: Path, location: Location, what: str) -> str:
    try:
        return cache.digest(path)
    except FileNotFoundError:
        raise InputsError(Problem.at("inputs", location, f"{what} file {path} does not exist",
                                     "relative paths are relative to the Modelfile's folder")) from None
    except OSError as exc:
        raise InputsError(
            Problem.at("inputs", location, f"cannot read {what} file {path}: {exc.strerror or exc}")
        ) from None


def read_inputs(declaration: Declaration, store: Store, cache: DigestCache) -> ModelInputs:
    """Parse the Modelfile and digest everything the build will read; raises InputsError."""
    source = declaration.source
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InputsError(Problem.at("modelfile", Location.start_of(source),
                                     f"cannot read the Modelfile: {exc.strerror or exc}")) from None
    try:
        document = parse_document(data, filename=str(source))
        modelfile = build_modelfile(document)
    except ModelfileError as exc:
        raise InputsError(modelfile_problem(exc)) from None

    from_commands = [c for c in document.commands if c.instruction == "from"]
    adapter_commands = [c for c in document.commands if c.instruction == "adapter"]
    from_location = _value_location(source, from_commands[-1] if from_commands else None)
    adapter_locations = tuple(_value_location(source, c) for c in adapter_commands)
    folder = source.parent
    files: dict[str, str] = {}
    base: dict[str, Any]
    base_reference: Reference | None = None

    path = _resolve_path(modelfile.base, folder)
    if path.exists():
        if path.is_dir():
            path = _gguf_in(path, from_location)
        files[str(path)] = _file_digest(cache, path, from_location, "FROM")
        base = {"file": files[str(path)]}
    elif _looks_like_path(modelfile.base):
        raise InputsError(Problem.at("inputs", from_location, f"FROM names {path}, which does not exist",
                                     "relative paths are relative to the Modelfile's folder"))
    else:
        try:
            base_reference = Reference.parse(modelfile.base)
        except ReferenceError as exc:
            raise InputsError(Problem.at("inputs", from_location, f"FROM {modelfile.base!r}: {exc.message}",
                                         "FROM takes a path to a GGUF file or a model name")) from None
        descriptor = store.resolve(base_reference)
        if descriptor is None:
            raise InputsError(Problem.at(
                "inputs", from_location,
                f"FROM names the model {base_reference.short}, which is not in the local store (and no file {path})",
                f"pull it (ingot pull {modelfile.base}) or declare it in the watched tree",
            ))
        base = {"model": base_reference.tagged, "digest": descriptor.digest}

    adapters = []
    for i, raw in enumerate(modelfile.adapters):
        location = adapter_locations[i] if i < len(adapter_locations) else from_location
        adapter = _resolve_path(raw, folder)
        files[str(adapter)] = _file_digest(cache, adapter, location, "ADAPTER")
        adapters.append(files[str(adapter)])

    document_digest = "sha256:" + hashlib.sha256(data).hexdigest()
    payload = {
        "version": FINGERPRINT_VERSION,
        "modelfile": document_digest,
        "settings": declaration.settings_digest,
        "base": base,
        "adapters": adapters,
    }
    fingerprint = "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return ModelInputs(modelfile, fingerprint, base_reference, from_location, adapter_locations, files)
