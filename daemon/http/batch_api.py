"""The OpenAI Batch API on the HTTP front door: /v1/files and /v1/batches.

Upload a JSONL of requests (`POST /v1/files`, purpose `batch`), start a job
over it (`POST /v1/batches`), poll it (`GET /v1/batches/{id}`), cancel it,
and download its results (`GET /v1/files/{id}/content`). The jobs run inside
the daemon at batch priority and survive a daemon restart
(`ingot.daemon.batch.jobs`). Routes exist when the daemon has a home
(`HttpServices.home`).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ingot.daemon.batch.jobs import BatchJobs, JobNotFoundError

from .errors import HttpError
from .openai_schema import OpenAIErrorBody

__all__ = ["batch_router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OpenAIErrorBody, "description": "A bad field (`param` names it)."},
    401: {"model": OpenAIErrorBody, "description": "A token is configured and the request did not carry it."},
    404: {"model": OpenAIErrorBody, "description": "No such file or batch."},
}


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str = "processed"


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="allow")

    input_file_id: str
    endpoint: str = Field(description="/v1/chat/completions, /v1/completions or /v1/embeddings")
    completion_window: str = Field(default="24h", description="Only 24h; recorded, not enforced.")
    metadata: dict[str, str] | None = None


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchError(BaseModel):
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchError]


class Batch(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None
    input_file_id: str
    completion_window: str
    status: Literal["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
                    "cancelled"]
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: RequestCounts
    metadata: dict[str, str] | None


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Batch]
    first_id: str | None
    last_id: str | None
    has_more: bool = False


def _not_found(exc: JobNotFoundError) -> HttpError:
    return HttpError(404, str(exc), code="not_found")


def batch_router(jobs: BatchJobs) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["OpenAI Batch API"])

    @router.post("/files", response_model=FileObject, responses=_ERRORS, summary="Upload a batch input file")
    async def upload(file: UploadFile = File(...), purpose: str = Form(...)) -> Response:
        if purpose != "batch":
            raise HttpError(400, f"purpose must be 'batch' (input for /v1/batches), got {purpose!r}", param="purpose")
        data = await file.read()
        stored = jobs.files.create(file.filename or "input.jsonl", purpose, data)
        return JSONResponse(FileObject(**stored.info).model_dump(mode="json"))

    @router.get("/files", response_model=FileList, responses={401: _ERRORS[401]}, summary="List files")
    def list_files() -> Response:
        return JSONResponse(FileList(data=[FileObject(**f) for f in jobs.files.list()]).model_dump(mode="json"))

    @router.get("/files/{file_id}", response_model=FileObject, responses=_ERRORS, summary="Describe a file")
    def get_file(file_id: str) -> Response:
        try:
            return JSONResponse(FileObject(**jobs.files.get(file_id).info).model_dump(mode="json"))
        except JobNotFoundError as exc:
            raise _not_found(exc) from None

    @router.get(
        "/files/{file_id}/content",
        response_class=Response,
        responses={**_ERRORS, 200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}},
                                    "description": "The file's bytes (JSONL)."}},
        summary="A file's content",
    )
    def file_content(file_id: str) -> Response:
        try:
            stored = jobs.files.get(file_id)
        except JobNotFoundError as exc:
            raise _not_found(exc) from None
        return Response(stored.path.read_bytes(), media_type="application/octet-stream")

    @router.delete("/files/{file_id}", response_model=FileDeleted, responses=_ERRORS, summary="Delete a file")
    def delete_file(file_id: str) -> Response:
        try:
            jobs.files.delete(file_id)
        except JobNotFoundError as exc:
            raise _not_found(exc) from None
        return JSONResponse(FileDeleted(id=file_id, deleted=True).model_dump(mode="json"))

    @router.post("/batches", response_model=Batch, responses=_ERRORS, summary="Start a batch")
    def create_batch(body: BatchCreate) -> Response:
        try:
            job = jobs.create(input_file_id=body.input_file_id, endpoint=body.endpoint,
                              completion_window=body.completion_window, metadata=body.metadata)
        except JobNotFoundError as exc:
            raise HttpError(400, str(exc), param="input_file_id") from None
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        return JSONResponse(Batch(**job).model_dump(mode="json"))

    @router.get("/batches", response_model=BatchList, responses={401: _ERRORS[401]}, summary="List batches")
    def list_batches() -> Response:
        listed = [Batch(**job) for job in jobs.list()]
        reply = BatchList(data=listed, first_id=listed[0].id if listed else None,
                          last_id=listed[-1].id if listed else None)
        return JSONResponse(reply.model_dump(mode="json"))

    @router.get("/batches/{batch_id}", response_model=Batch, responses=_ERRORS, summary="Describe a batch")
    def get_batch(batch_id: str) -> Response:
        try:
            return JSONResponse(Batch(**jobs.get(batch_id)).model_dump(mode="json"))
        except JobNotFoundError as exc:
            raise _not_found(exc) from None

    @router.post("/batches/{batch_id}/cancel", response_model=Batch, responses=_ERRORS, summary="Cancel a batch")
    def cancel_batch(batch_id: str) -> Response:
        try:
            return JSONResponse(Batch(**jobs.cancel(batch_id)).model_dump(mode="json"))
        except JobNotFoundError as exc:
            raise _not_found(exc) from None

    return router
