"""Telling a running daemon that a model was rebuilt, so it hot-swaps to the new build.

The daemon resolves a model's tag on every request and keys its loaded
runners by digest (ingot.daemon.scheduler): once the watcher has re-tagged,
new requests already ask for the new digest; the scheduler lets requests in
flight finish on the old runner, then starts the new one, and requests that
arrive meanwhile wait rather than fail. What the watcher adds is the nudge:
for every tag of the model the daemon has loaded with an older digest, a
`Runtime.Load` of that tag, so the swap happens now (and the old runner's
memory is returned) instead of on the next request. Models the daemon has
not loaded are left alone. The loaded copy's keep-alive is carried over.

`Load` blocks until the old runner's requests have finished, so the watcher
calls `reload` from a thread of its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import grpc

from ingot.daemon.address import Address, AddressError, client_address
from ingot.daemon.auth import TOKEN_ENV
from ingot.proto.ingot.v1 import runtime_pb2, runtime_pb2_grpc
from ingot.registry.home import IngotHome
from ingot.registry.reference import Reference

from .errors import Problem

__all__ = ["DaemonReloader", "ReloadResult", "Reloader"]

TLS_CA_ENV = "INGOT_TLS_CA"
_LIST_TIMEOUT_S = 10.0
# A swap waits for the old runner's streams to finish, which may take long.
_LOAD_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class ReloadResult:
    """`swapped`: the daemon now serves the digest; `not-loaded`: it had no copy to swap;
    `no-daemon`: nothing answered; `failed`: the daemon refused (problem says why)."""

    result: Literal["swapped", "not-loaded", "no-daemon", "failed"]
    problem: Problem | None = None


class Reloader(Protocol):
    """Whatever can make a serving process pick up a new build of a model."""

    def reload(self, references: Sequence[Reference], digest: str) -> ReloadResult: ...


def _keep_alive(model: runtime_pb2.RunningModel) -> str | None:
    """The keep-alive that leaves the swapped model loaded as long as the old one would have been."""
    if model.keep_forever:
        return "-1"
    if model.HasField("expires_at"):
        left = model.expires_at.ToSeconds() - time.time()
        return f"{max(int(left), 1)}s"
    return None  # busy right now: the daemon's default applies after the swap


class DaemonReloader:
    """Hot-swaps through a daemon's gRPC `Runtime` service (the daemon's own socket when run inside it)."""

    def __init__(
        self,
        address: Address,
        *,
        token: str | None = None,
        tls_ca: Path | None = None,
        load_timeout: float = _LOAD_TIMEOUT_S,
    ) -> None:
        self.address = address
        self._token = token
        self._tls_ca = tls_ca
        self._load_timeout = load_timeout

    @classmethod
    def from_env(cls, home: IngotHome, env: Mapping[str, str] | None = None) -> DaemonReloader:
        """The daemon the ingot CLI would talk to: `$INGOT_HOST`, else `$INGOT_HOME/ingot.sock`."""
        env = os.environ if env is None else env
        try:
            address = client_address(home.root, env)
        except AddressError as exc:
            raise ValueError(str(exc)) from None
        ca = (env.get(TLS_CA_ENV) or "").strip()
        token = (env.get(TOKEN_ENV) or "").strip()
        return cls(address, token=token or None, tls_ca=Path(ca).expanduser() if ca else None)

    def _channel(self) -> grpc.Channel:
        target = self.address.grpc_target
        if self.address.is_unix or (self._tls_ca is None and self.address.is_loopback):
            return grpc.insecure_channel(target)
        root = self._tls_ca.read_bytes() if self._tls_ca is not None else None
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(root))

    def reload(self, references: Sequence[Reference], digest: str) -> ReloadResult:
        metadata = (("authorization", f"Bearer {self._token}"),) if self._token else None
        names = {ref.without_digest().tagged for ref in references}
        try:
            channel = self._channel()
        except OSError as exc:
            return ReloadResult("failed", Problem("reload", f"cannot read {TLS_CA_ENV}: {exc.strerror or exc}"))
        with channel:
            runtime = runtime_pb2_grpc.RuntimeStub(channel)
            try:
                running = runtime.ListRunning(runtime_pb2.ListRunningRequest(), timeout=_LIST_TIMEOUT_S,
                                              metadata=metadata)
            except grpc.RpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    return ReloadResult("no-daemon")
                return ReloadResult("failed", _rpc_problem(exc, self.address))
            loaded = [m for m in running.models if _tagged(m.name) in names]
            stale = [m for m in loaded if m.digest != digest]
            if not loaded:
                return ReloadResult("not-loaded")
            for model in stale:
                request = runtime_pb2.LoadRequest(model=model.name)
                keep_alive = _keep_alive(model)
                if keep_alive is not None:
                    request.keep_alive = keep_alive
                try:
                    runtime.Load(request, timeout=self._load_timeout, metadata=metadata)
                except grpc.RpcError as exc:
                    return ReloadResult("failed", _rpc_problem(exc, self.address))
        return ReloadResult("swapped")


def _tagged(name: str) -> str | None:
    """ListRunning shows short names (`chat`); compare full ones (`library/chat:latest`)."""
    try:
        return Reference.parse(name).tagged
    except ValueError:
        return None


def _rpc_problem(exc: grpc.RpcError, address: Address) -> Problem:
    code = exc.code().name if hasattr(exc, "code") and exc.code() else "UNKNOWN"
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return Problem(
        "reload",
        f"the daemon at {address} refused the hot-swap ({code}): {details}",
        "the new build is tagged; the daemon loads it on the next request",
    )
