"""`RequestStream`: what `generate()` returns, for the in-process engine and the runner client alike.

A producer (the engine thread, or the client's socket reader) pushes chunks or
one exception; the consumer iterates. Iteration ends after the chunk with
done=True, or raises the pushed exception (RunnerDiedError when a runner
died). Many streams live side by side; each is consumed by one caller.

A consumer that forwards chunks one message each (the daemon's servicers)
iterates `joined()`: when it fell behind, the text of every chunk already
waiting comes as one chunk, so a slow client costs one message per wake-up,
not one per token.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType

from .types import Chunk

__all__ = ["RequestStream"]


class RequestStream(Iterator[Chunk]):
    """An iterable of `Chunk`s; the last one has done=True, a done_reason and metrics."""

    def __init__(self, cancel: Callable[[], None]) -> None:
        self._queue: queue.SimpleQueue[Chunk | BaseException] = queue.SimpleQueue()
        self._cancel = cancel
        self._cancel_once = threading.Lock()
        self._cancelled = False
        self._finished = False
        self._held: Chunk | BaseException | None = None  # taken from the queue by joined(), not yet returned

    # -- producer side ------------------------------------------------------------------------

    def push(self, item: Chunk | BaseException) -> None:
        """Deliver a chunk, or an exception that ends the stream (called by the producer only)."""
        self._queue.put(item)

    # -- consumer side ------------------------------------------------------------------------

    def __iter__(self) -> RequestStream:
        return self

    def __next__(self) -> Chunk:
        return self.get()

    def get(self, timeout: float | None = None) -> Chunk:
        """The next chunk, waiting at most `timeout` seconds (queue.Empty when none came).

        StopIteration once the stream has finished.
        """
        if self._finished:
            raise StopIteration
        item = self._held
        if item is None:
            item = self._queue.get(timeout=timeout)
        else:
            self._held = None
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        if item.done:
            self._finished = True
        return item

    def joined(self) -> Iterator[Chunk]:
        """The chunks, with the texts of those already queued behind one joined into it.

        A final chunk (or an exception) is never merged into: it comes on its own, as from
        iteration, so its done_reason, metrics and error keep their meaning.
        """
        while not self._finished:
            chunk = self.get()
            if chunk.done:
                yield chunk
                return
            texts = [chunk.text]
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, BaseException) or item.done:
                    self._held = item
                    break
                texts.append(item.text)
            yield chunk if len(texts) == 1 else Chunk(text="".join(texts))

    @property
    def finished(self) -> bool:
        """True once the final chunk (or an error) has been consumed."""
        return self._finished

    def cancel(self) -> None:
        """Ask the engine to stop this request; the stream still ends with a done chunk (reason cancelled)."""
        with self._cancel_once:
            if self._cancelled or self._finished:
                return
            self._cancelled = True
        self._cancel()

    def __enter__(self) -> RequestStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Leaving the block early (break, exception) must not leave a slot generating.
        if not self._finished:
            self.cancel()
