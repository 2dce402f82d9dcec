"""Knobs of a registry connection, as frozen values passed down from the command line.

Defaults are named constants so the CLI, the daemon and the docs agree.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingot.registry.transfer_defaults import DEFAULT_PARALLEL

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_PARALLEL",
    "MAX_MANIFEST_BYTES",
    "ClientOptions",
    "RetryPolicy",
    "Timeouts",
    "is_loopback_host",
]

# Registries (distribution, Harbor, ECR) refuse manifests over 4 MiB; so do we.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# One PATCH per 64 MiB: few round trips on a fast link, bounded rework when a
# chunk has to be sent again.
DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a TCP connect, and between two reads of a response."""

    connect: float = 10.0
    read: float = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry 429/5xx answers and dropped connections.

    The delay doubles from `base_delay` up to `max_delay` (full jitter); a
    `Retry-After` header wins when the registry sends one, capped at
    `max_retry_after`. A download that made progress gets its budget back.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0


@dataclass(frozen=True)
class ClientOptions:
    """How to reach one registry.

    `insecure` means plain HTTP *and* no TLS verification, whichever the
    registry speaks: HTTPS is tried first without verifying the certificate
    (a self-signed registry), and plain HTTP when the host does not speak TLS.
    `ca_cert` is a PEM bundle for a private CA. Loopback hosts always use
    plain HTTP.
    """

    insecure: bool = False
    ca_cert: Path | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    parallel: int = DEFAULT_PARALLEL
    chunk_size: int = DEFAULT_CHUNK_SIZE
    # An explicit docker config.json; None follows $DOCKER_CONFIG, then ~/.docker.
    docker_config: Path | None = None

    def __post_init__(self) -> None:
        if self.parallel < 1:
            raise ValueError(f"parallel must be at least 1, not {self.parallel}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, not {self.chunk_size}")

    def scheme_for(self, host: str) -> Literal["http", "https", "probe"]:
        """`http` for loopback hosts, `probe` (HTTPS unverified, else HTTP) when insecure, else `https`."""
        if is_loopback_host(host):
            return "http"
        return "probe" if self.insecure else "https"

    def tls_verify(self) -> bool | str:
        """The `verify` argument requests takes: off, a CA bundle path, or the system store."""
        if self.insecure:
            return False
        if self.ca_cert is not None:
            return str(self.ca_cert)
        return True


def _split_host(host: str) -> str:
    """`name[:port]` or `[v6]:port` -> the bare host name or address."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") > 1:  # a bare IPv6 address without brackets
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: registries on this machine, reached over plain HTTP."""
    name = _split_host(host).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
