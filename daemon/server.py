"""`ingot serve`: the daemon process -- listeners, services, signals and graceful shutdown.

Listeners:

* always a unix socket (default `$INGOT_HOME/ingot.sock`, mode 0600: only the
  owner can connect, so it needs no token);
* with `listen`, also TCP. Off loopback that requires TLS (`tls`) and a token
  (checked by `TokenAuthInterceptor`); on loopback both are optional (a token
  given is still enforced);
* with `health`, a plaintext TCP listener carrying only the standard health
  service, for probes that speak neither TLS nor tokens (Kubernetes' native
  gRPC probes). It tells nothing but SERVING / NOT_SERVING, so it may listen
  anywhere. Service "" (and each ingot.v1 service) is readiness: SERVING once
  every listener is up, NOT_SERVING from the start of shutdown.
  `LIVENESS_SERVICE` stays SERVING until the process exits, so a liveness
  probe never kills a daemon that is draining its streams.

Each listener is its own `grpc.server` sharing the same servicers, so the
token interceptor applies to TCP only. Both carry the ingot.v1 services, the
standard health service and server reflection.

Shutdown (SIGTERM, SIGINT, or `Daemon.shutdown()`): health turns NOT_SERVING,
new RPCs are refused, requests in flight get `grace_seconds` to finish, then
are cancelled (their streams end with done_reason "cancelled"), runners are
stopped and the socket file is removed. A second signal skips the grace period.
The whole shutdown takes at most `grace_seconds + SHUTDOWN_MARGIN_S` (what a
supervisor's kill timeout, e.g. terminationGracePeriodSeconds, must allow).

The store is opened read-only when `read_only` says so or when it sits on a
read-only mount (an image volume, a read-only PVC): serving then writes
nothing there, and Pull/Create/Copy/Delete fail with FAILED_PRECONDITION.
Packages mounted as folders (`model_dirs`, see ingot.registry.mounted) are
read once at start and served beside the store's.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import socket
import stat
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ingot.daemon.address import Address, missing_protection
from ingot.daemon.auth import TokenAuthInterceptor
from ingot.daemon.catalog import Catalog
from ingot.daemon.watch import DaemonReloader, WatchConfig, Watcher, start_watcher
from ingot.daemon.engine.runner_client import RunnerClient
from ingot.daemon.engine.types import LoadOptions
from ingot.daemon.hardware import HardwareReport, ProbeSources, detect_hardware
from ingot.daemon.hardware.cpu import detect_cpu
from ingot.daemon.keepalive import DEFAULT_KEEP_ALIVE, KeepAlive
from ingot.daemon.limits import ClientLimits
from ingot.daemon.memory import FreeMemory
from ingot.daemon.monitoring import DeviceMonitor, Monitoring
from ingot.daemon.signals import SignalWaiter
from ingot.daemon.stall import WriteStallInterceptor, WriteStallWatchdog
from ingot.daemon.scheduler import Scheduler, SchedulerLimits
from ingot.daemon.servicers import InferenceServicer, ModelsServicer, RuntimeServicer
from ingot.modelfile.template import DEFAULT_BUDGET, RenderBudget
from ingot.proto.ingot.v1 import inference_pb2, inference_pb2_grpc, models_pb2, models_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from ingot.registry.errors import IngotError
from ingot.registry.home import IngotHome
from ingot.registry.mounted import ModelDir, load_model_dirs
from ingot.registry.store import Store, is_read_only_path

if TYPE_CHECKING:
    from ingot.daemon.http import HttpServer, HttpServices

__all__ = ["LIVENESS_SERVICE", "SHUTDOWN_MARGIN_S", "ConfigError", "Daemon", "ServeConfig", "TLSFiles", "serve"]

_log = logging.getLogger("ingot.daemon")

# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
SERVICE_NAMES = (
    inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name,
    models_pb2.DESCRIPTOR.services_by_name["Models"].full_name,
    runtime_pb2.DESCRIPTOR.services_by_name["Runtime"].full_name,
)
_MESSAGE_LIMIT = 64 * 1024 * 1024  # embeddings of many long inputs exceed gRPC's 4 MiB default
# Spare worker threads beyond the admitted requests: ListRunning, health, Pull...
_SPARE_WORKERS = 32
# The health listener's service that stays SERVING while the process lives (liveness, not readiness).
LIVENESS_SERVICE = "liveness"
# What shutdown may take beyond --grace: the servers' own deadline after ours, the final
# chunks of cancelled streams, runners stopping (see Daemon.shutdown).
SHUTDOWN_MARGIN_S = 15.0
_PROBE_WORKERS = 4


class ConfigError(ValueError):
    """The serve options cannot work together; str() says what to change."""


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ServeConfig:
    home: IngotHome
    socket_path: Path
    listen: Address | None = None
    # The OpenAI- and Ollama-compatible HTTP API (ingot.daemon.http); off unless set.
    http: Address | None = None
    tls: TLSFiles | None = None
    token: str | None = field(default=None, repr=False)
    max_loaded: int = 3
    max_queue: int = 512
    parallel: int = 4
    # Of each model's `parallel` slots, how many batch-priority work leaves free for interactive requests.
    interactive_slots: int = 0
    keep_alive: KeepAlive = DEFAULT_KEEP_ALIVE
    max_memory: int | None = None
    grace_seconds: float = 10.0
    default_registry: str | None = None
    runner_startup_timeout: float = 120.0
    # The `watch:` section of config.yaml: a GitOps watcher running inside the daemon.
    watch: WatchConfig | None = None
    # Plaintext, health-only listener for probes (Kubernetes gRPC probes speak neither TLS nor tokens).
    health: Address | None = None
    # Packages mounted as folders (image volumes), served without copying.
    model_dirs: tuple[ModelDir, ...] = ()
    # True: never write to the store; None: read-only when the store is on a read-only mount.
    read_only: bool | None = None
    # The `templates:` section of config.yaml: what one prompt render may spend.
    template_budget: RenderBudget = DEFAULT_BUDGET
    # The `http:` and `streams:` sections: Host names, body cap, write-stall timeout.
    limits: ClientLimits = ClientLimits()

    def check(self) -> None:
        """Raise ConfigError for settings that cannot work."""
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH:
            raise ConfigError(
                f"the socket path {self.socket_path} is longer than {MAX_SOCKET_PATH} bytes, "
                "the limit of unix sockets; use a shorter INGOT_HOME or --socket"
            )
        for name in ("max_loaded", "max_queue", "parallel"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.interactive_slots < self.parallel:
            raise ConfigError(
                f"--interactive-slots must be 0 to --parallel - 1 ({self.parallel - 1}), got {self.interactive_slots}"
            )
        if self.grace_seconds < 0:
            raise ConfigError(f"--grace must not be negative, got {self.grace_seconds}")
        if self.max_memory is not None and self.max_memory <= 0:
            raise ConfigError(f"--max-memory must be positive, got {self.max_memory}")
        if self.listen is not None:
            if self.listen.is_unix:
                raise ConfigError("--listen takes HOST:PORT; the unix socket is always on (see --socket)")
            missing = missing_protection(self.listen, has_tls=self.tls is not None, has_token=bool(self.token))
            if missing:
                raise ConfigError(
                    f"listening on {self.listen} (not loopback) requires {missing}; or listen on 127.0.0.1 only"
                )
        if self.http is not None:
            if self.http.is_unix:
                raise ConfigError("--http takes HOST:PORT, e.g. 127.0.0.1:11435")
            missing = missing_protection(self.http, has_tls=self.tls is not None, has_token=bool(self.token))
            if missing:
                raise ConfigError(f"serving HTTP on {self.http} (not loopback) requires {missing}; or use 127.0.0.1")
        if self.health is not None and self.health.is_unix:
            raise ConfigError("--health takes HOST:PORT, e.g. 0.0.0.0:7734 (probes connect over TCP)")
        if self.tls is not None:
            for label, path in (("certificate", self.tls.cert), ("key", self.tls.key)):
                if not path.is_file():
                    raise ConfigError(f"TLS {label} {path} does not exist or is not a file")


class _Hardware:
    """Hardware for the planner and the scheduler: the slow probes once, free memory fresh each time.

    The first report (engine probe included) is taken in the background when
    the daemon starts. Later ones re-read only what changes: RAM (and cgroup
    limits) always, GPUs only on machines that have them.
    """

    def __init__(self, sources: ProbeSources) -> None:
        self._sources = sources
        self._lock = threading.Lock()
        self._first: HardwareReport | None = None

    def warm_up(self) -> None:
        threading.Thread(target=self.report, name="ingot-hardware-probe", daemon=True).start()

    def report(self) -> HardwareReport:
        with self._lock:
            if self._first is None:
                # The engine probe (a child process importing llama.cpp) only
                # matters where there is a GPU to offload to.
                first = detect_hardware(self._sources.env, probe_engine_support=False)
                if first.gpus:
                    first = detect_hardware(self._sources.env)
                self._first = first
                for problem in self._first.problems:
                    _log.info("hardware: %s", problem)
                return self._first
            first = self._first
        if first.gpus:
            return detect_hardware(self._sources.env, engine=first.engine)
        cpu, _ = detect_cpu(self._sources)
        return dataclasses.replace(first, cpu=cpu)

    def devices(self) -> HardwareReport:
        """The devices as first found (what telemetry reads); free memory in it is not fresh."""
        with self._lock:
            first = self._first
        return first if first is not None else self.report()

    def free(self) -> FreeMemory:
        report = self.report()
        return FreeMemory(
            ram_bytes=report.cpu.ram_available_bytes,
            vram_bytes=sum(g.free_bytes for g in report.gpus if report.engine.can_offload_to(g.backend)),
        )


def _socket_in_use(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(os.fspath(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _prepare_socket_path(path: Path) -> None:
    if is_read_only_path(path.parent):
        raise ConfigError(
            f"cannot create the socket {path}: {path.parent} is read-only; "
            "put it somewhere writable with INGOT_SOCKET or --socket, e.g. /tmp/ingot.sock"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"{path} exists and is not a socket; move it away or use --socket")
    if _socket_in_use(path):
        raise ConfigError(f"another ingot daemon is already listening on {path}; stop it first (or use --socket)")
    path.unlink()  # left behind by a daemon that did not shut down cleanly


class Daemon:
    """One running daemon; `start()`, then `wait()` or `shutdown()`."""

    def __init__(self, config: ServeConfig) -> None:
        config.check()
        self.config = config
        self._stopped = threading.Event()
        self._shutdown_lock = threading.Lock()
        self._shutting_down = False
        self._servers: list[grpc.Server] = []
        self._health = health.HealthServicer(experimental_non_blocking=True)
        # grpc's health servicer says SERVING for "" from birth; clients wait for
        # SERVING, so it must mean every listener (HTTP included) is up.
        self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        # The probe listener's own servicer: it keeps LIVENESS_SERVICE up while the rest drains.
        self._probe_health = health.HealthServicer(experimental_non_blocking=True)
        self._probe_health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        self._probe_server: grpc.Server | None = None
        self.health_port: int | None = None
        sources = ProbeSources.from_env(os.environ)
        self._hardware = _Hardware(sources)
        self.monitoring = Monitoring(devices=DeviceMonitor(sources, self._hardware.devices))
        self.tcp_port: int | None = None
        self.http: HttpServer | None = None
        # Streams whose client reads nothing are cancelled (config.yaml streams.write_stall_timeout).
        self.write_stalls = WriteStallWatchdog(config.limits.write_stall_seconds)
        self.watcher: Watcher | None = None
        store = Store.open(config.home, read_only=config.read_only is True)  # or found on a read-only mount
        try:
            mounted = load_model_dirs(config.model_dirs)
        except IngotError as exc:
            raise ConfigError(f"--model-dir: {exc}") from None
        if store.read_only:
            _log.info("the store %s is read-only: pulls, creates, deletes and the HTTP Batch API are off", store.root)
        self.catalog = Catalog(
            store,
            hardware=self._hardware.report,
            n_parallel=config.parallel,
            interactive_slots=config.interactive_slots,
            mounted=mounted,
        )
        self.scheduler = Scheduler(
            start_runner=self._start_runner,
            plan_load=self.catalog.plan,
            memory=self._hardware,
            limits=SchedulerLimits(
                max_loaded=config.max_loaded,
                max_queue=config.max_queue,
                max_memory=config.max_memory,
                default_keep_alive=config.keep_alive,
            ),
            events=self.monitoring.lifecycle,
        )
        self.monitoring.watch(self.scheduler)

    def _start_runner(self, options: LoadOptions) -> RunnerClient:
        return RunnerClient.start(
            options, startup_timeout=self.config.runner_startup_timeout, max_queue=self.config.max_queue
        )

    def _server(self, interceptors: tuple[grpc.ServerInterceptor, ...]) -> grpc.Server:
        workers = self.config.max_queue * self.config.max_loaded + _SPARE_WORKERS
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingot-rpc"),
            interceptors=(*interceptors, WriteStallInterceptor(self.write_stalls)),
            options=[
                ("grpc.so_reuseport", 0),  # a second daemon on the same port must fail, not share it
                ("grpc.max_send_message_length", _MESSAGE_LIMIT),
                ("grpc.max_receive_message_length", _MESSAGE_LIMIT),
            ],
        )
        inference_pb2_grpc.add_InferenceServicer_to_server(
            InferenceServicer(
                catalog=self.catalog,
                scheduler=self.scheduler,
                metrics=self.monitoring.requests,
                template_budget=self.config.template_budget,
            ),
            server,
        )
        models_pb2_grpc.add_ModelsServicer_to_server(
            ModelsServicer(
                catalog=self.catalog,
                scheduler=self.scheduler,
                default_registry=self.config.default_registry,
                template_budget=self.config.template_budget,
            ),
            server,
        )
        runtime_pb2_grpc.add_RuntimeServicer_to_server(
            RuntimeServicer(
                catalog=self.catalog, scheduler=self.scheduler, home=self.config.home, rates=self.monitoring.rates
            ),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        return server

    def _set_ready(self, status: int) -> None:
        for servicer in (self._health, self._probe_health):
            servicer.set("", status)
            for name in SERVICE_NAMES:
                servicer.set(name, status)

    def _start_probe_listener(self, address: Address) -> None:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=_PROBE_WORKERS, thread_name_prefix="ingot-probe"),
            options=[("grpc.so_reuseport", 0)],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._probe_health, server)
        try:
            port = server.add_insecure_port(address.grpc_target)
        except RuntimeError as exc:
            raise ConfigError(f"cannot listen on {address} (--health): {exc} (is the port in use?)") from None
        if port == 0:
            raise ConfigError(f"cannot listen on {address} (--health): the address is in use or not available")
        self._probe_health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        server.start()
        self._probe_server = server
        self.health_port = port

    def start(self) -> None:
        config = self.config
        self._hardware.warm_up()
        self.write_stalls.start()
        _prepare_socket_path(config.socket_path)
        if config.health is not None:
            # First, so that liveness answers while the other listeners come up.
            self._start_probe_listener(config.health)
        unix_server = self._server(())
        # The socket is created with the umask in force: make it 0600 from birth.
        old_umask = os.umask(0o177)
        try:
            unix_server.add_insecure_port(f"unix:{config.socket_path}")
            unix_server.start()
        finally:
            os.umask(old_umask)
        os.chmod(config.socket_path, 0o600)
        self._servers.append(unix_server)
        if config.listen is not None:
            interceptors = (TokenAuthInterceptor(config.token),) if config.token else ()
            tcp_server = self._server(interceptors)
            target = config.listen.grpc_target
            try:
                if config.tls is not None:
                    credentials = grpc.ssl_server_credentials(
                        [(config.tls.key.read_bytes(), config.tls.cert.read_bytes())]
                    )
                    port = tcp_server.add_secure_port(target, credentials)
                else:
                    port = tcp_server.add_insecure_port(target)
            except RuntimeError as exc:
                self._abort_start()
                raise ConfigError(f"cannot listen on {target}: {exc} (is the port in use?)") from None
            if port == 0:
                self._abort_start()
                raise ConfigError(f"cannot listen on {target}: the address is in use or not available")
            tcp_server.start()
            self.tcp_port = port
            self._servers.append(tcp_server)
        if config.http is not None:
            self.http = self._start_http(config.http)
        self._set_ready(health_pb2.HealthCheckResponse.SERVING)
        if config.watch is not None:
            # The watcher hot-swaps through this daemon's own socket, as any client would.
            self.watcher = start_watcher(
                config.watch,
                home=config.home,
                reloader=DaemonReloader(Address(unix_path=config.socket_path), token=config.token),
                in_daemon=True,
            )
        where = [f"unix:{config.socket_path}"]
        if config.listen is not None:
            scheme = "tls" if config.tls else "plain"
            auth = "token" if config.token else "no token"
            where.append(f"{config.listen.host}:{self.tcp_port} ({scheme}, {auth})")
        if self.http is not None:
            where.append(f"HTTP {self.http.url}")
        if config.health is not None:
            where.append(f"health {config.health.host}:{self.health_port}")
        _log.info(
            "ingot daemon listening on %s",
            ", ".join(where),
            extra={
                "fields": {
                    "pid": os.getpid(),
                    "max_loaded": config.max_loaded,
                    "max_queue": config.max_queue,
                    "parallel": config.parallel,
                    "interactive_slots": config.interactive_slots,
                    "keep_alive": str(config.keep_alive),
                }
            },
        )

    def _start_http(self, address: Address) -> HttpServer:
        # Imported here: FastAPI and uvicorn cost a daemon that serves gRPC only nothing.
        from ingot.daemon.http import HttpConfigError, start_http_server

        assert address.host is not None and address.port is not None
        services = self.http_services()
        try:
            return start_http_server(
                services, host=address.host, port=address.port, tls=self.config.tls, token=self.config.token,
                limits=self.config.limits,
            )
        except HttpConfigError as exc:
            self._abort_start()
            raise ConfigError(str(exc)) from None

    def http_services(self) -> HttpServices:
        """What an HTTP front door over this daemon runs on: its catalog, scheduler, metrics and home."""
        from ingot.daemon.http import HttpServices

        return HttpServices(
            self.catalog,
            self.scheduler,
            self.config.default_registry,
            monitoring=self.monitoring,
            home=self.config.home,
            read_only=self.catalog.store.read_only,
            template_budget=self.config.template_budget,
        )

    def _abort_start(self) -> None:
        self.write_stalls.stop()
        for server in self._servers:
            server.stop(None)
        if self._probe_server is not None:
            self._probe_server.stop(None)
        self._remove_socket()
        self.scheduler.close()

    def _remove_socket(self) -> None:
        try:
            os.unlink(self.config.socket_path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                _log.warning("could not remove %s: %s", self.config.socket_path, exc)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the daemon has shut down; True once it has."""
        return self._stopped.wait(timeout)

    def shutdown(self, *, grace_seconds: float | None = None) -> None:
        """Stop gracefully (see the module docstring); safe to call more than once."""
        with self._shutdown_lock:
            if self._shutting_down:
                return
            self._shutting_down = True
        grace = self.config.grace_seconds if grace_seconds is None else grace_seconds
        _log.info("shutting down: %.1f s for requests in flight", grace)
        if self.watcher is not None:
            self.watcher.stop()
        self._health.enter_graceful_shutdown()
        self._set_ready(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.http is not None:
            self.http.stop_jobs()  # first: a batch job must not see the refusals below as failures
        self.scheduler.begin_shutdown()
        if self.http is not None:
            self.http.request_stop(grace)
        # New RPCs are refused from here; the servers' own deadline comes after
        # ours so cancelled streams can still send their final chunk.
        stopped = [server.stop(grace + 5.0) for server in self._servers]
        if not self.scheduler.drain(grace):
            cancelled = self.scheduler.cancel_all()
            _log.info("cancelled %d requests still running after the grace period", cancelled)
            self.scheduler.drain(5.0)
        for event in stopped:
            event.wait()
        if self.http is not None and not self.http.join(grace + 5.0):
            _log.warning("the HTTP listener did not stop within the grace period")
        self.write_stalls.stop()
        self.scheduler.close()
        self._remove_socket()
        if self._probe_server is not None:
            self._probe_server.stop(None)  # last: liveness holds until nothing is left to drain
        _log.info("ingot daemon stopped")
        self._stopped.set()

    def force(self) -> None:
        """Cancel everything in flight now (a second signal during shutdown)."""
        self.scheduler.cancel_all()


def serve(config: ServeConfig) -> int:
    """Run a daemon in this (main) thread until SIGTERM/SIGINT; returns the exit status.

    A second signal during shutdown skips the rest of the grace period.
    """
    daemon = Daemon(config)
    with SignalWaiter(on_repeat=daemon.force) as signals:
        daemon.start()
        _log.info("received %s", signals.wait().name)
        shutdown = threading.Thread(target=daemon.shutdown, name="ingot-shutdown")
        shutdown.start()
        # join() with a timeout returns to the interpreter, which runs a second signal's handler.
        while shutdown.is_alive():
            shutdown.join(timeout=0.5)
    return 0
