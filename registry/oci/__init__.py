"""Push and pull packages to and from any OCI registry (CNCF distribution, Harbor, GHCR, ...).

::

    from ingot.registry.oci import push, pull, ClientOptions
    result = push(store, "localhost:5000/team/llama:1")      # only what the registry lacks
    result = pull(store, "registry.example.com/team/llama:1", options=ClientOptions(parallel=8))
    result.bytes_transferred, result.bytes_skipped

Built on oras-py's `Registry` (session, token endpoint); this package owns the
transfer loop: streaming chunked uploads, HEAD-skip, cross-repository mounts,
parallel blobs, Range resume, sha256 verification, retries with backoff and
`Retry-After`, and progress as `Progress(status, digest, total, completed)`.
Credentials come from Docker's config.json (`$DOCKER_CONFIG`, credsStore,
credHelpers); see `credentials.py`. User documentation: docs/registries.md.
"""

from __future__ import annotations

from ingot.registry.oci.client import RegistryClient
from ingot.registry.oci.credentials import Credentials, erase_credentials, load_credentials, save_credentials
from ingot.registry.oci.errors import (
    CredentialsError,
    ManifestRejectedError,
    RegistryAuthError,
    RegistryConnectionError,
    RegistryError,
    RegistryNotFoundError,
    RegistryProtocolError,
    UnsupportedFormatError,
)
from ingot.registry.oci.options import ClientOptions, RetryPolicy, Timeouts, is_loopback_host
from ingot.registry.oci.pull import pull
from ingot.registry.oci.push import push
from ingot.registry.oci.result import TransferResult

__all__ = [
    "ClientOptions",
    "Credentials",
    "CredentialsError",
    "ManifestRejectedError",
    "RegistryAuthError",
    "RegistryClient",
    "RegistryConnectionError",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryProtocolError",
    "RetryPolicy",
    "Timeouts",
    "TransferResult",
    "UnsupportedFormatError",
    "erase_credentials",
    "is_loopback_host",
    "load_credentials",
    "pull",
    "push",
    "save_credentials",
]
