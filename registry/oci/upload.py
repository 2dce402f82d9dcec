"""Sending one blob to a registry: skip, mount, or stream it in constant memory.

Order of preference: `HEAD` says the repository has it (nothing sent); a
cross-repository mount from a repository on the same registry that has it
(nothing sent); otherwise an upload session: one streamed `PUT` for blobs up
to the chunk size, else `PATCH` chunks (`Content-Range: a-b`, following each
`Location`) and a closing `PUT ?digest=`. Bytes are read from the store's
file as they are sent, so memory stays flat whatever the blob's size.

A chunk cut off by a dropped connection is not sent again blindly: the
upload's status (`GET Location` -> `Range: 0-N`) says where the registry's
copy ends, and the upload continues from there. A session the registry no
longer accepts (expired, or invalidated by the broken PATCH, as distribution
2.8 does) starts over. The registry verifies the digest on the final `PUT`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from ingot.registry.oci.auth import push_scope
from ingot.registry.oci.client import RegistryClient
from ingot.registry.oci.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
    RegistryProtocolError,
)
from ingot.registry.oci.progress import DONE, EXISTS, MOUNTED, UPLOADING, BlobProgress, TransferProgress
from ingot.registry.oci.retry import RETRY_STATUSES, Backoff, is_retryable_exception
from ingot.registry.store import Descriptor

__all__ = ["UploadOutcome", "push_blob"]


# Bytes handed to the socket per write: large enough that Python overhead
# vanishes, small enough that progress moves smoothly.
_SEND_BLOCK = 1 << 20


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one blob: `exists` and `mounted` sent no bytes."""

    digest: str
    size: int
    action: Literal["exists", "mounted", "uploaded"]
    bytes_sent: int


class _FileRange:
    """`length` bytes of a file from `start`, as a re-iterable request body with a length.

    requests sends an iterable with `__len__` as a Content-Length body,
    one chunk per write; iterating again (after an auth challenge) starts over.
    """

    def __init__(self, path: Path, start: int, length: int, progress: BlobProgress, counter: list[int]) -> None:
        self._path = path
        self._start = start
        self._length = length
        self._progress = progress
        self._counter = counter

    def __len__(self) -> int:
        return self._length

    def rewind(self) -> None:
        """Nothing to do: every iteration reopens the range."""

    def __iter__(self) -> Iterator[bytes]:
        remaining = self._length
        sent = 0
        with open(self._path, "rb", buffering=0) as f:
            f.seek(self._start)
            while remaining > 0:
                block = f.read(min(_SEND_BLOCK, remaining))
                if not block:
                    raise RegistryProtocolError(f"{self._path} ended {remaining} bytes early while uploading")
                remaining -= len(block)
                sent += len(block)
                self._counter[0] += len(block)
                yield block
                self._progress.update(self._start + sent)


def _with_query(url: str, **params: str) -> str:
    """`url` with extra query parameters, keeping the ones a registry's Location carries."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _location(client: RegistryClient, response: requests.Response, what: str) -> str:
    location = response.headers.get("Location")
    if not location:
        raise RegistryProtocolError(f"{what}: {client.host} answered {response.status_code} without a Location")
    return client.url(location)


def _blob_exists(client: RegistryClient, repository: str, descriptor: Descriptor) -> bool:
    what = f"checking blob {descriptor.digest[:19]} on {repository}"
    response = client.request("HEAD", f"{repository}/blobs/{descriptor.digest}", scope=push_scope(repository),
                              what=what)
    response.close()
    if response.status_code == 200:
        return True
    client.expect(response, what=what, expected=(404,))
    return False


def _try_mount(client: RegistryClient, repository: str, digest: str, sources: Sequence[str]) -> tuple[bool, str | None]:
    """(mounted, upload location the registry opened instead), trying each source repository."""
    for source in sources:
        what = f"mounting {digest[:19]} from {source}"
        path = f"{repository}/blobs/uploads/?{urlencode({'mount': digest, 'from': source})}"
        try:
            response = client.request("POST", path, scope=push_scope(repository), what=what)
        except RegistryAuthError:
            continue  # may read the target but not the source: upload instead
        response.close()
        if response.status_code == 201:
            return True, None
        if response.status_code == 202:
            # Not mountable from there; the registry opened an ordinary upload.
            return False, _location(client, response, what)
    return False, None


def _start_upload(client: RegistryClient, repository: str, digest: str) -> str:
    what = f"starting the upload of {digest[:19]} to {repository}"
    response = client.request("POST", f"{repository}/blobs/uploads/", scope=push_scope(repository), what=what)
    client.expect(response, what=what, expected=(202,))
    response.close()
    return _location(client, response, what)


def _upload_status(client: RegistryClient, repository: str, location: str) -> tuple[int, str] | None:
    """(bytes the registry holds, current Location) of an upload session; None when it is gone."""
    what = f"checking an upload to {repository}"
    response = client.request("GET", location, scope=push_scope(repository), what=what)
    response.close()
    if response.status_code in (400, 404, 416):
        # Gone or unusable: distribution answers BLOB_UPLOAD_INVALID once a PATCH broke off.
        return None
    client.expect(response, what=what, expected=(204,))
    held = 0
    range_header = response.headers.get("Range", "")
    if "-" in range_header:
        end = range_header.rsplit("-", 1)[1]
        if end.isdigit():
            held = int(end) + 1
    new_location = response.headers.get("Location")
    return held, client.url(new_location) if new_location else location


def push_blob(
    client: RegistryClient,
    repository: str,
    descriptor: Descriptor,
    path: Path,
    *,
    mount_from: Sequence[str],
    progress: TransferProgress,
) -> UploadOutcome:
    """Make `repository` on the registry hold `descriptor`'s blob, read from `path`."""
    digest, size = descriptor.digest, descriptor.size
    if _blob_exists(client, repository, descriptor):
        progress.emit(EXISTS, digest, size, size)
        return UploadOutcome(digest, size, "exists", 0)
    mounted, location = _try_mount(client, repository, digest, mount_from)
    if mounted:
        progress.emit(MOUNTED, digest, size, size)
        return UploadOutcome(digest, size, "mounted", 0)
    bar = progress.blob(UPLOADING, digest, size)
    bar.update(0, force=True)
    counter = [0]
    backoff = client.backoff(f"uploading {digest[:19]} to {repository}")
    location = location or _start_upload(client, repository, digest)
    if size <= client.options.chunk_size:
        _send_whole(client, repository, descriptor, path, location, bar, counter, backoff)
    else:
        location = _send_chunks(client, repository, descriptor, path, location, bar, counter, backoff)
        _close_session(client, repository, descriptor, location, backoff)
    bar.update(size, force=True)
    progress.emit(DONE, digest, size, size)
    return UploadOutcome(digest, size, "uploaded", counter[0])


