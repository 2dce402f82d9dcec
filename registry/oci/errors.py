"""Errors raised while talking to a remote registry, each one line with a hint.

The tree (all under `ingot.registry.errors.IngotError`)::

    RegistryError                     anything that went wrong with a remote registry
    ├── RegistryAuthError                 401/403: credentials missing, rejected or not allowed
    ├── RegistryNotFoundError (LookupError)  no such repository, tag, manifest or blob
    ├── RegistryConnectionError (OSError) unreachable, TLS failure, or faults that outlived retries
    ├── RegistryProtocolError             an answer the distribution spec does not allow
    ├── ManifestRejectedError             a remote manifest ingot refuses (size, JSON, paths, blobs)
    ├── UnsupportedFormatError            a package whose media types ingot cannot convert
    └── CredentialsError                  docker config.json / credential helper trouble

Blob bytes that do not match their digest surface as the store's
`DigestMismatchError`: the store is where they are refused.
"""

from __future__ import annotations

from ingot.registry.errors import IngotError

__all__ = [
    "CredentialsError",
    "ManifestRejectedError",
    "RegistryAuthError",
    "RegistryConnectionError",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryProtocolError",
    "UnsupportedFormatError",
]


class RegistryError(IngotError):
    """A remote registry operation failed."""


class RegistryAuthError(RegistryError, PermissionError):
    """The registry refused us: no credentials, wrong credentials, or no permission."""


class RegistryNotFoundError(RegistryError, LookupError):
    """The registry has no such repository, tag, manifest or blob."""


class RegistryConnectionError(RegistryError, OSError):
    """The registry could not be reached, or kept failing after every retry."""


class RegistryProtocolError(RegistryError):
    """The registry answered something the OCI distribution spec does not allow."""


class ManifestRejectedError(RegistryError):
    """A manifest from a registry is refused before anything is written to the store."""


class UnsupportedFormatError(RegistryError):
    """A package's media types belong to no format ingot can run."""


class CredentialsError(RegistryError):
    """Reading or writing docker credentials failed."""
