"""What the daemon accepts from its clients: Host names, request body sizes, and readers that stall.

::

    # $INGOT_HOME/config.yaml
    http:
      allowed_hosts: [ingot.lan, "*.lab.example"]   # Host names besides the loopback ones
      max_body_bytes: 16777216                      # larger request bodies get 413
    streams:
      write_stall_timeout: 60s                      # HTTP and gRPC; 0 turns it off

* `allowed_hosts` defends the HTTP API against DNS rebinding: a page whose
  name resolves to 127.0.0.1 is same-origin with the daemon in the browser,
  but still sends its own name in `Host`. Unset, a loopback listener answers
  only to loopback names (`localhost`, `*.localhost`), IP literals and its
  own listen name, as Ollama does since CVE-2024-28224; a listener off
  loopback (which always has a token, so a page cannot use it) takes any
  name. Set, the list applies to every listener; `"*"` allows every name.
* `max_body_bytes` caps what one HTTP request may send, before it is parsed.
* `write_stall_timeout`: a stream (SSE, NDJSON or gRPC) whose client has read
  nothing for this long is cancelled, its connection dropped and its slot
  freed, so clients that stop reading cannot hold a model's slots forever.

Free of heavy imports: `ingot serve` reads it before deciding to load FastAPI.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ingot.daemon.watch.yamlnodes import YamlValue

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_WRITE_STALL_SECONDS",
    "ClientLimits",
    "HostPolicy",
    "parse_http_section",
    "parse_streams_section",
]

# 16 MiB: a 128k-token conversation is well under 1 MiB of text; what is larger is a mistake or an attack
# (a 47 MB chat body once cost 41 s and 1.6 GB of daemon memory before it was refused).
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_WRITE_STALL_SECONDS = 60.0


@dataclass(frozen=True)
class ClientLimits:
    """The limits above; `allowed_hosts` None means the default rule."""

    allowed_hosts: tuple[str, ...] | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    write_stall_seconds: float = DEFAULT_WRITE_STALL_SECONDS  # 0: never


def _is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_name(header: str) -> str:
    """The name in a Host header: no port, no IPv6 brackets, no trailing dot, lower case."""
    text = header.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else text
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip(".")


@dataclass(frozen=True)
class HostPolicy:
    """Which `Host` names one HTTP listener answers to (see the module docstring)."""

    listen_host: str
    allowed: tuple[str, ...] | None = None

    def allows(self, header: str | None) -> bool:
        if header is None or not header.strip():
            return True  # HTTP/1.0 clients send none; a browser always does
        name = host_name(header)
        # An IP literal cannot be rebound: a page at http://IP/ is that IP's own origin.
        if _is_loopback_host(name) or _is_ip_literal(name) or name == host_name(self.listen_host):
            return True
        if self.allowed is None:
            return not _is_loopback_host(host_name(self.listen_host))
        return any(_matches(name, pattern) for pattern in self.allowed)

    def describe(self) -> str:
        """The names allowed, for the 403's message."""
        names = ["localhost", "*.localhost", "IP addresses", host_name(self.listen_host)]
        names += list(self.allowed or ())
        return ", ".join(dict.fromkeys(names))


def _matches(name: str, pattern: str) -> bool:
    pattern = pattern.strip().lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


def _host_pattern(value: YamlValue) -> str:
    text = value.string().strip().lower()
    body = text[2:] if text.startswith("*.") else text
    if text != "*" and (not body or any(c in body for c in "*/: ") or body.startswith(".")):
        raise value.error(
            f"{text!r} is not a host name",
            hint="write a name (ingot.lan), a wildcard suffix (*.lab.example) or * for any; no port, no scheme",
        )
    return text


def parse_http_section(value: YamlValue, base: ClientLimits) -> ClientLimits:
    """The `http:` section of config.yaml over `base`; raises ConfigError at the offending node."""
    fields = value.mapping(("allowed_hosts", "max_body_bytes"))
    allowed = base.allowed_hosts
    if "allowed_hosts" in fields:
        allowed = tuple(_host_pattern(item) for item in fields["allowed_hosts"].sequence(allow_scalar=True))
    max_body = fields["max_body_bytes"].integer(minimum=1024) if "max_body_bytes" in fields else base.max_body_bytes
    return ClientLimits(allowed_hosts=allowed, max_body_bytes=max_body, write_stall_seconds=base.write_stall_seconds)


def parse_streams_section(value: YamlValue, base: ClientLimits) -> ClientLimits:
    """The `streams:` section of config.yaml over `base`."""
    fields = value.mapping(("write_stall_timeout",))
    if "write_stall_timeout" not in fields:
        return base
    seconds = fields["write_stall_timeout"].duration()
    if 0 < seconds < 1:
        raise fields["write_stall_timeout"].error(
            f"{seconds:g} s is too short: a busy client would be cut off", hint="use 1s or more, or 0 for never"
        )
    return ClientLimits(allowed_hosts=base.allowed_hosts, max_body_bytes=base.max_body_bytes,
                        write_stall_seconds=seconds)
