"""Bearer-token authentication for the daemon's TCP listener, as a server interceptor.

Clients send `authorization: Bearer <token>` metadata (the ingot CLI does when
`INGOT_TOKEN` is set). The health service stays open so load balancers and
`grpc_health_probe` can check the daemon without a secret. The unix socket
has no interceptor: its file mode (0600) is the access control there.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from ingot.daemon.constants import TOKEN_ENV

__all__ = ["TOKEN_ENV", "TokenAuthInterceptor", "read_token_file"]

_OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def read_token_file(path: Path) -> str:
    """The token in `path` (surrounding whitespace ignored); ValueError when empty or unreadable."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token


def _deny(message: str) -> grpc.RpcMethodHandler:
    def abort(request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(abort)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()
        self._missing = _deny(f"this daemon requires a token: set {TOKEN_ENV} (sent as 'authorization: Bearer TOKEN')")
        self._wrong = _deny(f"the token was rejected; check {TOKEN_ENV}")

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if handler_call_details.method.startswith(_OPEN_PREFIXES):
            return continuation(handler_call_details)
        supplied = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                supplied = value.encode() if isinstance(value, str) else value
                break
        if supplied is None:
            return self._missing
        # Constant time, so the token cannot be guessed byte by byte from timings.
        if not hmac.compare_digest(supplied, self._expected):
            return self._wrong
        return continuation(handler_call_details)
