"""sha256 digests: validation of `sha256:<hex>` strings and streaming hashing with progress.

Only sha256 is accepted: it is what every OCI registry supports and the only
algorithm the store lays out on disk. A digest string is validated with one
regular expression before it is ever used to build a path, so a hostile
manifest cannot name `sha256:../../etc/passwd`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ingot.registry.errors import DigestError

__all__ = [
    "CHUNK_SIZE",
    "Progress",
    "ProgressCallback",
    "digest_bytes",
    "digest_file",
    "digest_hex",
    "is_digest",
    "parse_digest",
]

ALGORITHM = "sha256"
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

# 1 MiB reads: large enough that per-call overhead vanishes next to hashing,
# small enough to report progress smoothly.
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class Progress:
    """One progress report: what is happening, to which blob, how far along.

    `digest` is None while it is not known yet (hashing a new file);
    `total` is 0 when the size is unknown.
    """

    status: str
    digest: str | None
    total: int
    completed: int


ProgressCallback = Callable[[Progress], None]


def is_digest(value: object) -> bool:
    """Whether `value` is a well-formed `sha256:<64 lowercase hex>` string."""
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def parse_digest(value: str) -> str:
    """Return `value` if it is a valid digest, else raise DigestError saying what is wrong."""
    if is_digest(value):
        return value
    if not isinstance(value, str):
        raise DigestError(f"digest must be a string, not {type(value).__name__}")
    shown = value if len(value) <= 80 else value[:77] + "..."
    if ":" not in value:
        raise DigestError(f"invalid digest {shown!r}: missing the 'sha256:' prefix")
    algorithm, _, hex_part = value.partition(":")
    if algorithm != ALGORITHM:
        raise DigestError(f"unsupported digest algorithm {algorithm!r} in {shown!r}: only sha256 is supported")
    raise DigestError(
        f"invalid digest {shown!r}: expected 64 lowercase hex characters after 'sha256:', got {len(hex_part)}"
        + ("" if re.fullmatch(r"[0-9a-f]*", hex_part) else " (with characters outside 0-9a-f)")
    )


def digest_hex(digest: str) -> str:
    """The hex part of a validated digest."""
    return parse_digest(digest).split(":", 1)[1]


def digest_bytes(data: bytes) -> str:
    """The sha256 digest string of `data`."""
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def hash_stream(
    stream: BinaryIO,
    *,
    total: int = 0,
    status: str = "hashing",
    progress: ProgressCallback | None = None,
    sink: Callable[[memoryview], object] | None = None,
) -> tuple[str, int]:
    """Hash `stream` to its end in one pass; return (digest, size).

    `sink`, when given, receives every chunk too (to copy while hashing, so a
    file is read once). Progress is reported after every chunk.
    """
    hasher = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    size = 0
    while True:
        n = stream.readinto(buffer)  # type: ignore[attr-defined]
        if not n:
            break
        chunk = view[:n]
        hasher.update(chunk)
        if sink is not None:
            sink(chunk)
        size += n
        if progress is not None:
            progress(Progress(status, None, total, size))
    return f"{ALGORITHM}:{hasher.hexdigest()}", size


def digest_file(path: str | Path, *, progress: ProgressCallback | None = None) -> tuple[str, int]:
    """Hash the file at `path`; return (digest, size)."""
    path = Path(path)
    with path.open("rb", buffering=0) as stream:
        total = path.stat().st_size
        return hash_stream(stream, total=total, progress=progress)
