"""The `ingot.v1.Runtime` service: Load, Unload, ListRunning, Version."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import grpc

from ingot.daemon.calls import CallWatch
from ingot.daemon.catalog import Catalog
from ingot.daemon.convert import running_to_proto
from ingot.daemon.errors import InvalidOptionError
from ingot.daemon.keepalive import parse_keep_alive
from ingot.daemon.lifecycle import RunningSnapshot
from ingot.daemon.monitoring.names import short_name
from ingot.daemon.monitoring.rates import TokenRates
from ingot.daemon.options import options_from_proto, resolve_options
from ingot.daemon.requestlog import RequestRecord, logged
from ingot.daemon.scheduler import Scheduler
from ingot.daemon.status import unary_errors
from ingot.daemon.watch.status import read_status
from ingot.daemon.watch.status_proto import watch_status_to_proto
from ingot.proto.ingot.v1 import runtime_pb2, runtime_pb2_grpc
from ingot.registry.home import IngotHome
from ingot.registry.reference import Reference

__all__ = ["RuntimeServicer", "package_version"]


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


class RuntimeServicer(runtime_pb2_grpc.RuntimeServicer):
    def __init__(
        self,
        *,
        catalog: Catalog,
        scheduler: Scheduler,
        home: IngotHome | None = None,
        rates: TokenRates | None = None,
    ) -> None:
        self._catalog = catalog
        self._scheduler = scheduler
        self._home = home
        self._rates = rates

    def _running(self, snapshot: RunningSnapshot) -> runtime_pb2.RunningModel:
        rate = self._rates.per_second(short_name(snapshot.name)) if self._rates is not None else 0.0
        return running_to_proto(snapshot, tokens_per_second=rate)

    @unary_errors
    def Load(self, request: runtime_pb2.LoadRequest, context: grpc.ServicerContext) -> runtime_pb2.LoadResponse:
        with logged(RequestRecord("Load", model=request.model, peer=context.peer())) as record:
            if not request.model.strip():
                raise InvalidOptionError("model", "no model named", hint="e.g. 'llama3'")
            package = self._catalog.package(request.model)
            record.model = package.reference.short
            resolved = resolve_options(package.modelfile.parameters, options_from_proto(request.options))
            keep_alive = parse_keep_alive(request.keep_alive) if request.HasField("keep_alive") else None
            spec = self._catalog.spec(package, resolved.load)
            watch = CallWatch(context, wake=self._scheduler.wake)
            with self._scheduler.acquire(spec, keep_alive=keep_alive, is_cancelled=watch.cancelled) as lease:
                record.queue_ns, record.load_ns = lease.queue_ns, lease.load_ns
            for snapshot in self._scheduler.running():
                if snapshot.name == spec.name:
                    return runtime_pb2.LoadResponse(model=self._running(snapshot))
            # keep_alive 0 and already gone again: report what was loaded.
            return runtime_pb2.LoadResponse(model=runtime_pb2.RunningModel(name=spec.name, digest=spec.digest))

    @unary_errors
    def Unload(self, request: runtime_pb2.UnloadRequest, context: grpc.ServicerContext) -> runtime_pb2.UnloadResponse:
        with logged(RequestRecord("Unload", model=request.model, peer=context.peer())):
            if not request.model.strip():
                raise InvalidOptionError("model", "no model named", hint="'ingot ps' lists the loaded models")
            self._scheduler.unload(Reference.parse(request.model.strip()).without_digest().tagged)
            return runtime_pb2.UnloadResponse()

    @unary_errors
    def ListRunning(
        self, request: runtime_pb2.ListRunningRequest, context: grpc.ServicerContext
    ) -> runtime_pb2.ListRunningResponse:
        return runtime_pb2.ListRunningResponse(models=[self._running(s) for s in self._scheduler.running()])

    @unary_errors
    def Version(self, request: runtime_pb2.VersionRequest, context: grpc.ServicerContext) -> runtime_pb2.VersionResponse:
        return runtime_pb2.VersionResponse(
            version=package_version("ingot"), engine_version=package_version("llama-cpp-python")
        )

    @unary_errors
    def WatchStatus(
        self, request: runtime_pb2.WatchStatusRequest, context: grpc.ServicerContext
    ) -> runtime_pb2.WatchStatusResponse:
        if self._home is None:
            return runtime_pb2.WatchStatusResponse()
        root = None
        if request.root:
            root = Path(request.root)
            if not root.is_absolute():
                raise InvalidOptionError("root", f"{request.root!r} is not an absolute path", hint="e.g. /srv/models")
        # State files, not the in-daemon watcher object: standalone watchers of this home count too.
        return watch_status_to_proto(read_status(self._home, root))
