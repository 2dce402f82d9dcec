"""Calling the daemon's servicers in-process: one code path for gRPC and HTTP.

The gRPC servicers (`ingot.daemon.servicers`) are the daemon's service layer:
they resolve the model, merge options, take the scheduler's lease, render the
prompt, stream from the runner, log one line per request and map every error
to a status code. The HTTP front door calls the very same methods, in a worker
thread, with `InProcessContext` standing in for `grpc.ServicerContext`:

* the client going away ends the context, which runs the callbacks the
  servicer registered (`CallWatch`), so the runner stops and the slot frees
  exactly as when a gRPC client cancels;
* `context.abort(code, message)` -- the servicers' only way of failing --
  raises `CallAborted`, which `ingot.daemon.http.errors` turns into an HTTP status.

`ServicerCall` hands the messages to the event loop and keeps reading them
after the client has gone, so the servicer always finishes its request (and
counts it in the metrics, cancelled ones too). The worker wakes the event loop
only when it may be waiting: messages that arrive while it is busy join those
already there, and `ready()` takes them all at once (a stream then writes them
in one piece).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

import grpc
from starlette.requests import Request

__all__ = ["CallAborted", "ClientGone", "InProcessContext", "ServicerCall", "unless_disconnected"]

_log = logging.getLogger("ingot.daemon.http")

T = TypeVar("T")
Message = TypeVar("Message")


class CallAborted(Exception):
    """A servicer ended the call with a status (what a gRPC client would see as an RpcError).

    `trailing` is the trailing metadata the servicer set (e.g. ``ingot-error-reason``).
    """

    def __init__(self, code: grpc.StatusCode, message: str, trailing: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.trailing = trailing


class ClientGone(Exception):
    """The HTTP client disconnected before the reply was ready."""


class InProcessContext:
    """The parts of `grpc.ServicerContext` the servicers use, for a call made from HTTP."""

    def __init__(self, peer: str) -> None:
        self._peer = peer
        self._lock = threading.Lock()
        self._active = True
        self._callbacks: list[Callable[[], None]] = []
        self._trailing: tuple[tuple[str, str], ...] = ()

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Run `callback` when the call ends; False (and never run) when it already has, as in gRPC."""
        with self._lock:
            if not self._active:
                return False
            self._callbacks.append(callback)
            return True

    def is_active(self) -> bool:
        with self._lock:
            return self._active

    def time_remaining(self) -> float | None:
        return None  # HTTP requests carry no deadline

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._trailing = tuple(metadata)

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise CallAborted(code, details, self._trailing)

    def end(self) -> None:
        """The call is over (finished, or its client left): run the callbacks once."""
        with self._lock:
            if not self._active:
                return
            self._active = False
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - one failing callback must not keep the others from running
                _log.exception("a call-end callback failed")


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class _End:
    pass


_END = _End()


class ServicerCall(Generic[Message]):
    """One servicer method running in its own thread; await `next()` for its messages.

    Unary methods deliver one message, streaming ones many. `cancel()` (the
    client left) ends the context; the servicer then winds down on its own
    and the thread exits. Create it inside the event loop that consumes it.
    """

    def __init__(
        self,
        method: Callable[[Any, InProcessContext], Any],
        request: Any,
        *,
        peer: str,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: deque[Any] = deque()  # messages, then _END or _Failed
        self._items_lock = threading.Lock()
        self._wake_sent = False  # a wake-up is on its way to the loop, or the loop is not waiting
        self._arrived = asyncio.Event()
        self._method = method
        self._request = request
        self.context = InProcessContext(peer)
        self._finished = False
        # One thread per call, as the gRPC server runs one per RPC: a call
        # spends most of its life blocked on the scheduler or the runner.
        self._thread = threading.Thread(target=self._work, name="ingot-http-call", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            result = self._method(self._request, self.context)
            items: Iterator[Any] = result if isinstance(result, Iterator) else iter((result,))
            for item in items:
                self._deliver(item)
                if not self.context.is_active() and isinstance(items, Generator) and getattr(item, "done", True):
                    # The client left and the servicer sent its last message (a generation's final chunk,
                    # which the metrics count): stop it there, as gRPC does with a cancelled stream, so its
                    # request log line says outcome=cancelled rather than ok.
                    items.close()
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop, which raises it
            self._deliver(_Failed(exc))
        else:
            self._deliver(_END)
        finally:
            self.context.end()

    def _deliver(self, item: Any) -> None:
        with self._items_lock:
            self._items.append(item)
            if self._wake_sent:
                return
            self._wake_sent = True
        # RuntimeError: the event loop is closed -- the server stopped and nobody is listening.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._arrived.set)

    async def _take(self) -> Any:
        while True:
            with self._items_lock:
                if self._items:
                    return self._items.popleft()
                self._wake_sent = False
                self._arrived.clear()
            await self._arrived.wait()

    def ready(self) -> list[Message]:
        """The messages already here, without waiting; the end or a failure stays for `next()`."""
        messages: list[Message] = []
        with self._items_lock:
            while self._items and not isinstance(self._items[0], (_End, _Failed)):
                messages.append(self._items.popleft())
        return messages

    async def next(self) -> Message | None:
        """The next message; None after the last one, CallAborted when the servicer failed."""
        if self._finished:
            return None
        item = await self._take()
        if item is _END:
            self._finished = True
            return None
        if isinstance(item, _Failed):
            self._finished = True
            raise item.error
        return item  # type: ignore[no-any-return]

    async def all(self) -> list[Message]:
        items: list[Message] = []
        while (item := await self.next()) is not None:
            items.append(item)
        return items

    def cancel(self) -> None:
        """Stop the work (a no-op once it has finished)."""
        self.context.end()


async def _disconnect(request: Request) -> None:
    # The body has been read by the time a handler runs; what `receive` still
    # delivers is the disconnect.
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, unless the client disconnects first (then ClientGone, and `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    raise ClientGone()
