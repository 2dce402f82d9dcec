"""`push`: a package from the local store to a registry, sending only what it lacks.

Blobs go first (in parallel: HEAD to skip, cross-repository mount from any
repository of the same registry that the local store knows holds the blob,
else a streamed upload); the manifest goes last, byte for byte as stored, so
its digest on the registry is the local one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from ingot.registry.errors import BlobNotFoundError, ModelNotFoundError, StoreError
from ingot.registry.oci.auth import push_scope
from ingot.registry.oci.client import RegistryClient
from ingot.registry.oci.credentials import Credentials
from ingot.registry.oci.errors import RegistryProtocolError
from ingot.registry.oci.manifest import RemoteManifest, parse_manifest
from ingot.registry.oci.options import ClientOptions
from ingot.registry.oci.parallel import run_parallel
from ingot.registry.oci.progress import RESOLVING, SUCCESS, WRITING_MANIFEST, TransferProgress
from ingot.registry.oci.result import TransferResult
from ingot.registry.oci.upload import UploadOutcome, push_blob
from ingot.registry.digest import ProgressCallback
from ingot.registry.reference import Reference
from ingot.registry.store import Descriptor, Store

__all__ = ["push"]


@dataclass(frozen=True)
class _Job:
    descriptor: Descriptor
    mount_from: tuple[str, ...]


def _as_reference(value: Reference | str) -> Reference:
    return value if isinstance(value, Reference) else Reference.parse(value)


def _mount_sources(store: Store, target: Reference, digests: set[str]) -> Mapping[str, tuple[str, ...]]:
    """For each digest, the other repositories on the target's registry that hold it (per the local store)."""
    found: dict[str, list[str]] = {}
    for entry in store.list_tags():
        ref = entry.reference
        if ref.host != target.host or ref.repository == target.repository:
            continue
        try:
            manifest = parse_manifest(store.read_blob(entry.descriptor.digest), source=str(ref))
        except (StoreError, ValueError, Exception):  # noqa: BLE001 - a broken tag only loses a mount hint
            continue
        for blob in manifest.blobs:
            if blob.digest in digests and ref.repository not in found.setdefault(blob.digest, []):
                found[blob.digest].append(ref.repository)
    return {digest: tuple(repos) for digest, repos in found.items()}


def _load_local(store: Store, source: Reference) -> RemoteManifest:
    descriptor = store.resolve(source)
    if descriptor is None:
        raise ModelNotFoundError(
            f"{source.short} is not in the local store", hint="create it with `ingot create` or pull it first"
        )
    manifest = parse_manifest(store.read_blob(descriptor.digest), source=source.short)
    for blob in manifest.blobs:
        if not store.has_blob(blob.digest, blob.size):
            raise BlobNotFoundError(
                f"{source.short} is incomplete: blob {blob.digest} ({blob.media_type}) is missing locally",
                hint="pull or create the model again",
            )
    return manifest


def push(
    store: Store,
    reference: Reference | str,
    *,
    destination: Reference | str | None = None,
    options: ClientOptions | None = None,
    credentials: Credentials | None = None,
    progress: ProgressCallback | None = None,
) -> TransferResult:
    """Push the local package `reference` to `destination` (default: the same reference, which needs a host)."""
    started = time.monotonic()
    options = options or ClientOptions()
    source = _as_reference(reference)
    target = _as_reference(destination) if destination is not None else source
    target = target.for_remote(None)
    sink = TransferProgress(progress)
    sink.emit(RESOLVING, None, 0, 0)
    manifest = _load_local(store, source)
    if target.digest and target.digest != manifest.digest:
        raise RegistryProtocolError(
            f"cannot push {source.short} as {target.short}: its manifest digest is {manifest.digest}",
            hint="drop the @sha256:... part of the destination",
        )
    blobs = manifest.blobs
    sources = _mount_sources(store, target, {b.digest for b in blobs})
    jobs = [_Job(b, sources.get(b.digest, ())) for b in blobs]
    repository = target.repository

    with RegistryClient(target.host or "", options=options, credentials=credentials) as client:
        def send(job: _Job) -> UploadOutcome:
            path = store.verified_blob_path(job.descriptor.digest, job.descriptor.size)
            return push_blob(client, repository, job.descriptor, path, mount_from=job.mount_from, progress=sink)

        outcomes = run_parallel(send, jobs, workers=options.parallel, name="ingot-push", on_abort=sink.cancel)
        sink.emit(WRITING_MANIFEST, manifest.digest, len(manifest.raw), 0)
        tag_or_digest = target.digest or target.tag
        what = f"writing the manifest of {target.short}"
        response = client.request(
            "PUT", f"{repository}/manifests/{tag_or_digest}", scope=push_scope(repository), what=what,
            headers={"Content-Type": manifest.media_type}, data=manifest.raw,
        )
        client.expect(response, what=what, expected=(201, 200))
        response.close()
        echoed = response.headers.get("Docker-Content-Digest")
        if echoed and echoed != manifest.digest:
            raise RegistryProtocolError(f"{what}: {client.host} stored it as {echoed}, not {manifest.digest}")

    total = sum(b.size for b in blobs)
    sent = sum(o.bytes_sent for o in outcomes)
    uploaded = [o for o in outcomes if o.action == "uploaded"]
    result = TransferResult(
        reference=str(target.without_digest().with_digest(manifest.digest)),
        digest=manifest.digest,
        format="oci",
        blobs_total=len(blobs),
        blobs_transferred=len(uploaded),
        blobs_skipped=len(blobs) - len(uploaded),
        blobs_mounted=sum(1 for o in outcomes if o.action == "mounted"),
        bytes_total=total,
        bytes_transferred=sent,
        bytes_skipped=sum(o.size for o in outcomes if o.action != "uploaded"),
        bytes_resumed=0,
        manifest_bytes=len(manifest.raw),
        seconds=time.monotonic() - started,
    )
    sink.emit(SUCCESS, manifest.digest, total, total)
    return result
