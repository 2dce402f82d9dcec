"""`pull`: a package from a registry into the local store, fetching only what is missing.

Order, so that a bad package leaves nothing behind: fetch the manifest (at
most 4 MiB, digest checked), validate it and recognize its format (ingot /
ModelPack, Ollama, Docker Model Runner; anything else is refused naming its
media types), `HEAD` every blob the store lacks (a manifest naming blobs the
registry does not have is refused before a byte is downloaded), download the
missing blobs in parallel (resumable, verified), then store the manifest —
converted to an ingot package for foreign formats — and only then move the tag.
"""

from __future__ import annotations

import time

from ingot.modelfile.template import DEFAULT_BUDGET, RenderBudget
from ingot.registry import foreign
from ingot.registry.digest import ProgressCallback
from ingot.registry.errors import IngotError
from ingot.registry.oci.auth import pull_scope
from ingot.registry.oci.client import MANIFEST_ACCEPT, RegistryClient
from ingot.registry.oci.credentials import Credentials
from ingot.registry.oci.download import DownloadOutcome, fetch_blob
from ingot.registry.oci.errors import ManifestRejectedError
from ingot.registry.oci.manifest import RemoteManifest, parse_manifest
from ingot.registry.oci.options import MAX_MANIFEST_BYTES, ClientOptions
from ingot.registry.oci.parallel import run_parallel
from ingot.registry.oci.progress import CONVERTING, RESOLVING, SUCCESS, WRITING_MANIFEST, TransferProgress
from ingot.registry.oci.result import TransferResult
from ingot.registry.package import load_package
from ingot.registry.reference import DEFAULT_TAG, Reference
from ingot.registry.store import Descriptor, Store
from ingot.registry.template_check import template_warnings

__all__ = ["pull"]


def _target(reference: Reference | str) -> tuple[Reference, bool]:
    """The reference to pull, and whether its tag should be moved.

    A pull by digest moves a tag only when one was written (`name:tag@sha256:...`).
    """
    if isinstance(reference, Reference):
        ref = reference
        explicit_tag = ref.digest is None or ref.tag != DEFAULT_TAG
    else:
        ref = Reference.parse(reference)
        last = reference.split("@", 1)[0].rsplit("/", 1)[-1]
        explicit_tag = ref.digest is None or ":" in last
    return ref.for_remote(None), explicit_tag


