"""Connecting the CLI to the daemon.

Where: `$INGOT_HOST` (`unix:PATH` or `HOST:PORT`), else the unix socket
`$INGOT_HOME/ingot.sock`. Over TCP, TLS is used when the host is not
loopback or `$INGOT_TLS_CA` names a PEM bundle to trust (the daemon's
certificate or its CA); `$INGOT_TOKEN` is sent as `authorization: Bearer`.

`connect()` gives stubs for the three ingot.v1 services; `check()` asks the
health service and, when nothing answers, raises `DaemonUnavailableError`
saying how to start a daemon. `rpc_error()` turns a grpc.RpcError into one
`ClientError` line for `@user_errors`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ingot.daemon.address import HOST_ENV, Address, AddressError, client_address
from ingot.daemon.constants import TOKEN_ENV
from ingot.proto.ingot.v1 import inference_pb2_grpc, models_pb2_grpc, runtime_pb2_grpc
from ingot.registry.home import IngotHome

__all__ = [
    "TLS_CA_ENV",
    "Client",
    "ClientError",
    "DaemonUnavailableError",
    "connect",
    "rpc_error",
]

TLS_CA_ENV = "INGOT_TLS_CA"
_MESSAGE_LIMIT = 64 * 1024 * 1024


class ClientError(Exception):
    """A request the daemon refused or could not serve; str() is one line for the user."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class DaemonUnavailableError(ClientError):
    """No daemon answers at the configured address."""


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        metadata.append(self._metadata)
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation: Any, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Any, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._with_token(details), request)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


@dataclass
class Client:
    """A channel to one daemon and its stubs."""

    address: Address
    channel: grpc.Channel
    inference: inference_pb2_grpc.InferenceStub
    models: models_pb2_grpc.ModelsStub
    runtime: runtime_pb2_grpc.RuntimeStub
    health: health_pb2_grpc.HealthStub

    def check(self, timeout: float = 5.0) -> None:
        """Raise DaemonUnavailableError unless the daemon answers SERVING."""
        try:
            reply = self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise DaemonUnavailableError(_not_running(self.address), exc.code()) from None
            raise rpc_error(exc) from None
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise DaemonUnavailableError(f"the ingot daemon at {self.address} is starting up or shutting down; retry in a moment")

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _not_running(address: Address) -> str:
    if address.is_unix:
        return (
            f"no ingot daemon is running at {address}; start one with 'ingot serve' "
            f"(in another terminal, or 'ingot serve &'), or set {HOST_ENV} to where one listens"
        )
    return f"no ingot daemon answers at {address}; check {HOST_ENV}, or start one there with 'ingot serve --listen'"


def connect(env: Mapping[str, str] | None = None) -> Client:
    """A client for the daemon `env` points at (default: os.environ); raises ClientError for bad settings."""
    env = os.environ if env is None else env
    home = IngotHome.from_env(env)
    try:
        address = client_address(home.root, env)
    except AddressError as exc:
        raise ClientError(str(exc)) from None
    options = [
        ("grpc.max_send_message_length", _MESSAGE_LIMIT),
        ("grpc.max_receive_message_length", _MESSAGE_LIMIT),
    ]
    ca_path = (env.get(TLS_CA_ENV) or "").strip()
    if address.is_unix:
        channel = grpc.insecure_channel(address.grpc_target, options=options)
    elif ca_path or not address.is_loopback:
        root = None
        if ca_path:
            try:
                root = Path(ca_path).expanduser().read_bytes()
            except OSError as exc:
                raise ClientError(f"{TLS_CA_ENV}: cannot read {ca_path}: {exc.strerror or exc}") from None
        channel = grpc.secure_channel(address.grpc_target, grpc.ssl_channel_credentials(root), options=options)
    else:
        channel = grpc.insecure_channel(address.grpc_target, options=options)
    token = (env.get(TOKEN_ENV) or "").strip()
    if token:
        channel = grpc.intercept_channel(channel, _BearerToken(token))
    return Client(
        address=address,
        channel=channel,
        inference=inference_pb2_grpc.InferenceStub(channel),
        models=models_pb2_grpc.ModelsStub(channel),
        runtime=runtime_pb2_grpc.RuntimeStub(channel),
        health=health_pb2_grpc.HealthStub(channel),
    )


def rpc_error(exc: grpc.RpcError) -> ClientError:
    """One line for a failed call: the daemon's message (it already says what to do next)."""
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE and details and "failed to connect" in details.lower():
        return DaemonUnavailableError("lost the connection to the ingot daemon; is it still running?", code)
    return ClientError(details or (code.name.lower() if code else "request failed"), code)
