"""The one place where errors become gRPC status codes.

| error                                                    | status              |
|----------------------------------------------------------|---------------------|
| model not in the local store, registry has no such model | NOT_FOUND           |
| model not loaded (Unload)                                | NOT_FOUND           |
| bad reference, option, keep_alive, format, Modelfile     | INVALID_ARGUMENT    |
| prompt longer than the context window                    | INVALID_ARGUMENT    |
| per-model queue full                                     | RESOURCE_EXHAUSTED  |
| a model's template went over its render budget           | RESOURCE_EXHAUSTED (reason template_budget) |
| runner died or failed a reply, shutting down, store busy | UNAVAILABLE         |
| does not fit in memory, model file unusable              | FAILED_PRECONDITION |
| request deadline passed while waiting                    | DEADLINE_EXCEEDED   |
| client cancelled                                         | CANCELLED           |
| blob corrupt or missing in the store                     | DATA_LOSS           |
| registry refused the credentials                         | PERMISSION_DENIED   |
| anything else (a bug)                                    | INTERNAL            |

Servicer methods are wrapped with `unary_errors` / `stream_errors`, which
abort the RPC with `status_for(exc)`; nothing else calls `context.abort`.
Where one code covers causes a client must tell apart (a full queue is worth
retrying, a runaway template is not), the status carries a reason in the
trailing metadata key `ingot-error-reason`; the HTTP API maps by it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from ingot.daemon.engine.errors import (
    ContextOverflowError,
    InvalidRequestError,
    LoadError,
    QueueFullError,
    RunnerDiedError,
)
from ingot.daemon.errors import (
    GenerationFailedError,
    InsufficientMemoryError,
    InvalidOptionError,
    ModelLoadFailedError,
    ModelNotLoadedError,
    PromptTooLongError,
    RequestCancelledError,
    ShuttingDownError,
    TemplateBudgetExceededError,
)
from ingot.daemon.keepalive import KeepAliveError
from ingot.daemon.planner import PlanError
from ingot.modelfile.errors import ModelfileError, ParameterError
from ingot.modelfile.template import InputError, TemplateBudgetError
from ingot.registry.errors import (
    BlobModifiedError,
    BlobNotFoundError,
    DigestMismatchError,
    LockTimeoutError,
    ModelNotFoundError,
    PackageError,
    ReferenceError,
    StoreError,
)
from ingot.registry.gguf_info import GGUFError
from ingot.registry.oci.errors import (
    CredentialsError,
    RegistryAuthError,
    RegistryConnectionError,
    RegistryError,
    RegistryNotFoundError,
)

__all__ = ["REASON_KEY", "TEMPLATE_BUDGET", "RpcStatus", "status_for", "stream_errors", "unary_errors"]

REASON_KEY = "ingot-error-reason"
"""Trailing metadata key naming why a status was given, where the code alone is ambiguous."""

TEMPLATE_BUDGET = "template_budget"
"""The reason of a RESOURCE_EXHAUSTED caused by a template over its render budget (HTTP 400, not 429)."""

_log = logging.getLogger("ingot.daemon")

_PULL_HINT = "pull it with 'ingot pull {name}' or build it with 'ingot create {name} -f Modelfile'"


@dataclass(frozen=True)
class RpcStatus:
    code: grpc.StatusCode
    message: str
    reason: str | None = None  # sent as trailing metadata REASON_KEY


# Order matters: the first matching class wins, so subclasses come first.
_TABLE: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], grpc.StatusCode], ...] = (
    (RequestCancelledError, grpc.StatusCode.CANCELLED),
    ((ModelNotFoundError, ModelNotLoadedError, RegistryNotFoundError), grpc.StatusCode.NOT_FOUND),
    (
        (ReferenceError, InvalidOptionError, KeepAliveError, ParameterError, ModelfileError, InputError,
         InvalidRequestError, ContextOverflowError, PromptTooLongError, PackageError),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    (QueueFullError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (
        (RunnerDiedError, GenerationFailedError, ShuttingDownError, LockTimeoutError, RegistryConnectionError),
        grpc.StatusCode.UNAVAILABLE,
    ),
    (
        (InsufficientMemoryError, PlanError, ModelLoadFailedError, LoadError, GGUFError),
        grpc.StatusCode.FAILED_PRECONDITION,
    ),
    ((DigestMismatchError, BlobNotFoundError, BlobModifiedError), grpc.StatusCode.DATA_LOSS),
    ((RegistryAuthError, CredentialsError), grpc.StatusCode.PERMISSION_DENIED),
    ((RegistryError, StoreError), grpc.StatusCode.FAILED_PRECONDITION),
    (TimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
)


def _one_line(text: str) -> str:
    # Status messages travel in a header; keep them on one line but keep
    # multi-line Modelfile errors readable by joining with " | ".
    return " | ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def status_for(exc: BaseException) -> RpcStatus:
    """The status code and one-line message a client sees for `exc`."""
    if isinstance(exc, RequestCancelledError) and exc.deadline:
        return RpcStatus(grpc.StatusCode.DEADLINE_EXCEEDED, _one_line(str(exc)))
    if isinstance(exc, (TemplateBudgetExceededError, TemplateBudgetError)):
        return RpcStatus(grpc.StatusCode.RESOURCE_EXHAUSTED, _one_line(str(exc)), TEMPLATE_BUDGET)
    for classes, code in _TABLE:
        if isinstance(exc, classes):
            message = str(exc)
            if isinstance(exc, ModelNotFoundError) and not getattr(exc, "hint", None):
                name = getattr(exc, "reference", None) or "NAME"
                message = f"{message}; {_PULL_HINT.format(name=name)}"
            if isinstance(exc, RunnerDiedError):
                message = f"{message} (retry: the next request starts a fresh runner)"
            return RpcStatus(code, _one_line(message))
    _log.error("internal error", exc_info=exc)
    return RpcStatus(
        grpc.StatusCode.INTERNAL,
        _one_line(f"internal error ({type(exc).__name__}: {exc}); the daemon log has the details"),
    )


F = TypeVar("F", bound=Callable[..., Any])


def unary_errors(method: F) -> F:
    """Wrap a unary servicer method so any error aborts the RPC with its mapped status."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - every error must reach the client as a status
            _abort(context, status_for(exc))

    return wrapper  # type: ignore[return-value]


def _abort(context: grpc.ServicerContext, status: RpcStatus) -> None:
    if status.reason is not None:
        context.set_trailing_metadata(((REASON_KEY, status.reason),))
    context.abort(status.code, status.message)


def stream_errors(method: F) -> F:
    """Like `unary_errors` for server-streaming methods (generators)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, request, context)
        except Exception as exc:  # noqa: BLE001
            _abort(context, status_for(exc))

    return wrapper  # type: ignore[return-value]
