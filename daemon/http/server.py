"""Running the HTTP front door next to the gRPC listeners: uvicorn in a thread of the daemon.

`start_http_server(services, host=..., port=...)` binds the socket in the
caller's thread (so "port in use" is an immediate, clear error), starts
uvicorn on it in a background thread and returns once it accepts requests.
Off loopback it requires TLS and a token, like the gRPC TCP listener.

Shutdown comes in two halves so the daemon can drain in between:
`request_stop(grace)` turns /health to 503 and stops accepting connections;
streams still running get `grace` seconds, then are cancelled; `join()` waits
for the thread. `stop()` does both.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Protocol

import uvicorn

from ingot.daemon.address import Address, missing_protection
from ingot.daemon.limits import ClientLimits

from .app import create_app
from .services import HttpServices
from .stall import WriteStallGuard

__all__ = ["HttpConfigError", "HttpServer", "TLSPaths", "start_http_server"]

_log = logging.getLogger("ingot.daemon.http")

_BACKLOG = 2048
_START_TIMEOUT_S = 30.0
DEFAULT_GRACE_SECONDS = 10.0


class HttpConfigError(ValueError):
    """The HTTP listener cannot start as configured; str() says what to change."""


class TLSPaths(Protocol):
    """A certificate (chain) and its key, PEM files (ingot.daemon.server.TLSFiles fits)."""

    @property
    def cert(self) -> Path: ...

    @property
    def key(self) -> Path: ...


class _Uvicorn(uvicorn.Server):
    """uvicorn, telling a waiting thread when it has started (or failed to)."""

    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self._started_event.set()


class HttpServer:
    """A running HTTP listener; see the module docstring for stopping it."""

    def __init__(self, server: _Uvicorn, thread: threading.Thread, app_state: object, host: str, port: int,
                 scheme: str) -> None:
        self._server = server
        self._thread = thread
        self._app_state = app_state
        self.host = host
        self.port = port
        self.scheme = scheme

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def stop_jobs(self) -> None:
        """Stop /v1/batches jobs (they resume at the next start); before the scheduler refuses new work."""
        jobs = getattr(self._app_state, "batch_jobs", None)
        if jobs is not None:
            jobs.stop()

    def request_stop(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        """Stop accepting requests; running streams get `grace_seconds` before they are cancelled."""
        self.stop_jobs()
        self._app_state.stopping = True  # type: ignore[attr-defined]
        self._server.config.timeout_graceful_shutdown = max(grace_seconds, 0.0)  # type: ignore[assignment]
        self._server.should_exit = True

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the server thread to end; True once it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        self.request_stop(grace_seconds)
        # uvicorn cancels what is left once the grace period is over; a little slack on top.
        if not self.join(grace_seconds + 5.0):
            self._server.force_exit = True
            self.join(5.0)


def check_http_listen(host: str, port: int, *, tls: TLSPaths | None, token: str | None) -> None:
    """Raise HttpConfigError unless the listener is loopback, or has both TLS and a token."""
    if not 0 <= port <= 65535:
        raise HttpConfigError(f"--http port {port} is not a number from 0 to 65535")
    missing = missing_protection(Address(host=host, port=port), has_tls=tls is not None, has_token=bool(token))
    if missing:
        raise HttpConfigError(f"serving HTTP on {host}:{port} (not loopback) requires {missing}; or use 127.0.0.1")
    if tls is not None:
        for label, path in (("certificate", tls.cert), ("key", tls.key)):
            if not Path(path).is_file():
                raise HttpConfigError(f"TLS {label} {path} does not exist or is not a file")


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise HttpConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart over TIME_WAIT, never share a live port
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        raise HttpConfigError(f"cannot listen on {host}:{port}: {exc.strerror} (is the port in use?)") from None
    sock.setblocking(False)
    return sock


def start_http_server(
    services: HttpServices,
    *,
    host: str,
    port: int,
    tls: TLSPaths | None = None,
    token: str | None = None,
    limits: ClientLimits = ClientLimits(),
) -> HttpServer:
    """Serve the HTTP API on host:port (port 0 picks a free one) until `stop()`; raises HttpConfigError."""
    check_http_listen(host, port, tls=tls, token=token)
    app = create_app(services, token=token, limits=limits, listen_host=host)
    sock = _bind(host, port)
    config = uvicorn.Config(
        # Outside Starlette's middleware: the guard needs the server's own `send` to drop a connection.
        WriteStallGuard(app, limits.write_stall_seconds),
        log_config=None,  # the daemon configures logging; uvicorn must not replace it
        access_log=False,  # every inference request already writes one log line
        lifespan="off",
        ssl_certfile=str(tls.cert) if tls is not None else None,
        ssl_keyfile=str(tls.key) if tls is not None else None,
        timeout_graceful_shutdown=int(DEFAULT_GRACE_SECONDS),
    )
    started = threading.Event()
    server = _Uvicorn(config, started)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread below
            failure.append(exc)
        finally:
            sock.close()
            started.set()

    thread = threading.Thread(target=run, name="ingot-http", daemon=True)
    thread.start()
    started.wait(_START_TIMEOUT_S)
    if not server.started:
        server.should_exit = True
        thread.join(5.0)
        reason = f": {failure[0]}" if failure else ""
        raise HttpConfigError(f"the HTTP server on {host}:{port} did not start{reason}")
    bound_port = int(sock.getsockname()[1])
    http = HttpServer(server, thread, app.state, host, bound_port, "https" if tls is not None else "http")
    if app.state.batch_jobs is not None:
        app.state.batch_jobs.start()  # resumes the jobs an earlier daemon left unfinished
    _log.info("HTTP API listening on %s (%s)", http.url, "token" if token else "no token")
    return http
