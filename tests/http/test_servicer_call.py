"""`ServicerCall`: messages from a servicer's thread to the event loop, several at once when the loop is behind."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import grpc
import pytest

from ingot.daemon.http.calls import CallAborted, InProcessContext, ServicerCall


def test_messages_that_wait_are_taken_together_and_the_end_stays_for_next() -> None:
    produced = threading.Event()

    def method(request: int, context: InProcessContext) -> Iterator[int]:
        yield from range(request)
        produced.set()

    async def main() -> tuple[int | None, list[int], int | None]:
        call: ServicerCall[int] = ServicerCall(method, 5, peer="test")
        first = await call.next()
        # The generator sets `produced` after its last message was delivered.
        await asyncio.get_running_loop().run_in_executor(None, produced.wait, 10)
        return first, call.ready(), await call.next()

    first, waiting, end = asyncio.run(main())
    assert (first, waiting, end) == (0, [1, 2, 3, 4], None)


def test_a_failure_after_messages_comes_after_them() -> None:
    def method(request: int, context: InProcessContext) -> Iterator[int]:
        yield 1
        yield 2
        context.abort(grpc.StatusCode.INTERNAL, "broke")

    async def main() -> list[object]:
        call: ServicerCall[int] = ServicerCall(method, 0, peer="test")
        seen: list[object] = [await call.next()]
        while True:
            try:
                message = await call.next()
            except CallAborted as exc:
                seen.append(exc.message)
                return seen
            seen += [message, *call.ready()]

    assert asyncio.run(main()) == [1, 2, "broke"]


def test_a_waiting_next_wakes_for_a_message_that_comes_later() -> None:
    release = threading.Event()

    def method(request: int, context: InProcessContext) -> Iterator[str]:
        release.wait(10)
        yield "late"

    async def main() -> tuple[str | None, str | None]:
        call: ServicerCall[str] = ServicerCall(method, 0, peer="test")
        waiter = asyncio.ensure_future(call.next())
        await asyncio.sleep(0)  # the waiter runs up to its wait
        assert not waiter.done()
        release.set()
        return await asyncio.wait_for(waiter, 10), await asyncio.wait_for(call.next(), 10)

    assert asyncio.run(main()) == ("late", None)


@pytest.mark.parametrize("count", [1, 200])
def test_every_message_arrives_in_order(count: int) -> None:
    def method(request: int, context: InProcessContext) -> Iterator[int]:
        yield from range(request)

    async def main() -> list[int]:
        call: ServicerCall[int] = ServicerCall(method, count, peer="test")
        out: list[int] = []
        while (message := await call.next()) is not None:
            out += [message, *call.ready()]
        return out

    assert asyncio.run(main()) == list(range(count))
