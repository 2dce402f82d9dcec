"""What a container runtime makes of a package mounted as a Kubernetes image volume, built on the host.

CRI-O and podman mount an OCI artifact as one folder holding each layer blob
as a file named by its `org.opencontainers.image.title` annotation; the
manifest and the config stay out. `lay_out_image_volume` does the same from
a local store, with hardlinks (the blobs are not copied, as a mount does not).
"""

from __future__ import annotations

import os
from pathlib import Path

from ingot.registry import mediatypes as mt
from ingot.registry.reference import Reference
from ingot.registry.store import Store

__all__ = ["lay_out_image_volume"]


def lay_out_image_volume(store: Store, ref: Reference, folder: Path) -> list[str]:
    """Fill `folder` with the layers of `ref`'s manifest, named by title; returns the names."""
    descriptor = store.resolve(ref)
    assert descriptor is not None, f"{ref} is not in the store"
    manifest = store.read_json(descriptor.digest)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for layer in manifest["layers"]:
        title = layer["annotations"][mt.ANNOTATION_TITLE]
        assert "/" not in title, f"a mounted layer's title must be a file name, not {title!r}"
        os.link(store.blob_path(layer["digest"]), folder / title)
        names.append(title)
    return names