def _send_whole(
    client: RegistryClient,
    repository: str,
    descriptor: Descriptor,
    path: Path,
    location: str,
    bar: BlobProgress,
    counter: list[int],
    backoff: Backoff,
) -> None:
    """One streamed `PUT ?digest=`; a failed try opens a new session and sends it again."""
    while True:
        body: _FileRange | bytes = _FileRange(path, 0, descriptor.size, bar, counter) if descriptor.size else b""
        try:
            _finish(client, repository, descriptor, location, body)
            return
        except _Retryable as failure:
            if backoff.exhausted():
                raise failure.error from None
            backoff.wait(failure.reason, failure.response)
            bar.update(0, force=True)
            location = _start_upload(client, repository, descriptor.digest)


def _close_session(
    client: RegistryClient, repository: str, descriptor: Descriptor, location: str, backoff: Backoff
) -> None:
    """The closing `PUT ?digest=` after the PATCHes, sent again when it fails in transit."""
    while True:
        try:
            _finish(client, repository, descriptor, location, b"")
            return
        except _Retryable as failure:
            if backoff.exhausted():
                raise failure.error from None
            backoff.wait(failure.reason, failure.response)
        except RegistryNotFoundError:
            # A PUT that landed but whose answer was lost closed the session.
            if _blob_exists(client, repository, descriptor):
                return
            raise


def _send_chunks(
    client: RegistryClient,
    repository: str,
    descriptor: Descriptor,
    path: Path,
    location: str,
    bar: BlobProgress,
    counter: list[int],
    backoff: Backoff,
) -> str:
    """PATCH `chunk_size` pieces; return the Location for the closing PUT."""
    size, chunk = descriptor.size, client.options.chunk_size
    what = f"uploading {descriptor.digest[:19]} to {repository}"
    offset = 0
    while offset < size:
        end = min(offset + chunk, size)
        body = _FileRange(path, offset, end - offset, bar, counter)
        headers = {"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{end - 1}"}
        failure: str | None = None
        response: requests.Response | None = None
        try:
            response = client.request("PATCH", location, scope=push_scope(repository), what=what,
                                      headers=headers, data=body, retry=False)
        except RegistryError:
            raise
        except Exception as exc:  # noqa: BLE001 - only connection faults are retried
            if not is_retryable_exception(exc):
                raise
            failure = type(exc).__name__
        if response is not None:
            response.close()
            if response.status_code == 202:
                location = _location(client, response, what)
                offset = end
                backoff.reset()
                continue
            if response.status_code not in RETRY_STATUSES and response.status_code != 416:
                client.expect(response, what=what, expected=(202,))
            failure = f"HTTP {response.status_code}"
        if backoff.exhausted():
            raise client.connection_error(what, ConnectionError(failure or "upload failed"))
        backoff.wait(failure or "upload failed", response)
        status = _upload_status(client, repository, location)
        if status is None:  # the session expired or was invalidated: start over
            location = _start_upload(client, repository, descriptor.digest)
            offset = 0
        else:
            offset, location = status
        bar.update(offset, force=True)
    return location


class _Retryable(Exception):
    """A closing PUT that failed in a way worth sending again."""

    def __init__(self, reason: str, error: RegistryError, response: requests.Response | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.response = response


def _finish(
    client: RegistryClient, repository: str, descriptor: Descriptor, location: str, body: _FileRange | bytes
) -> None:
    """`PUT Location?digest=` (with the whole blob, or empty after PATCHes) and check the answer."""
    what = f"uploading {descriptor.digest[:19]} to {repository}"
    url = _with_query(location, digest=descriptor.digest)
    headers = {"Content-Type": "application/octet-stream"}
    if isinstance(body, bytes):
        headers["Content-Length"] = str(len(body))
    try:
        response = client.request("PUT", url, scope=push_scope(repository), what=what, headers=headers,
                                  data=body, retry=False)
    except RegistryError:
        raise
    except Exception as exc:  # noqa: BLE001 - only connection faults are retried
        if not is_retryable_exception(exc):
            raise
        raise _Retryable(type(exc).__name__, client.connection_error(what, exc), None) from None
    response.close()
    if response.status_code in RETRY_STATUSES:
        error = RegistryError(f"{what}: {client.host} kept failing with HTTP {response.status_code}")
        raise _Retryable(f"HTTP {response.status_code}", error, response)
    client.expect(response, what=what, expected=(201,))
    echoed = response.headers.get("Docker-Content-Digest")
    if echoed and echoed != descriptor.digest:
        raise RegistryProtocolError(f"{what}: {client.host} stored it as {echoed}, not {descriptor.digest}")
