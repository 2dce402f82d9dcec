"""Where the daemon listens and where clients connect: `unix:PATH` or `host:port`.

`INGOT_HOST` (clients) and `ingot serve --listen` (the daemon) share this
syntax. Without either, both sides use the unix socket `$INGOT_SOCKET`, or
`$INGOT_HOME/ingot.sock` (a read-only INGOT_HOME, as in a container, needs
INGOT_SOCKET elsewhere).

    unix:/run/ingot.sock        a unix socket (also unix:///run/ingot.sock)
    /run/ingot.sock             a bare absolute path is a unix socket too
    127.0.0.1:7733              TCP; hosts may be names, IPv4 or [IPv6]
    localhost                   TCP on the default port
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_PORT",
    "HOST_ENV",
    "SOCKET_ENV",
    "SOCKET_NAME",
    "Address",
    "AddressError",
    "default_socket",
    "parse_address",
    "client_address",
    "missing_protection",
]

HOST_ENV = "INGOT_HOST"
SOCKET_ENV = "INGOT_SOCKET"
SOCKET_NAME = "ingot.sock"
DEFAULT_PORT = 7733


class AddressError(ValueError):
    """An address does not parse; str() says what is wrong and what would be right."""


@dataclass(frozen=True)
class Address:
    """A unix socket (`unix_path` set) or a TCP endpoint (`host` and `port` set)."""

    unix_path: Path | None = None
    host: str | None = None
    port: int | None = None

    @property
    def is_unix(self) -> bool:
        return self.unix_path is not None

    @property
    def is_loopback(self) -> bool:
        """True for unix sockets and TCP bound to a loopback interface only."""
        if self.is_unix:
            return True
        assert self.host is not None
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def grpc_target(self) -> str:
        """The string grpc.server.add_*_port and grpc.*_channel take."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.grpc_target


def missing_protection(address: Address, *, has_tls: bool, has_token: bool) -> str | None:
    """What a listener on `address` lacks to be exposed beyond this machine, or None when it may start.

    Loopback (and unix sockets) need nothing; anything else needs TLS and a
    token, so that neither traffic nor access is open to the network.
    """
    if address.is_loopback or (has_tls and has_token):
        return None
    parts = [
        part
        for part, absent in (
            ("TLS (--tls-cert and --tls-key)", not has_tls),
            ("a token (INGOT_TOKEN or --token-file)", not has_token),
        )
        if absent
    ]
    return " and ".join(parts)


def parse_address(text: str) -> Address:
    """Parse `unix:PATH`, an absolute path, `host:port` or `host`; raise AddressError."""
    text = text.strip()
    if not text:
        raise AddressError("empty address; write unix:PATH or HOST:PORT")
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise AddressError(f"{text!r} names no socket path; write unix:/path/to/ingot.sock")
        return Address(unix_path=Path(path).expanduser().absolute())
    if text.startswith(("/", "~")):
        return Address(unix_path=Path(text).expanduser().absolute())
    for scheme in ("http://", "https://", "grpc://"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    host, port = _split_host_port(text)
    return Address(host=host, port=port)


def _split_host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError(f"{text!r}: an IPv6 host needs its closing ']', e.g. [::1]:{DEFAULT_PORT}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise AddressError(f"{text!r}: expected ':PORT' after the IPv6 host")
        raw_port = rest[1:] if rest else ""
    elif text.count(":") > 1:
        raise AddressError(f"{text!r}: put an IPv6 host in brackets, e.g. [::1]:{DEFAULT_PORT}")
    else:
        host, _, raw_port = text.partition(":")
    if not host:
        raise AddressError(f"{text!r} names no host; write HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    if not raw_port:
        return host.lower(), DEFAULT_PORT
    if not raw_port.isdigit() or not 0 <= int(raw_port) <= 65535:
        raise AddressError(f"{text!r}: port {raw_port!r} is not a number from 0 to 65535")
    return host.lower(), int(raw_port)


def default_socket(home_root: Path, env: Mapping[str, str] | None = None) -> Address:
    """The unix socket a daemon with this INGOT_HOME listens on: `$INGOT_SOCKET`, else `home/ingot.sock`."""
    env = os.environ if env is None else env
    raw = (env.get(SOCKET_ENV) or "").strip()
    if raw:
        return Address(unix_path=Path(raw).expanduser().absolute())
    return Address(unix_path=home_root / SOCKET_NAME)


def client_address(home_root: Path, env: Mapping[str, str] | None = None) -> Address:
    """Where a client connects: `$INGOT_HOST` if set, else the home folder's socket."""
    env = os.environ if env is None else env
    raw = (env.get(HOST_ENV) or "").strip()
    if not raw:
        return default_socket(home_root, env)
    try:
        return parse_address(raw)
    except AddressError as exc:
        raise AddressError(f"{HOST_ENV}: {exc}") from None
