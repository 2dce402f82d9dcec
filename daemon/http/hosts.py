"""Refusing requests whose `Host` is not one of ours: the defence against DNS rebinding.

A web page on attacker.example that makes its name resolve to 127.0.0.1 is,
to the browser, same-origin with a daemon on loopback: without this check it
could list, pull, push, copy, delete and chat. The browser still sends
`Host: attacker.example`, so the daemon answers 403 to every name it does not
know. Which names it knows is `ingot.daemon.limits.HostPolicy` (config.yaml
`http.allowed_hosts`).
"""

from __future__ import annotations

from ingot.daemon.limits import HostPolicy, host_name

from .errors import HttpError, error_response
from .metrics import ASGIApp, Receive, Scope, Send

__all__ = ["HostCheckMiddleware"]


class HostCheckMiddleware:
    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), None)
        if self.policy.allows(host):
            await self.app(scope, receive, send)
            return
        assert host is not None
        message = (
            f"requests for host {host_name(host)!r} are refused (a defence against DNS rebinding); this daemon "
            f"answers to {self.policy.describe()}. Add the name to http.allowed_hosts in config.yaml"
        )
        await error_response(scope["path"], HttpError(403, message, code="host_not_allowed"))(scope, receive, send)
