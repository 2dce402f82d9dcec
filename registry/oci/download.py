"""Fetching one blob into the store: resumable, verified, in constant memory.

Bytes go straight into the store's `BlobWriter` (a partial file per digest
under that digest's lock), which hashes them as they arrive. A dropped
connection is retried with `Range: bytes=<offset>-`, so the transfer continues
where it stopped, in this run or, when every retry is spent, in the next one
(the partial file stays). A registry that ignores the Range and answers 200
makes the writer start over. The blob becomes visible in the store only after
`commit()` has checked its size and sha256; a mismatch deletes the partial
file and raises `DigestMismatchError`.

The size the manifest declares is checked against what the registry says it
serves (`Content-Length` of a 200, the total of a 206's `Content-Range` or of
a 416's `bytes */N`) before a byte is kept: a descriptor larger than its blob
fails at once with `ManifestRejectedError` instead of downloading, resuming
past the end, starting over and repeating. The retry budget is given back
only for bytes beyond the furthest point this pull has reached, so a loop of
restarts spends it like any other failure.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import requests

from ingot.registry.errors import DigestMismatchError
from ingot.registry.oci.auth import pull_scope
from ingot.registry.oci.client import RegistryClient
from ingot.registry.oci.errors import ManifestRejectedError, RegistryNotFoundError, RegistryProtocolError
from ingot.registry.oci.progress import DONE, DOWNLOADING, EXISTS, VERIFYING, BlobProgress, TransferProgress
from ingot.registry.oci.retry import Backoff, is_retryable_exception
from ingot.registry.store import BlobWriter, Descriptor, Store

__all__ = ["DownloadOutcome", "fetch_blob"]

_log = logging.getLogger(__name__)

_READ_BLOCK = 1 << 20
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE_RE = re.compile(r"bytes \*/(\d+)")


@dataclass(frozen=True)
class DownloadOutcome:
    """What happened to one blob. `bytes_resumed` were already in a partial file from an earlier run."""

    digest: str
    size: int
    action: Literal["exists", "downloaded"]
    bytes_received: int
    bytes_resumed: int


def fetch_blob(
    client: RegistryClient,
    repository: str,
    descriptor: Descriptor,
    store: Store,
    *,
    progress: TransferProgress,
) -> DownloadOutcome:
    """Make the store hold `descriptor`'s blob, downloading what is missing of it."""
    digest, size = descriptor.digest, descriptor.size
    with store.blob_writer(digest, size) as writer:
        if writer.exists:
            progress.emit(EXISTS, digest, size, size)
            return DownloadOutcome(digest, size, "exists", 0, 0)
        resumed = writer.offset
        received = _receive(client, repository, descriptor, writer, progress)
        progress.emit(VERIFYING, digest, size, size)
        try:
            writer.commit(descriptor.media_type)
        except DigestMismatchError as exc:
            raise DigestMismatchError(
                f"blob {digest} from {client.host}/{repository} does not match its digest or size "
                f"({exc.message}); it was not stored",
                hint="the registry or the network corrupted it; pull again, and report it if it persists",
            ) from None
    progress.emit(DONE, digest, size, size)
    return DownloadOutcome(digest, size, "downloaded", received, resumed)


def _receive(
    client: RegistryClient,
    repository: str,
    descriptor: Descriptor,
    writer: BlobWriter,
    progress: TransferProgress,
) -> int:
    """Write the rest of the blob into `writer`; return the bytes that came over the wire."""
    digest, size = descriptor.digest, descriptor.size
    what = f"downloading {digest[:19]} from {repository}"
    bar = progress.blob(DOWNLOADING, digest, size)
    bar.update(writer.offset, force=True)
    backoff = client.backoff(what)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingot-verify") as pipeline:
        return _receive_loop(client, repository, descriptor, writer, bar, backoff, pipeline, what)


def _receive_loop(
    client: RegistryClient,
    repository: str,
    descriptor: Descriptor,
    writer: BlobWriter,
    bar: BlobProgress,
    backoff: Backoff,
    pipeline: ThreadPoolExecutor,
    what: str,
) -> int:
    digest, size = descriptor.digest, descriptor.size
    received = 0
    furthest = writer.offset  # only bytes past this are progress; re-reading after a restart is not
    ended_early_at: int | None = None  # where a body ended cleanly before the declared size
    while True:
        start = writer.offset
        headers = {"Range": f"bytes={start}-"} if start else {}
        response = client.request("GET", f"{repository}/blobs/{digest}", scope=pull_scope(repository),
                                  what=what, headers=headers, stream=True)
        try:
            _check_served_size(client, response, descriptor, repository)
            if response.status_code == 416 and ended_early_at == start:
                # The body ended here on its own and the registry has nothing after it: the blob is this long.
                raise _size_mismatch(client, descriptor, repository, start)
            if not _accept_start(client, response, writer, what):
                failure = f"the registry refused to resume at byte {start}; starting over"
                if backoff.exhausted():
                    raise client.connection_error(what, ConnectionError(failure))
                backoff.wait(failure)
                continue
            if response.status_code == 404:
                raise RegistryNotFoundError(
                    f"{what}: {client.host} does not have the blob the manifest names",
                    hint="the package on the registry is incomplete; push it again",
                )
            client.expect(response, what=what, expected=(200, 206))
            begin = writer.offset
            try:
                _stream_into(response, writer, bar, pipeline)
            except Exception as exc:  # noqa: BLE001 - classified right below
                if not is_retryable_exception(exc):
                    raise
                failure = type(exc).__name__
            else:
                if writer.offset >= size:
                    bar.update(writer.offset, force=True)
                    return received + writer.offset - begin
                failure = f"connection closed at byte {writer.offset} of {size}"
                ended_early_at = writer.offset
            received += writer.offset - begin
        finally:
            response.close()
        if writer.offset > furthest:
            furthest = writer.offset
            backoff.reset()  # new bytes arrived: this is a flaky link, not a dead one
        if backoff.exhausted():
            raise client.connection_error(what, ConnectionError(failure))
        backoff.wait(failure)


