"""`FolderStatus` (what `ingot watch --status` reads) as the ingot.v1 `WatchStatusResponse`."""

from __future__ import annotations

from ingot.proto.ingot.v1 import runtime_pb2

from .errors import Problem
from .state import ModelRecord
from .status import FolderStatus

__all__ = ["watch_status_to_proto"]


def _problem(problem: Problem) -> runtime_pb2.WatchProblem:
    return runtime_pb2.WatchProblem(
        kind=str(problem.kind), message=problem.message, hint=problem.hint or "", file=problem.file or "",
        line=problem.line or 0, column=problem.column or 0,
    )


def _model(record: ModelRecord) -> runtime_pb2.WatchedModel:
    return runtime_pb2.WatchedModel(
        key=record.key,
        source=record.source,
        references=list(record.references),
        digest=record.digest or "",
        built_at=record.built_at or "",
        last_build_result=record.build.result if record.build else "",
        pushes=[
            runtime_pb2.WatchPush(
                target=push.target, result=push.result, digest=push.digest or "", pushed_at=push.pushed_at or "",
                attempts=push.attempts,
            )
            for _, push in sorted(record.pushes.items())
        ],
        reload_result=record.reload.result if record.reload else "",
        problems=[_problem(p) for p in record.problems],
    )


def watch_status_to_proto(folders: list[FolderStatus]) -> runtime_pb2.WatchStatusResponse:
    reply = runtime_pb2.WatchStatusResponse()
    for folder in folders:
        state, watcher = folder.state, folder.state.watcher
        reply.folders.append(
            runtime_pb2.WatchedFolder(
                root=state.root,
                running=folder.running,
                in_daemon=bool(watcher and watcher.in_daemon),
                pid=watcher.pid if watcher else 0,
                updated_at=watcher.updated_at if watcher else "",
                models=[_model(record) for _, record in sorted(state.models.items())],
                orphans=[
                    runtime_pb2.WatchOrphan(
                        reference=o.reference, digest=o.digest or "", source=o.source, since=o.since
                    )
                    for _, o in sorted(state.orphans.items())
                ],
                state_file=str(folder.state_path),
            )
        )
    return reply