def _read_capped(response: object, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):  # type: ignore[attr-defined]
        size += len(chunk)
        if size > MAX_MANIFEST_BYTES:
            raise ManifestRejectedError(
                f"{what}: the manifest is over the {MAX_MANIFEST_BYTES} byte limit",
                hint="registries refuse manifests over 4 MiB; this one is malformed or hostile",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_manifest(client: RegistryClient, ref: Reference) -> RemoteManifest:
    """GET the manifest `ref` names (OCI types in `Accept`), capped, parsed and digest-checked."""
    repository = ref.repository
    what = f"fetching the manifest of {ref.short}"
    response = client.request(
        "GET", f"{repository}/manifests/{ref.digest or ref.tag}", scope=pull_scope(repository), what=what,
        headers={"Accept": MANIFEST_ACCEPT}, stream=True,
    )
    try:
        client.expect(response, what=what, expected=(200,))
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_MANIFEST_BYTES:
            raise ManifestRejectedError(
                f"{what}: the manifest is {length} bytes, over the {MAX_MANIFEST_BYTES} byte limit",
                hint="registries refuse manifests over 4 MiB; this one is malformed or hostile",
            )
        raw = _read_capped(response, what)
    finally:
        response.close()
    manifest = parse_manifest(raw, source=ref.short, content_type=response.headers.get("Content-Type"))
    if ref.digest and manifest.digest != ref.digest:
        raise ManifestRejectedError(
            f"{what}: the registry sent a manifest hashing to {manifest.digest}, not the {ref.digest} asked for",
            hint="the registry or the network is corrupting data; nothing was written",
        )
    claimed = response.headers.get("Docker-Content-Digest")
    if claimed and claimed.startswith("sha256:") and claimed != manifest.digest:
        raise ManifestRejectedError(
            f"{what}: the registry says the manifest is {claimed}, but its bytes hash to {manifest.digest}",
            hint="the registry or the network is corrupting data; nothing was written",
        )
    return manifest


def _check_blobs_present(client: RegistryClient, repository: str, blobs: list[Descriptor], workers: int) -> None:
    """Refuse a manifest whose blobs the registry lacks, before downloading any of them."""

    def present(blob: Descriptor) -> bool:
        what = f"checking blob {blob.digest[:19]} on {repository}"
        response = client.request("HEAD", f"{repository}/blobs/{blob.digest}", scope=pull_scope(repository),
                                  what=what)
        response.close()
        if response.status_code == 404:
            return False
        client.expect(response, what=what, expected=(200,))
        return True

    found = run_parallel(present, blobs, workers=workers, name="ingot-head")
    missing = [blob for blob, ok in zip(blobs, found) if not ok]
    if missing:
        names = ", ".join(f"{b.digest} ({b.media_type})" for b in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ManifestRejectedError(
            f"{client.host}/{repository}: the manifest references blobs the registry does not have: {names}{more}",
            hint="the package on the registry is incomplete; push it again",
        )


def _template_notes(store: Store, ref: Reference, budget: RenderBudget) -> tuple[str, ...]:
    try:
        package = load_package(store, ref)
    except IngotError:
        return ()  # not a package ingot can serve: nothing to say about its template
    return template_warnings(package, budget=budget)


def pull(
    store: Store,
    reference: Reference | str,
    *,
    options: ClientOptions | None = None,
    credentials: Credentials | None = None,
    progress: ProgressCallback | None = None,
    template_budget: RenderBudget = DEFAULT_BUDGET,
) -> TransferResult:
    """Pull `reference` (`host[:port]/namespace/name:tag` or `...@sha256:`) into `store`.

    The pulled package's template is trial-rendered within `template_budget`;
    what fails is reported in the result's notes (the package is kept).
    """
    started = time.monotonic()
    options = options or ClientOptions()
    ref, move_tag = _target(reference)
    sink = TransferProgress(progress)
    sink.emit(RESOLVING, None, 0, 0)
    repository = ref.repository
    # Held shared for the whole pull: gc must not collect fresh blobs before the tag names them.
    with store.writing(), RegistryClient(ref.host or "", options=options, credentials=credentials) as client:
        manifest = fetch_manifest(client, ref)
        plan = foreign.plan_conversion(manifest.config, manifest.layers, manifest.artifact_type,
                                       source=ref.short)
        blobs = list(manifest.blobs)
        missing = [b for b in blobs if not store.has_blob(b.digest, b.size)]
        _check_blobs_present(client, repository, missing, options.parallel)

        def receive(blob: Descriptor) -> DownloadOutcome:
            return fetch_blob(client, repository, blob, store, progress=sink)

        outcomes = run_parallel(receive, blobs, workers=options.parallel, name="ingot-pull", on_abort=sink.cancel)
        if plan.foreign:
            sink.emit(CONVERTING, manifest.digest, 0, 0)
        sink.emit(WRITING_MANIFEST, manifest.digest, len(manifest.raw), 0)
        descriptor, notes = foreign.materialize(store, plan, manifest.raw, ref=ref, tag=move_tag, source=ref.short)
        notes = (*notes, *_template_notes(store, ref.without_digest().with_digest(descriptor.digest),
                                          template_budget))

    total = sum(b.size for b in blobs)
    downloaded = [o for o in outcomes if o.action == "downloaded"]
    received = sum(o.bytes_received for o in outcomes)
    result = TransferResult(
        reference=str(ref.without_digest().with_digest(descriptor.digest)),
        digest=descriptor.digest,
        format=plan.format,
        blobs_total=len(blobs),
        blobs_transferred=len(downloaded),
        blobs_skipped=len(blobs) - len(downloaded),
        blobs_mounted=0,
        bytes_total=total,
        bytes_transferred=received,
        bytes_skipped=sum(o.size for o in outcomes if o.action == "exists") + sum(o.bytes_resumed for o in downloaded),
        bytes_resumed=sum(o.bytes_resumed for o in downloaded),
        manifest_bytes=len(manifest.raw),
        seconds=time.monotonic() - started,
        notes=notes,
    )
    sink.emit(SUCCESS, descriptor.digest, total, total)
    return result