def _stream_into(response: requests.Response, writer: BlobWriter, bar: BlobProgress,
                 pipeline: ThreadPoolExecutor) -> None:
    """Copy the body into `writer`, hashing and writing block N while block N+1 is received.

    Two buffers alternate: the socket fills one (the GIL is released in recv)
    while the pipeline thread writes the other and the BlobWriter hashes it
    in a thread of its own (hashlib and write release the GIL too), so a
    download runs at the pace of its slowest stage, not of their sum. On an
    exception, every byte received before it is already in the writer.
    """
    if response.headers.get("Content-Encoding", "identity") not in ("identity", ""):
        for block in response.iter_content(_READ_BLOCK):  # let requests decode it
            writer.write(block)
            bar.update(writer.offset)
        return
    readinto = _body_readinto(response)
    buffers = (bytearray(_READ_BLOCK), bytearray(_READ_BLOCK))
    pending: Future[None] | None = None
    turn = 0
    writeback = _Writeback(writer)
    try:
        while True:
            n = readinto(buffers[turn])
            if pending is not None:
                pending.result()
                pending = None
                bar.update(writer.offset)
            if not n:
                return
            pending = pipeline.submit(writeback.write, memoryview(buffers[turn])[:n])
            turn ^= 1
    finally:
        if pending is not None:
            pending.result()
        writeback.close()


def _body_readinto(response: requests.Response) -> Callable[[bytearray], int]:
    """How to read the (undecoded) body straight into a buffer.

    urllib3 2's `readinto` reads each block into a new bytes object and copies
    it over; the `http.client` response under it reads into the buffer itself,
    which saves a 1 MiB allocation and copy per block (about a CPU second per
    GiB pulled, benchmarks/bench_transfer.py). It keeps the Content-Length
    accounting and chunked decoding; a connection that drops ends the read
    early, which the caller already treats as a cut to resume from. Where
    urllib3's internals differ, its own `readinto` is used.
    """
    inner = getattr(response.raw, "_fp", None)
    if isinstance(inner, http.client.HTTPResponse):
        return inner.readinto
    return response.raw.readinto


class _Writeback:
    """Writes into the BlobWriter and starts the disk writeback of every 64 MiB written.

    The store fsyncs a blob before publishing it; left alone, the kernel would
    hold the whole blob dirty in memory and that fsync would stall the end of
    the pull for seconds. `POSIX_FADV_DONTNEED` on a written range starts its
    writeback at once (and lets the page cache drop it once clean), so the
    final fsync has little left to wait for. Purely an optimization: where
    the call is missing or fails, nothing changes.
    """

    _EVERY = 64 * 1024 * 1024

    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer
        self._fd: int | None = None
        self._started = writer.offset
        if hasattr(os, "posix_fadvise"):
            try:
                self._fd = os.open(writer.partial, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._fd = None

    def write(self, block: memoryview) -> None:
        self._writer.write(block)
        if self._fd is not None and self._writer.offset - self._started >= self._EVERY:
            try:
                os.posix_fadvise(self._fd, self._started, self._writer.offset - self._started,
                                 os.POSIX_FADV_DONTNEED)
            except OSError:
                pass
            self._started = self._writer.offset

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _served_size(response: requests.Response) -> int | None:
    """The whole blob's size as this answer states it, or None when it states none."""
    status = response.status_code
    if status == 200:
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and response.headers.get("Content-Encoding", "identity") in ("identity", ""):
            return int(length)
    elif status == 206:
        match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is not None and match.group(3) != "*":
            return int(match.group(3))
    elif status == 416:
        match = _UNSATISFIED_RANGE_RE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is not None:
            return int(match.group(1))
    return None


def _check_served_size(client: RegistryClient, response: requests.Response, descriptor: Descriptor,
                       repository: str) -> None:
    """Refuse a blob whose size on the registry is not the size its descriptor declares."""
    served = _served_size(response)
    if served is None or served == descriptor.size:
        return
    response.close()
    raise _size_mismatch(client, descriptor, repository, served)


def _size_mismatch(client: RegistryClient, descriptor: Descriptor, repository: str,
                   served: int) -> ManifestRejectedError:
    return ManifestRejectedError(
        f"blob {descriptor.digest} on {client.host}/{repository} is {served} bytes, but the manifest "
        f"declares {descriptor.size}; it was not stored",
        hint="the package on the registry is inconsistent (its manifest was written by hand or for another "
             "blob); push it again",
    )


def _accept_start(client: RegistryClient, response: requests.Response, writer: BlobWriter, what: str) -> bool:
    """Line the writer up with where the answer's bytes begin; False when the request must be redone."""
    status = response.status_code
    if status == 416 and writer.offset:
        # Our partial file is not a prefix the registry recognizes: start over.
        writer.reset()
        return False
    if status == 200 and writer.offset:
        # The registry ignored Range and sends everything from byte 0.
        _log.info("%s: the registry ignored Range; starting over", what)
        writer.reset()
        return True
    if status == 206:
        match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is None or int(match.group(1)) != writer.offset:
            raise RegistryProtocolError(
                f"{what}: {client.host} answered a Range request for byte {writer.offset} with "
                f"Content-Range {response.headers.get('Content-Range')!r}"
            )
    return True
