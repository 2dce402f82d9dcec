"""Packages mounted as folders: a Kubernetes image volume (or podman's artifact mount) of a model package.

A container runtime mounts an OCI artifact as one read-only folder holding
each layer blob as a file named by the layer's `org.opencontainers.image.title`
annotation; the manifest and the config are not there. ingot titles its layers
`model.gguf`, `adapter-N.gguf`, `LICENSE`, `LICENSE-N` and
`ingot-modelfile.json` (see `package.layer_annotations`), so the folder holds
everything serving needs:

* with `ingot-modelfile.json` (an ingot package): template, system,
  parameters and messages come from it; the weights are `model.gguf`, the
  adapters `adapter-1.gguf`... in the order it lists them, the licenses
  `LICENSE`, `LICENSE-2`... (checked against the digests it records);
* without it (a ModelPack package another tool built): exactly one `*.gguf`
  file, served with the chat template inside the GGUF (hashed once, at load,
  to learn its digest).

Nothing is copied and nothing is written. An ingot package's weights are not
re-hashed: the container runtime verified every blob when it pulled the
artifact, and hashing gigabytes on every start would only delay readiness.

A mount is named on the command line as `NAME=PATH` (`ingot serve
--model-dir`), or just `PATH`, named after its folder. The package's digest
is the one in NAME (`host/team/llama@sha256:...`, as the image volume's
reference pins it) or, without one, the digest of its `ingot-modelfile.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingot.registry import mediatypes as mt
from ingot.registry.digest import digest_bytes, digest_file
from ingot.registry.errors import PackageError, ReferenceError
from ingot.registry.gguf_info import inspect_gguf
from ingot.registry.package import (
    MODELFILE_FILEPATH,
    WEIGHTS_FILEPATH,
    Package,
    adapter_filepath,
    layer_annotations,
    layer_title,
    license_filepath,
    model_config,
    package_from_runtime,
)
from ingot.registry.reference import Reference

__all__ = ["ModelDir", "load_model_dirs", "load_mounted_package", "parse_model_dir"]

_HINT = (
    "mount the package as an image volume (each layer a file named by its org.opencontainers.image.title); "
    "packages built before ingot titled their layers need `ingot create` and `ingot push` again"
)


@dataclass(frozen=True)
class ModelDir:
    """A package mounted at `path`, served as `name`."""

    name: Reference
    path: Path

    @property
    def key(self) -> str:
        """The name requests use, normalized: what a catalog looks it up by."""
        return self.name.without_digest().tagged


def parse_model_dir(text: str) -> ModelDir:
    """`NAME=PATH` or `PATH` (named after its folder); raises ValueError with what to write instead."""
    text = text.strip()
    name, sep, raw_path = text.rpartition("=")
    if not sep:
        raw_path, name = text, ""
    if not raw_path:
        raise ValueError(f"model dir {text!r} names no folder; write NAME=PATH, e.g. llama=/models/llama")
    path = Path(raw_path).expanduser().absolute()
    name = name or path.name
    try:
        ref = Reference.parse(name)
    except ReferenceError as exc:
        raise ValueError(f"model dir {text!r}: {exc}") from None
    return ModelDir(ref, path)


def _file(folder: Path, filepath: str) -> Path:
    path = folder / layer_title(filepath)
    if not path.is_file():
        present = sorted(p.name for p in folder.iterdir())[:20] if folder.is_dir() else []
        raise PackageError(
            f"the model folder {folder} has no {path.name} (it holds: {', '.join(present) or 'nothing'})",
            hint=_HINT,
        )
    return path


def _layer(media_type: str, digest: str, path: Path, filepath: str) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": digest,
        "size": path.stat().st_size,
        "annotations": layer_annotations(filepath),
    }


def _digest_list(runtime: Mapping[str, Any], key: str, folder: Path) -> list[str]:
    value = runtime.get(key) or []
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise PackageError(f"{folder / MODELFILE_FILEPATH}: '{key}' is not a list of digests", hint=_HINT)
    return value


def _ingot_package(mount: ModelDir, runtime_path: Path) -> Package:
    folder = mount.path
    raw = runtime_path.read_bytes()
    try:
        runtime = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{runtime_path} is not valid JSON: {exc}", hint=_HINT) from None
    if not isinstance(runtime, dict) or not isinstance(runtime.get("weights"), str):
        raise PackageError(f"{runtime_path} is not an ingot runtime document (no 'weights' digest)", hint=_HINT)
    weights = _file(folder, WEIGHTS_FILEPATH)
    layers = [_layer(mt.MODEL_WEIGHT_RAW, runtime["weights"], weights, WEIGHTS_FILEPATH)]
    adapters: list[Path] = []
    for number, digest in enumerate(_digest_list(runtime, "adapters", folder), start=1):
        path = _file(folder, adapter_filepath(number))
        adapters.append(path)
        layers.append(_layer(mt.INGOT_ADAPTER, digest, path, adapter_filepath(number)))
    licenses: list[str] = []
    for number, digest in enumerate(_digest_list(runtime, "licenses", folder), start=1):
        path = _file(folder, license_filepath(number))
        data = path.read_bytes()
        if digest_bytes(data) != digest:
            raise PackageError(f"{path} does not match the digest {digest} its package records", hint=_HINT)
        licenses.append(data.decode("utf-8", errors="replace"))
        layers.append(_layer(mt.MODEL_DOC_RAW, digest, path, license_filepath(number)))
    runtime_digest = digest_bytes(raw)
    layers.append(_layer(mt.INGOT_MODELFILE, runtime_digest, runtime_path, MODELFILE_FILEPATH))
    return _package(mount, weights, layers, runtime, tuple(adapters), tuple(licenses), runtime_digest)


def _gguf_package(mount: ModelDir) -> Package:
    folder = mount.path
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    if len(found) != 1:
        what = "no .gguf file" if not found else f"{len(found)} GGUF files ({', '.join(p.name for p in found)})"
        raise PackageError(
            f"the model folder {folder} holds no {MODELFILE_FILEPATH} and {what}",
            hint="a folder without an ingot package serves exactly one GGUF file; " + _HINT,
        )
    weights = found[0]
    digest, _ = digest_file(weights)
    layers = [_layer(mt.MODEL_WEIGHT_RAW, digest, weights, weights.name)]
    return _package(mount, weights, layers, {}, (), (), digest)


def _package(
    mount: ModelDir,
    weights: Path,
    layers: list[dict[str, Any]],
    runtime: Mapping[str, Any],
    adapters: tuple[Path, ...],
    licenses: tuple[str, ...],
    fallback_digest: str,
) -> Package:
    info = inspect_gguf(weights)
    # What the registry's manifest held, as far as the files tell: enough for
    # `show` and the catalog (weights digest, layer list, model details).
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.MODEL_ARTIFACT,
        "layers": layers,
    }
    return package_from_runtime(
        reference=mount.name,
        digest=mount.name.digest or fallback_digest,
        manifest=manifest,
        config=model_config(info, {}, [layer["digest"] for layer in layers]),
        weights=weights,
        runtime=runtime,
        adapters=adapters,
        licenses=licenses,
        size=sum(layer["size"] for layer in layers),
    )


def load_mounted_package(mount: ModelDir) -> Package:
    """The package mounted at `mount.path`; PackageError (with the folder and what is missing) otherwise."""
    if not mount.path.is_dir():
        raise PackageError(f"the model folder {mount.path} does not exist or is not a folder", hint=_HINT)
    runtime_path = mount.path / layer_title(MODELFILE_FILEPATH)
    if runtime_path.is_file():
        return _ingot_package(mount, runtime_path)
    return _gguf_package(mount)


def load_model_dirs(mounts: Iterable[ModelDir]) -> dict[str, Package]:
    """Every mounted package by the normalized name requests use; two mounts with one name are an error."""
    packages: dict[str, Package] = {}
    for mount in mounts:
        if mount.key in packages:
            raise PackageError(
                f"two model folders are named {mount.name.without_digest().short}",
                hint="give each --model-dir its own NAME=",
            )
        packages[mount.key] = load_mounted_package(mount)
    return packages
