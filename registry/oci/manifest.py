"""Reading a manifest that came from a registry (or is about to go to one), defensively.

Everything here runs before a single byte is written to the store: a manifest
over 4 MiB, one that is not a JSON image manifest, one whose descriptors are
malformed, or one whose `org.cncf.model.filepath` annotation would escape the
package folder (`../`, absolute paths, backslashes, NUL) is refused with one
`ManifestRejectedError` naming the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ingot.registry import mediatypes as mt
from ingot.registry.digest import digest_bytes
from ingot.registry.errors import StoreError
from ingot.registry.oci.errors import ManifestRejectedError
from ingot.registry.oci.options import MAX_MANIFEST_BYTES
from ingot.registry.store import Descriptor

__all__ = ["RemoteManifest", "check_filepath", "parse_manifest"]


@dataclass(frozen=True)
class RemoteManifest:
    """A validated image manifest: its exact bytes, digest, and the blobs it names."""

    raw: bytes
    digest: str
    media_type: str
    artifact_type: str | None
    config: Descriptor
    layers: tuple[Descriptor, ...]
    document: dict[str, Any]

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config then layers, each digest once."""
        seen: set[str] = set()
        out: list[Descriptor] = []
        for descriptor in (self.config, *self.layers):
            if descriptor.digest not in seen:
                seen.add(descriptor.digest)
                out.append(descriptor)
        return tuple(out)

    @property
    def descriptor(self) -> Descriptor:
        """The descriptor a tag (local or remote) points at."""
        return Descriptor(self.media_type, self.digest, len(self.raw), {}, self.artifact_type)

    def media_types(self) -> list[str]:
        """Config and layer media types, for error messages about unknown formats."""
        return [self.config.media_type, *(layer.media_type for layer in self.layers)]


def check_filepath(value: str, *, where: str) -> str:
    """Refuse a layer path that could land outside the package folder; return it normalized."""
    problem: str | None = None
    if not value:
        problem = "is empty"
    elif "\x00" in value:
        problem = "contains a NUL byte"
    elif "\\" in value:
        problem = "contains a backslash"
    elif value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        problem = "is absolute"
    else:
        parts = PurePosixPath(value).parts
        if any(part == ".." for part in parts):
            problem = "climbs out of the package folder with '..'"
        elif not parts or all(part == "." for part in parts):
            problem = "names no file"
    if problem:
        raise ManifestRejectedError(
            f"{where}: layer path {value[:200]!r} ({mt.ANNOTATION_FILEPATH}) {problem}",
            hint="the package is malformed or hostile; nothing was written",
        )
    return str(PurePosixPath(value))


def parse_manifest(raw: bytes, *, source: str, content_type: str | None = None) -> RemoteManifest:
    """Validate `raw` as an OCI / Docker schema-2 image manifest; `source` names it in errors."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestRejectedError(
            f"{source}: manifest is {len(raw)} bytes, over the {MAX_MANIFEST_BYTES} byte limit",
            hint="registries refuse manifests over 4 MiB; this one is malformed or hostile",
        )
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestRejectedError(f"{source}: manifest is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestRejectedError(f"{source}: manifest is not a JSON object")
    media_type = document.get("mediaType") or (content_type or "").split(";")[0].strip() or mt.OCI_MANIFEST
    if media_type in mt.INDEX_TYPES or isinstance(document.get("manifests"), list):
        raise ManifestRejectedError(
            f"{source}: is an image index (a list of platform manifests), not a model package",
            hint="pull one of its manifests by digest (NAME@sha256:...)",
        )
    if media_type not in mt.MANIFEST_TYPES:
        raise ManifestRejectedError(
            f"{source}: unsupported manifest media type {media_type!r}",
            hint=f"ingot reads {mt.OCI_MANIFEST} and {mt.DOCKER_MANIFEST}",
        )
    if document.get("schemaVersion") != 2:
        raise ManifestRejectedError(f"{source}: manifest schemaVersion is {document.get('schemaVersion')!r}, not 2")
    raw_layers = document.get("layers")
    if not isinstance(raw_layers, list):
        raise ManifestRejectedError(f"{source}: manifest has no 'layers' list")
    try:
        config = Descriptor.from_json(document.get("config"))
        layers = tuple(Descriptor.from_json(layer) for layer in raw_layers)
    except (StoreError, ValueError) as exc:
        raise ManifestRejectedError(f"{source}: malformed descriptor in the manifest: {exc}") from None
    for index, layer in enumerate(layers):
        path = layer.annotations.get(mt.ANNOTATION_FILEPATH)
        if path is not None:
            check_filepath(path, where=f"{source} layer {index} ({layer.digest[:19]})")
    artifact_type = document.get("artifactType")
    return RemoteManifest(
        raw=raw,
        digest=digest_bytes(raw),
        media_type=media_type,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        config=config,
        layers=layers,
        document=document,
    )
