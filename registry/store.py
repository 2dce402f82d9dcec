"""The local store: an OCI image layout at `$INGOT_HOME/models/` that standard OCI tools can read.

On disk::

    oci-layout                       {"imageLayoutVersion": "1.0.0"}
    index.json                       one manifest descriptor per tag, annotated with
                                     org.opencontainers.image.ref.name = full reference
    blobs/sha256/<hex>               content-addressed blobs, read-only (0444)
    blobs/sha256/<hex>.<rand>.incomplete   a blob being written (never read as a blob)
    blobs/.partial/<hex>[.lock]      resumable incoming blob (BlobWriter) and its lock
    .links/<hex>.json                size + mtime of blobs that share an inode with a user's file
    .tmp/                            scratch files on the store's filesystem
    .lock                            flock: serializes index.json updates
    .gc.lock                         flock: writers hold it shared, gc exclusive

Guarantees:

- A blob becomes visible under its digest only after its sha256 and size were
  verified, with one `os.replace` (temp file in the same folder, fsync'd).
  A crash leaves at most a `.incomplete` file, which `gc()` deletes once it is
  an hour old.
- Digest strings are validated before any path is built from them.
- `index.json` is only rewritten under an exclusive lock, by temp file + rename;
  readers never lock and always see a whole file.
- A tag is written only after the manifest blob it names exists, so no crash
  leaves a dangling tag. Writers hold `.gc.lock` shared for their whole
  multi-step job (`Store.writing()`), so `gc()` never removes a blob that a
  package being built is about to reference.

`ingest_file` reads a file once. On the store's own filesystem it does not copy
it, in order of preference:

1. reflink (FICLONE ioctl: btrfs, XFS, bcachefs...): the blob gets its own
   copy-on-write clone, taken *before* hashing so the hash covers exactly the
   stored bytes. Later edits of the user's file never reach the blob.
2. hardlink, made *after* hashing and checked to be the same inode, size and
   mtime that were hashed. The blob and the user's file then share an inode, so
   the write bits are removed from it (the user's file becomes read-only too:
   tools that edit GGUFs in place now fail instead of corrupting the store), and
   its size and mtime are recorded in `.links/`. `verified_blob_path()` compares
   them on every use and re-hashes when they changed, raising BlobModifiedError
   if the content no longer matches. Replacing the user's file (rename, a new
   download, delete) never affects the blob. gc gives the file its mode back
   when it removes the blob and the file is the only other name left.
3. copy, while hashing, in one pass (other filesystem, or `link=False`).

A store opened with `read_only=True` (`ingot serve` on a read-only volume), or
found on a read-only mount, writes nothing at all: no layout files, no locks,
no link records. Readers
never needed a lock (see above), so reading works unchanged; every write
raises ReadOnlyStoreError. `is_read_only_path()` tells whether a folder sits
on a read-only mount.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
import contextlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ingot.registry import mediatypes as mt
from ingot.registry.digest import (
    CHUNK_SIZE,
    Progress,
    ProgressCallback,
    digest_bytes,
    digest_hex,
    hash_stream,
    is_digest,
    parse_digest,
)
from ingot.registry.errors import (
    BlobModifiedError,
    BlobNotFoundError,
    DigestError,
    DigestMismatchError,
    ReadOnlyStoreError,
    StoreError,
)
from ingot.registry.home import IngotHome
from ingot.registry.locks import file_lock, try_file_lock
from ingot.registry.reference import Reference

__all__ = ["BlobWriter", "Descriptor", "GcResult", "Store", "TagEntry", "is_read_only_path"]

OCTET_STREAM = "application/octet-stream"
# `.incomplete` files and scratch files older than this are leftovers of a crash.
STALE_AFTER_S = 3600.0
# Resumable partial downloads are kept a day for a rerun to continue them.
STALE_PARTIAL_AFTER_S = 86400.0
FICLONE = 0x40049409  # _IOW(0x94, 9, int) from linux/fs.h
_READ_ONLY = ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
# Blocks from this size on are hashed in a second thread while they are written (BlobWriter.write).
_OVERLAP_AT = 256 * 1024


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a blob is, its digest and size."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        parse_digest(self.digest)
        if not isinstance(self.size, int) or self.size < 0:
            raise StoreError(f"descriptor size must be a non-negative integer, got {self.size!r}")
        object.__setattr__(self, "annotations", dict(self.annotations))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: object) -> Descriptor:
        """Read a descriptor object, raising StoreError (or DigestError) when malformed."""
        if not isinstance(data, dict):
            raise StoreError(f"a descriptor must be a JSON object, got {type(data).__name__}")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise StoreError("descriptor without a mediaType")
        if not isinstance(digest, str):
            raise DigestError("descriptor without a digest")
        if isinstance(size, bool) or not isinstance(size, int):
            raise StoreError(f"descriptor {digest} has no integer size")
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise StoreError(f"descriptor {digest} has malformed annotations")
        artifact_type = data.get("artifactType")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=annotations,
            artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        )

    def with_media_type(self, media_type: str, annotations: Mapping[str, str] | None = None) -> Descriptor:
        return Descriptor(media_type, self.digest, self.size, dict(annotations or {}), self.artifact_type)


@dataclass(frozen=True)
class TagEntry:
    """One tag of the store: the reference, the manifest descriptor, and when it was tagged."""

    reference: Reference
    descriptor: Descriptor
    tagged_at: str | None


@dataclass(frozen=True)
class GcResult:
    """What `gc()` did. `skipped` is True when writers were busy and blobs were left alone."""

    removed: tuple[str, ...]
    freed_bytes: int
    stale_files_removed: int
    skipped: bool = False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _create_if_absent(path: Path, data: bytes) -> None:
    """Write `path` atomically unless it exists; never overwrites a concurrent writer's file."""
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_bytes(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _try_reflink(src: Path, dst: Path) -> bool:
    """Clone `src` to the new file `dst` with FICLONE; False (and no `dst`) where unsupported."""
    try:
        with open(src, "rb") as s, open(dst, "xb") as d:
            fcntl.ioctl(d.fileno(), FICLONE, s.fileno())
        return True
    except OSError:
        dst.unlink(missing_ok=True)
        return False


def is_read_only_path(path: Path) -> bool:
    """True when `path` (or its nearest existing parent) is on a read-only mount, or not writable by us.

    Root passes every permission check, so a mount flag is the only thing
    that stops root; both are asked.
    """
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        if os.statvfs(probe).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    return not os.access(probe, os.W_OK)


class Store:
    """One OCI image layout on disk. Safe to use from many processes at once.

    `read_only=True` opens it without writing anything (see the module docstring).
    """

    def __init__(self, root: str | Path, *, read_only: bool = False) -> None:
        self.root = Path(root)
        # A store on a read-only mount is read-only whatever the caller asked: `ingot list` in a
        # pod whose store is an image volume or a read-only PVC reads it instead of failing to create it.
        self.read_only = read_only or is_read_only_path(self.root)
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.partial_dir = self.root / "blobs" / ".partial"
        self.links_dir = self.root / ".links"
        self.tmp_dir = self.root / ".tmp"
        self.index_path = self.root / "index.json"
        self._index_lock = self.root / ".lock"
        self._gc_lock = self.root / ".gc.lock"
        if not self.read_only:
            self._ensure_layout()

    @classmethod
    def open(cls, home: IngotHome | None = None, *, read_only: bool = False) -> Store:
        """The store of `home` (default: from $INGOT_HOME), creating the home folder 0700 if it is missing."""
        home = home or IngotHome.from_env()
        if not read_only:
            with contextlib.suppress(OSError):  # a home that cannot be made: the store says why, below
                home.ensure()
        return cls(home.models, read_only=read_only)

    def _refuse_writes(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(
                f"cannot {what}: the store {self.root} is read-only",
                hint="pull or create models where the store is writable (an init container, CI), then serve",
            )

    def _ensure_layout(self) -> None:
        for d in (self.blobs_dir, self.partial_dir, self.links_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        _create_if_absent(
            self.root / "oci-layout", json.dumps({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}).encode()
        )
        _create_if_absent(self.index_path, self._encode_index({"schemaVersion": 2, "mediaType": mt.OCI_INDEX}, []))

    # ---- locks ------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Keep gc from running while a multi-step write (blobs, then manifest, then tag) is under way."""
        self._refuse_writes("write to the store")
        with file_lock(self._gc_lock, shared=True):
            yield

    # ---- blobs --------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob `digest` lives (whether or not it exists); the digest is validated first."""
        return self.blobs_dir / digest_hex(digest)

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        try:
            st = self.blob_path(digest).stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def blob_size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store") from None

    def read_blob(self, digest: str) -> bytes:
        """A (small) blob's bytes, verified against its digest."""
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(
                f"blob {digest} is not in the store", hint="pull or re-create the model"
            ) from None
        if digest_bytes(data) != digest:
            raise DigestMismatchError(
                f"blob {digest} is corrupt: its content hashes to {digest_bytes(data)}",
                hint="remove the model and pull or create it again",
            )
        return data

    def read_json(self, digest: str) -> Any:
        data = self.read_blob(digest)
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"blob {digest} is not valid JSON: {exc}") from None

    def verified_blob_path(self, digest: str, size: int | None = None) -> Path:
        """The path of a blob about to be used, after checking it is present and unmodified.

        Blobs that share an inode with a user's file (hardlinked by ingest_file)
        are checked against their recorded size and mtime, and re-hashed when
        those changed.
        """
        path = self.blob_path(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store", hint="pull or re-create the model") from None
        record = self._read_link_record(digest)
        if record is not None and (st.st_size, st.st_mtime_ns) != (record["size"], record["mtime_ns"]):
            with path.open("rb", buffering=0) as f:
                actual, _ = hash_stream(f, total=st.st_size)
            if actual != digest:
                raise BlobModifiedError(
                    f"blob {digest} no longer matches its digest: it shares its disk blocks with "
                    f"{record.get('source', 'a file')}, which was modified after it was added",
                    hint="run `ingot create` again (use --copy to keep an independent copy)",
                )
            if not self.read_only:  # a read-only store re-hashes on each use instead
                self._write_link_record(digest, path.stat(), record.get("source"), record.get("mode"))
        elif size is not None and st.st_size != size:
            raise DigestMismatchError(
                f"blob {digest} has {st.st_size} bytes, {size} expected", hint="remove the model and pull it again"
            )
        return path

    def ingest_bytes(
        self, data: bytes, *, media_type: str = OCTET_STREAM, annotations: Mapping[str, str] | None = None
    ) -> Descriptor:
        """Store `data` as a blob (atomically) and describe it."""
        digest = digest_bytes(data)
        descriptor = Descriptor(media_type, digest, len(data), dict(annotations or {}))
        if self.has_blob(digest, len(data)):
            return descriptor
        with self.writing():
            final = self.blob_path(digest)
            tmp = self._incomplete_path(digest_hex(digest))
            try:
                with open(tmp, "xb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                    written = os.fstat(f.fileno()).st_size
                if written != len(data):
                    raise DigestMismatchError(f"wrote {written} of {len(data)} bytes for {digest}")
                os.chmod(tmp, 0o444)
                self._publish(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
        return descriptor

    def ingest_file(
        self,
        src: str | Path,
        *,
        link: bool = True,
        progress: ProgressCallback | None = None,
        media_type: str = OCTET_STREAM,
        annotations: Mapping[str, str] | None = None,
        move: bool = False,
    ) -> Descriptor:
        """Store the file `src` as a blob, reading it once; see the module docstring for how.

        `link=False` always stores an independent copy. `move=True` says `src`
        is a scratch file the store may take over (quantize output): on the
        same filesystem it is renamed into place, leaving nothing to unlink.
        """
        self._refuse_writes("add a file to the store")
        src = Path(src).expanduser().resolve()
        try:
            st = src.stat()
        except FileNotFoundError:
            raise StoreError(f"no such file: {src}") from None
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{src} is not a regular file")
        same_fs = st.st_dev == self.blobs_dir.stat().st_dev
        with self.writing():
            if move and same_fs:
                digest, size = self._ingest_by_move(src, st, progress)
            elif link and same_fs:
                digest, size = self._ingest_by_link(src, st, progress)
            else:
                digest, size = self._ingest_by_copy(src, st.st_size, progress)
        if progress is not None:
            progress(Progress("stored", digest, size, size))
        return Descriptor(media_type, digest, size, dict(annotations or {}))

    def _ingest_by_link(self, src: Path, st: os.stat_result, progress: ProgressCallback | None) -> tuple[str, int]:
        clone = self._incomplete_path("ingest")
        if _try_reflink(src, clone):
            try:
                with clone.open("rb", buffering=0) as f:
                    digest, size = hash_stream(f, total=st.st_size, progress=progress)
                if not self.has_blob(digest, size):
                    os.chmod(clone, 0o444)
                    self._publish(clone, self.blob_path(digest))
                return digest, size
            finally:
                clone.unlink(missing_ok=True)

        with src.open("rb", buffering=0) as f:
            digest, size = hash_stream(f, total=st.st_size, progress=progress)
        if self.has_blob(digest, size):
            return digest, size
        fingerprint = (st.st_ino, st.st_size, st.st_mtime_ns)
        tmp = self._incomplete_path(digest_hex(digest))
        try:
            try:
                os.link(src, tmp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                    raise
                # No hardlinks here (or not to this user's file): copy after all.
                copied, _ = self._ingest_by_copy(src, st.st_size, None)
                if copied != digest:
                    raise StoreError(f"{src} changed while it was being added", hint="retry when nothing writes it")
                return digest, size
            now = tmp.stat()
            if (now.st_ino, now.st_size, now.st_mtime_ns) != fingerprint or now.st_size != size:
                raise StoreError(f"{src} changed while it was being added", hint="retry when nothing writes it")
            original_mode = stat.S_IMODE(now.st_mode)
            os.chmod(tmp, original_mode & _READ_ONLY)
            self._write_link_record(digest, tmp.stat(), str(src), original_mode)
            self._publish(tmp, self.blob_path(digest))
        finally:
            tmp.unlink(missing_ok=True)
        return digest, size

    def _ingest_by_move(self, src: Path, st: os.stat_result, progress: ProgressCallback | None) -> tuple[str, int]:
        with src.open("rb", buffering=0) as f:
            digest, size = hash_stream(f, total=st.st_size, progress=progress)
        if not self.has_blob(digest, size):
            os.chmod(src, 0o444)
            self._publish(src, self.blob_path(digest))
        return digest, size

    def _ingest_by_copy(self, src: Path, total: int, progress: ProgressCallback | None) -> tuple[str, int]:
        tmp = self._incomplete_path("ingest")
        try:
            with src.open("rb", buffering=0) as s, open(tmp, "xb", buffering=0) as d:
                digest, size = hash_stream(s, total=total, status="copying", progress=progress, sink=d.write)
                os.fsync(d.fileno())
                written = os.fstat(d.fileno()).st_size
            if written != size:
                raise DigestMismatchError(f"wrote {written} of {size} bytes while copying {src}")
            if not self.has_blob(digest, size):
                os.chmod(tmp, 0o444)
                self._publish(tmp, self.blob_path(digest))
            return digest, size
        finally:
            tmp.unlink(missing_ok=True)

    def _incomplete_path(self, stem: str) -> Path:
        return self.blobs_dir / f"{stem}.{secrets.token_hex(8)}.incomplete"

    def _publish(self, tmp: Path, final: Path) -> None:
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def _link_record_path(self, digest: str) -> Path:
        return self.links_dir / f"{digest_hex(digest)}.json"

    def _read_link_record(self, digest: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self._link_record_path(digest).read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(record, dict) or not isinstance(record.get("size"), int):
            return None
        return record

    def _write_link_record(self, digest: str, st: os.stat_result, source: str | None, mode: int | None) -> None:
        record = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "source": source, "mode": mode}
        _atomic_write(self._link_record_path(digest), json.dumps(record, sort_keys=True).encode())

    @contextmanager
    def blob_writer(self, digest: str, size: int, *, timeout: float | None = None) -> Iterator[BlobWriter]:
        """Write an incoming blob in pieces, resumable across processes (see BlobWriter)."""
        hex_ = digest_hex(digest)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise StoreError(f"invalid size {size!r} for blob {digest}")
        with self.writing(), file_lock(self.partial_dir / f"{hex_}.lock", timeout=timeout):
            writer = BlobWriter(self, digest, size, self.partial_dir / hex_)
            try:
                yield writer
            finally:
                writer.close()

    # ---- tags ---------------------------------------------------------------

    @staticmethod
    def _encode_index(header: Mapping[str, Any], manifests: list[dict[str, Any]]) -> bytes:
        index = dict(header)
        index["schemaVersion"] = 2
        index["mediaType"] = mt.OCI_INDEX
        index["manifests"] = manifests
        return json.dumps(index, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def _load_index(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        try:
            index = json.loads(self.index_path.read_bytes())
        except FileNotFoundError:
            return {}, []
        except ValueError as exc:
            raise StoreError(f"{self.index_path} is not valid JSON: {exc}", hint="restore it from a backup") from None
        if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
            raise StoreError(f"{self.index_path} is not an OCI image index")
        manifests = [m for m in index.get("manifests", []) if isinstance(m, dict)]
        header = {k: v for k, v in index.items() if k != "manifests"}
        return header, manifests

    @contextmanager
    def _editing_index(self) -> Iterator[list[dict[str, Any]]]:
        self._refuse_writes("change tags")
        with file_lock(self._index_lock):
            header, manifests = self._load_index()
            yield manifests
            _atomic_write(self.index_path, self._encode_index(header, manifests))

    @staticmethod
    def _ref_name(entry: Mapping[str, Any]) -> str | None:
        annotations = entry.get("annotations")
        if isinstance(annotations, dict):
            name = annotations.get(mt.ANNOTATION_REF_NAME)
            return name if isinstance(name, str) else None
        return None

    def tag(self, ref: Reference, descriptor: Descriptor) -> None:
        """Point `ref`'s tag at the manifest `descriptor` (replacing what it named before)."""
        if not self.has_blob(descriptor.digest):
            raise BlobNotFoundError(f"cannot tag {ref.short}: manifest {descriptor.digest} is not in the store")
        key = ref.without_digest().tagged
        entry = Descriptor(
            descriptor.media_type,
            descriptor.digest,
            descriptor.size,
            {mt.ANNOTATION_REF_NAME: key, mt.ANNOTATION_TAGGED_AT: _utc_now()},
            descriptor.artifact_type,
        ).to_json()
        with self.writing(), self._editing_index() as manifests:
            manifests[:] = [m for m in manifests if self._ref_name(m) != key]
            manifests.append(entry)
            manifests.sort(key=lambda m: self._ref_name(m) or "")

    def untag(self, ref: Reference) -> Descriptor | None:
        """Remove `ref`'s tag; return the descriptor it named, or None if there was none. Blobs stay until gc."""
        key = ref.without_digest().tagged
        removed: list[dict[str, Any]] = []
        with self._editing_index() as manifests:
            removed = [m for m in manifests if self._ref_name(m) == key]
            manifests[:] = [m for m in manifests if self._ref_name(m) != key]
        return Descriptor.from_json(removed[0]) if removed else None

    def resolve(self, ref: Reference) -> Descriptor | None:
        """The manifest `ref` names: by digest when it has one, else by tag; None if absent."""
        if ref.digest:
            if not self.has_blob(ref.digest):
                return None
            try:
                manifest = self.read_json(ref.digest)
            except StoreError:
                return None
            media_type = manifest.get("mediaType") if isinstance(manifest, dict) else None
            artifact = manifest.get("artifactType") if isinstance(manifest, dict) else None
            return Descriptor(
                media_type if isinstance(media_type, str) else mt.OCI_MANIFEST,
                ref.digest,
                self.blob_size(ref.digest),
                {},
                artifact if isinstance(artifact, str) else None,
            )
        key = ref.tagged
        _, manifests = self._load_index()
        for entry in manifests:
            if self._ref_name(entry) == key:
                return Descriptor.from_json(entry)
        return None

    def list_tags(self) -> list[TagEntry]:
        """Every tag whose ref.name is a full normalized ingot reference, sorted by reference."""
        _, manifests = self._load_index()
        out: list[TagEntry] = []
        for entry in manifests:
            name = self._ref_name(entry)
            if name is None:
                continue
            try:
                ref = Reference.parse(name)
                descriptor = Descriptor.from_json(entry)
            except (StoreError, ValueError):
                continue
            if ref.tagged != name:
                continue  # another tool's entry (e.g. a bare "v1" tag): not an ingot reference
            out.append(TagEntry(ref, descriptor, entry.get("annotations", {}).get(mt.ANNOTATION_TAGGED_AT)))
        return sorted(out, key=lambda t: str(t.reference))

    # ---- garbage collection -------------------------------------------------

    def _reachable(self, roots: list[dict[str, Any]]) -> set[str]:
        seen: set[str] = set()
        pending = [r.get("digest") for r in roots]
        while pending:
            digest = pending.pop()
            if not is_digest(digest) or digest in seen:
                continue
            seen.add(digest)
            try:
                doc = self.read_json(digest)
            except StoreError:
                continue
            if not isinstance(doc, dict):
                continue
            media_type = doc.get("mediaType")
            if media_type in mt.INDEX_TYPES or isinstance(doc.get("manifests"), list):
                pending.extend(m.get("digest") for m in doc.get("manifests", []) if isinstance(m, dict))
            if media_type in mt.MANIFEST_TYPES or "layers" in doc or "config" in doc:
                for child in [doc.get("config"), doc.get("subject"), *(doc.get("layers") or [])]:
                    if isinstance(child, dict) and is_digest(child.get("digest")):
                        seen.add(child["digest"])  # leaves: layers and configs are not walked further
        return seen

    def gc(self, *, wait: bool = True) -> GcResult:
        """Remove blobs no tag reaches (shared ones stay), crash leftovers, and stale scratch files.

        With `wait=False`, returns at once with `skipped=True` when another
        process is writing to the store.
        """
        self._refuse_writes("collect garbage")
        if wait:
            with file_lock(self._gc_lock):
                return self._collect()
        with try_file_lock(self._gc_lock) as locked:
            if not locked:
                return GcResult((), 0, 0, skipped=True)
            return self._collect()

    def _collect(self) -> GcResult:
        now = time.time()
        removed: list[str] = []
        freed = 0
        stale = 0
        with file_lock(self._index_lock):
            _, manifests = self._load_index()
            keep = self._reachable(manifests)
            for path in self.blobs_dir.iterdir():
                name = path.name
                try:
                    st = path.lstat()
                except FileNotFoundError:
                    continue
                if name.endswith(".incomplete"):
                    # Every writer holds .gc.lock shared, so under our exclusive
                    # lock any .incomplete is a crash leftover; the age is a margin.
                    if now - st.st_mtime > STALE_AFTER_S:
                        path.unlink(missing_ok=True)
                        stale += 1
                    continue
                digest = f"sha256:{name}"
                if is_digest(digest) and digest not in keep:
                    self._release_link(digest, path, st)
                    path.unlink(missing_ok=True)
                    self._link_record_path(digest).unlink(missing_ok=True)
                    removed.append(digest)
                    freed += st.st_size
        for record in self.links_dir.glob("*.json"):
            if not (self.blobs_dir / record.stem).exists():
                record.unlink(missing_ok=True)
        for path in self.tmp_dir.iterdir():
            try:
                if now - path.lstat().st_mtime > STALE_AFTER_S:
                    path.unlink(missing_ok=True)
                    stale += 1
            except (FileNotFoundError, IsADirectoryError, PermissionError):
                continue
        stale += self._collect_partials(now)
        return GcResult(tuple(sorted(removed)), freed, stale)

    def _release_link(self, digest: str, path: Path, st: os.stat_result) -> None:
        """Give a hardlinked user file its write bits back when the store lets go of it.

        Only when exactly one other name remains (the user's file): with more,
        another store or the user's own links may still rely on the protection.
        """
        record = self._read_link_record(digest)
        mode = record.get("mode") if record else None
        if isinstance(mode, int) and st.st_nlink == 2:
            try:
                os.chmod(path, mode)
            except OSError:
                pass  # not ours to fix (another owner); the blob goes either way

    def _collect_partials(self, now: float) -> int:
        removed = 0
        for path in self.partial_dir.iterdir():
            if path.suffix == ".lock" or not is_digest(f"sha256:{path.name}"):
                continue
            try:
                if now - path.stat().st_mtime <= STALE_PARTIAL_AFTER_S:
                    continue
            except FileNotFoundError:
                continue
            lock = self.partial_dir / f"{path.name}.lock"
            with try_file_lock(lock) as locked:
                if locked:
                    path.unlink(missing_ok=True)
                    lock.unlink(missing_ok=True)
                    removed += 1
        return removed


class BlobWriter:
    """An incoming blob written in pieces to `blobs/.partial/<hex>`, under that digest's lock.

    `offset` is how many bytes a previous, interrupted writer left (resume by
    asking the server for the rest); `write()` appends; `reset()` starts over
    (a server that ignored a Range request); `commit()` checks size and sha256
    and only then moves the file into `blobs/`. A mismatch deletes the partial
    file and raises DigestMismatchError. `exists` is True when the blob is
    already in the store: nothing needs writing, `commit()` just describes it.
    """

    def __init__(self, store: Store, digest: str, size: int, partial: Path) -> None:
        self.store = store
        self.digest = digest
        self.size = size
        self.partial = partial
        self.exists = store.has_blob(digest, size)
        self._file: Any = None
        self._hasher: Any = None
        self._hashing: ThreadPoolExecutor | None = None
        self._offset = 0
        if not self.exists:
            self._open()

    def _open(self) -> None:
        self._file = open(self.partial, "a+b", buffering=0)  # noqa: SIM115 - closed in close()
        self._hasher = hashlib.sha256()
        self._file.seek(0)
        have = os.fstat(self._file.fileno()).st_size
        if have > self.size:
            self._file.truncate(0)
            have = 0
        done = 0
        while done < have:
            chunk = self._file.read(min(CHUNK_SIZE, have - done))
            if not chunk:
                break
            self._hasher.update(chunk)
            done += len(chunk)
        self._offset = done
        self._file.seek(0, os.SEEK_END)

    @property
    def offset(self) -> int:
        """Bytes already written (from this or an earlier, interrupted writer)."""
        return self.size if self.exists else self._offset

    def write(self, data: bytes | memoryview) -> None:
        if self.exists:
            raise StoreError(f"blob {self.digest} is already in the store; nothing to write")
        if self._offset + len(data) > self.size:
            self.discard()
            raise DigestMismatchError(
                f"blob {self.digest} is larger than the {self.size} bytes announced", hint="retry; the source is faulty"
            )
        if len(data) >= _OVERLAP_AT:
            # The hash and the write of a large block run at once: both release the GIL, and on a fast network
            # they, not the socket, set the pace of a pull (benchmarks/bench_transfer.py --without-fsync).
            if self._hashing is None:
                self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingot-hash")
            hashed = self._hashing.submit(self._hasher.update, data)
            try:
                self._file.write(data)
            finally:
                hashed.result()
        else:
            self._file.write(data)
            self._hasher.update(data)
        self._offset += len(data)

    def reset(self) -> None:
        """Drop what was written and start from byte 0."""
        if self.exists:
            return
        self._file.truncate(0)
        self._file.seek(0)
        self._hasher = hashlib.sha256()
        self._offset = 0

    def discard(self) -> None:
        """Delete the partial file."""
        self.close()
        self.partial.unlink(missing_ok=True)

    def commit(self, media_type: str = OCTET_STREAM, annotations: Mapping[str, str] | None = None) -> Descriptor:
        """Verify size and sha256, then make the blob visible. Mismatch: partial deleted, DigestMismatchError."""
        descriptor = Descriptor(media_type, self.digest, self.size, dict(annotations or {}))
        if self.exists:
            return descriptor
        if self._file is None:
            raise StoreError(f"blob writer for {self.digest} is closed")
        os.fsync(self._file.fileno())
        actual_size = os.fstat(self._file.fileno()).st_size
        actual = f"sha256:{self._hasher.hexdigest()}"
        if actual_size != self.size or actual != self.digest:
            self.discard()
            what = f"{actual_size} bytes" if actual_size != self.size else f"content hashing to {actual}"
            raise DigestMismatchError(
                f"blob {self.digest}: received {what}, expected {self.size} bytes with that digest",
                hint="the download was corrupted; retry",
            )
        self._file.close()
        self._file = None
        os.chmod(self.partial, 0o444)
        self.store._publish(self.partial, self.store.blob_path(self.digest))
        self.exists = True
        return descriptor

    def close(self) -> None:
        """Release the file; the partial stays for a later resume."""
        if self._hashing is not None:
            self._hashing.shutdown()
            self._hashing = None
        if self._file is not None:
            self._file.close()
            self._file = None
