"""The `ingot.v1.Models` service: the local store (List, Show, Copy, Delete), Create, Pull, Push.

Create, Pull and Push stream `Progress` messages while the registry code runs
in a worker thread; the last message has status "success". Create and Pull
also stream "warning: ..." statuses: Modelfile warnings, and a template that
fails its trial render (`ingot.registry.template_check`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from ingot.daemon.catalog import Catalog
from ingot.daemon.convert import model_details, parse_tagged_at, progress_to_proto, timestamp
from ingot.daemon.errors import InvalidOptionError, ModelNotLoadedError
from ingot.daemon.options import options_to_proto
from ingot.daemon.requestlog import RequestRecord, logged
from ingot.daemon.scheduler import Scheduler
from ingot.daemon.status import stream_errors, unary_errors
from ingot.modelfile import format_modelfile, parse
from ingot.modelfile.template import DEFAULT_BUDGET, RenderBudget
from ingot.proto.ingot.v1 import common_pb2, models_pb2, models_pb2_grpc
from ingot.registry.digest import Progress, ProgressCallback
from ingot.registry.errors import ModelNotFoundError
from ingot.registry.oci import ClientOptions, pull, push
from ingot.registry.package import build_package, load_package
from ingot.registry.reference import Reference
from ingot.registry.template_check import template_warnings

__all__ = ["ModelsServicer"]

SUCCESS = "success"


@dataclass(frozen=True)
class _Finished:
    status: str


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def run_with_progress(work: Callable[[ProgressCallback], str]) -> Iterator[common_pb2.Progress]:
    """Run `work(progress)` in a thread and stream its progress; the last message is `work`'s status.

    A client that goes away stops the stream, not the work: a half-written
    pull or build resumes or is collected later, never left half-tagged.
    """
    events: queue.SimpleQueue[Progress | _Finished | _Failed] = queue.SimpleQueue()

    def run() -> None:
        try:
            events.put(_Finished(work(events.put)))
        except BaseException as exc:  # noqa: BLE001 - handed to the RPC thread to map
            events.put(_Failed(exc))

    threading.Thread(target=run, name="ingot-transfer", daemon=True).start()
    while True:
        event = events.get()
        if isinstance(event, Progress):
            yield progress_to_proto(event)
        elif isinstance(event, _Finished):
            yield common_pb2.Progress(status=event.status)
            return
        else:
            raise event.error


def _required(value: str, field: str, example: str) -> str:
    if not value.strip():
        raise InvalidOptionError(field, "is empty", hint=f"for example {example!r}")
    return value.strip()


class ModelsServicer(models_pb2_grpc.ModelsServicer):
    def __init__(
        self,
        *,
        catalog: Catalog,
        scheduler: Scheduler,
        default_registry: str | None,
        template_budget: RenderBudget = DEFAULT_BUDGET,
    ) -> None:
        self._catalog = catalog
        self._store = catalog.store
        self._scheduler = scheduler
        self._default_registry = default_registry
        self._template_budget = template_budget

    def _remote(self, name: str) -> Reference:
        return Reference.parse(_required(name, "model", "registry.example.com/team/llama:1")).for_remote(
            self._default_registry
        )

    @stream_errors
    def Create(self, request: models_pb2.CreateRequest, context: grpc.ServicerContext) -> Iterator[common_pb2.Progress]:
        with logged(RequestRecord("Create", model=request.model, peer=context.peer())):
            ref = Reference.parse(_required(request.model, "model", "mymodel:1"))
            filename = request.path or "<request>"
            modelfile = parse(request.modelfile, filename=filename)
            folder = Path(request.path).expanduser().absolute().parent if request.path else Path.cwd()
            for warning in modelfile.warnings:
                yield common_pb2.Progress(status=f"warning: {warning}")

            def build(progress: ProgressCallback) -> str:
                build_package(
                    self._store, modelfile, folder, ref=ref, quantize=request.quantize or None, progress=progress
                )
                for warning in template_warnings(load_package(self._store, ref), budget=self._template_budget):
                    progress(Progress(f"warning: {warning}", None, 0, 0))
                return SUCCESS

            yield from run_with_progress(build)

    @stream_errors
    def Pull(self, request: models_pb2.PullRequest, context: grpc.ServicerContext) -> Iterator[common_pb2.Progress]:
        with logged(RequestRecord("Pull", model=request.model, peer=context.peer())):
            ref = self._remote(request.model)
            options = ClientOptions(insecure=request.insecure)

            def transfer(progress: ProgressCallback) -> str:
                result = pull(self._store, ref, options=options, progress=progress,
                              template_budget=self._template_budget)
                for note in result.notes:
                    progress(Progress(f"warning: {note}", None, 0, 0))
                return SUCCESS

            yield from run_with_progress(transfer)

    @stream_errors
    def Push(self, request: models_pb2.PushRequest, context: grpc.ServicerContext) -> Iterator[common_pb2.Progress]:
        with logged(RequestRecord("Push", model=request.model, peer=context.peer())):
            source = Reference.parse(_required(request.model, "model", "registry.example.com/team/llama:1"))
            options = ClientOptions(insecure=request.insecure)

            def transfer(progress: ProgressCallback) -> str:
                push(self._store, source, destination=source.for_remote(self._default_registry), options=options,
                     progress=progress)
                return SUCCESS

            yield from run_with_progress(transfer)

    @unary_errors
    def List(self, request: models_pb2.ListRequest, context: grpc.ServicerContext) -> models_pb2.ListResponse:
        response = models_pb2.ListResponse()
        for entry in self._store.list_tags():
            try:
                package = load_package(self._store, entry.reference)
            except Exception:  # noqa: BLE001 - a broken package is still listed, without details
                summary = models_pb2.ModelSummary(
                    name=entry.reference.short, digest=entry.descriptor.digest, size=entry.descriptor.size
                )
            else:
                summary = models_pb2.ModelSummary(
                    name=entry.reference.short,
                    digest=package.digest,
                    size=package.size,
                    details=model_details(package),
                )
            tagged = parse_tagged_at(entry.tagged_at)
            if tagged is not None:
                summary.modified_at.CopyFrom(timestamp(tagged))
            response.models.append(summary)
        for package in self._catalog.mounted.values():
            response.models.append(
                models_pb2.ModelSummary(
                    name=package.reference.without_digest().short,
                    digest=package.digest,
                    size=package.size,
                    details=model_details(package),
                )
            )
        return response

    @unary_errors
    def Show(self, request: models_pb2.ShowRequest, context: grpc.ServicerContext) -> models_pb2.ShowResponse:
        with logged(RequestRecord("Show", model=request.model, peer=context.peer())):
            return self._show(request)

    def _show(self, request: models_pb2.ShowRequest) -> models_pb2.ShowResponse:
        package = self._catalog.package(_required(request.model, "model", "llama3"))
        info = self._catalog.info(package)
        modelfile = package.modelfile
        return models_pb2.ShowResponse(
            name=package.reference.short,
            digest=package.digest,
            modelfile=format_modelfile(modelfile),
            parameters=options_to_proto(modelfile.parameters),
            template=modelfile.template or (info.chat_template or ""),
            system=modelfile.system or "",
            license=list(package.licenses),
            messages=[common_pb2.ChatMessage(role=m.role, content=m.content) for m in modelfile.messages],
            details=model_details(package, context_length=info.context_length),
            size=package.size,
        )

    @unary_errors
    def Copy(self, request: models_pb2.CopyRequest, context: grpc.ServicerContext) -> models_pb2.CopyResponse:
        with logged(RequestRecord("Copy", model=request.source, peer=context.peer())):
            return self._copy(request)

    def _copy(self, request: models_pb2.CopyRequest) -> models_pb2.CopyResponse:
        source = Reference.parse(_required(request.source, "source", "llama3"))
        destination = Reference.parse(_required(request.destination, "destination", "llama3-backup"))
        descriptor = self._store.resolve(source)
        if descriptor is None:
            raise ModelNotFoundError(f"model '{source.short}' not found", hint="'ingot list' shows the local models")
        self._store.tag(destination, descriptor)
        return models_pb2.CopyResponse()

    @unary_errors
    def Delete(self, request: models_pb2.DeleteRequest, context: grpc.ServicerContext) -> models_pb2.DeleteResponse:
        with logged(RequestRecord("Delete", model=request.model, peer=context.peer())):
            return self._delete(request)

    def _delete(self, request: models_pb2.DeleteRequest) -> models_pb2.DeleteResponse:
        ref = Reference.parse(_required(request.model, "model", "llama3"))
        if self._store.untag(ref) is None:
            raise ModelNotFoundError(f"model '{ref.short}' not found", hint="'ingot list' shows the local models")
        try:
            self._scheduler.unload(ref.without_digest().tagged)
        except ModelNotLoadedError:
            pass
        # Blobs no other tag uses go now; a busy store (a pull in progress) keeps them for the next gc.
        self._store.gc(wait=False)
        return models_pb2.DeleteResponse()
