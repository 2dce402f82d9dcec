"""Errors raised by ingot.registry, each one a user-facing message with a hint.

The tree::

    IngotError                      base: `str(e)` is one line fit for a terminal
    ├── ReferenceError (ValueError)     a model reference does not parse (which part, what is allowed)
    ├── ModelNotFoundError (LookupError) no such tag or manifest in the local store
    ├── PackageError                    a package cannot be built or read (FROM, layers, manifest)
    └── StoreError                      the local store itself
        ├── DigestError (ValueError)        a digest string is malformed
        ├── BlobNotFoundError               a blob a manifest names is missing
        ├── DigestMismatchError             content does not hash to the digest or size it claims
        ├── BlobModifiedError               a hardlinked source file was edited after `ingot create`
        ├── LockTimeoutError                another process held a store lock for too long
        └── ReadOnlyStoreError              a write to a store opened read-only (an image volume, a read-only PVC)

Every error keeps the bare message in `.message` and an optional `.hint`
(what to do next); `str()` joins them with "; " so the CLI prints one line.
"""

from __future__ import annotations

import builtins

__all__ = [
    "BlobModifiedError",
    "BlobNotFoundError",
    "DigestError",
    "DigestMismatchError",
    "IngotError",
    "LockTimeoutError",
    "ModelNotFoundError",
    "PackageError",
    "ReadOnlyStoreError",
    "ReferenceError",
    "StoreError",
]


class IngotError(Exception):
    """Base of every error ingot reports to a user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}; {hint}" if hint else message)


# The issue names it ReferenceError; it deliberately shadows the weakref
# builtin inside modules that import it, and still is a ValueError.
class ReferenceError(IngotError, ValueError):  # noqa: A001 - name fixed by the public API
    """A model reference string is malformed."""


class ModelNotFoundError(IngotError, LookupError):
    """A reference names nothing in the local store."""


class PackageError(IngotError):
    """A package cannot be built from its inputs, or a stored one is malformed."""


class StoreError(IngotError):
    """The local store cannot do what was asked."""


class DigestError(StoreError, ValueError):
    """A digest string is not `sha256:<64 lowercase hex>`."""


class BlobNotFoundError(StoreError, builtins.FileNotFoundError):
    """A blob is absent from the store."""


class DigestMismatchError(StoreError):
    """Bytes do not hash to the digest (or have the size) they were announced with."""


class BlobModifiedError(StoreError):
    """A blob that shares its inode with a user's file no longer matches its digest."""


class LockTimeoutError(StoreError, TimeoutError):
    """A store lock was not acquired in time."""


class ReadOnlyStoreError(StoreError):
    """Something asked to write to a store opened read-only."""
