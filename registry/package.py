"""Packages: a Modelfile and its files -> an OCI manifest, config and layers (`build_package`), and back (`load_package`).

The format (docs/package-format.md) is an OCI image manifest v1.1 following
CNCF ModelPack:

- artifactType `application/vnd.cncf.model.manifest.v1+json`;
- config `application/vnd.cncf.model.config.v1+json` (ModelPack schema:
  descriptor, config with format "gguf", modelfs.diffIds);
- layers, in this order: the GGUF weights (`...model.weight.v1.raw`,
  filepath `model.gguf`), LoRA adapters (`application/vnd.ingot.adapter.v1.raw`,
  `adapters/adapter-N.gguf`), licenses (`...model.doc.v1.raw`, `LICENSE`,
  `LICENSE-2`...), and the Modelfile's runtime meaning
  (`application/vnd.ingot.modelfile.v1+json`, `ingot-modelfile.json`).

Reproducible: every JSON document is canonical (sorted keys, no whitespace),
no path of the build machine and no clock reading enters the package, except
`org.opencontainers.image.created` when SOURCE_DATE_EPOCH is set. The same
inputs give the same manifest digest on any machine, any day, under any name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from ingot.modelfile import Modelfile, format_modelfile
from ingot.modelfile.model import Message, SourceLocation
from ingot.modelfile.template.check import compile_modelfile_template
from ingot.registry import mediatypes as mt
from ingot.registry.digest import Progress, ProgressCallback
from ingot.registry.errors import ModelNotFoundError, PackageError, ReferenceError, StoreError
from ingot.registry.gguf_info import GGUFInfo, inspect_gguf
from ingot.registry.reference import Reference
from ingot.registry.store import Descriptor, Store

__all__ = [
    "WEIGHTS_FILEPATH",
    "GGUFSource",
    "Package",
    "build_package",
    "canonical_json",
    "format_param_size",
    "layer_annotations",
    "load_package",
    "model_config",
    "package_from_runtime",
    "resolve_from",
]

WEIGHTS_FILEPATH = "model.gguf"
MODELFILE_FILEPATH = "ingot-modelfile.json"
ADAPTERS_FOLDER = "adapters"
RUNTIME_SCHEMA_VERSION = 1
SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"

TEMPLATE_FROM_MODELFILE = "modelfile"
TEMPLATE_FROM_GGUF = "gguf"
TEMPLATE_NONE = "none"
# A chat template that came with a pulled package (Docker Model Runner's chat.template.jinja layer,
# a ModelPack package's chat_template.jinja), kept as the package's TEMPLATE.
TEMPLATE_FROM_PACKAGE = "package"

# Manifest annotations that also have a home in the ModelPack config descriptor.
_DESCRIPTOR_FIELDS = {
    mt.ANNOTATION_VERSION: "version",
    mt.ANNOTATION_REVISION: "revision",
    mt.ANNOTATION_SOURCE: "sourceURL",
    mt.ANNOTATION_CREATED: "createdAt",
}
_PRECISIONS = {"F32": "fp32", "ALL_F32": "fp32", "F16": "fp16", "MOSTLY_F16": "fp16", "BF16": "bf16", "MOSTLY_BF16": "bf16"}


def canonical_json(value: Any) -> bytes:
    """The one byte string a JSON value is stored as: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def format_param_size(count: int) -> str:
    """ModelPack `paramSize`: a count with at most one decimal and a scale letter (`6.7B`, `125M`, `0.5K`)."""
    for scale, letter in ((10**15, "Q"), (10**12, "T"), (10**9, "B"), (10**6, "M")):
        if count >= scale:
            break
    else:
        scale, letter = 10**3, "K"
    value = f"{count / scale:.1f}".removesuffix(".0")
    return f"{value}{letter}"


@dataclass(frozen=True)
class Package:
    """A package read back from the store, with everything a runner needs.

    `modelfile` carries the full runtime meaning (its `base` is the package's
    own short name, `adapters` the adapter blob paths, `licenses` the texts);
    `weights` is the GGUF blob itself.
    """

    reference: Reference
    digest: str
    manifest: Mapping[str, Any]
    config: Mapping[str, Any]
    weights: Path
    adapters: tuple[Path, ...]
    modelfile: Modelfile
    licenses: tuple[str, ...]
    size: int
    template_source: str = TEMPLATE_NONE

    @property
    def weights_digest(self) -> str:
        return _weights_layer(self.manifest, self.digest).digest


# ---------------------------------------------------------------------------
# FROM resolution


@dataclass(frozen=True)
class GGUFSource:
    """FROM resolved to a GGUF file on disk, already inspected."""

    path: Path
    info: GGUFInfo


def _resolve_path(raw: str, modelfile_dir: Path) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else modelfile_dir / path


def _single_gguf(folder: Path, what: str) -> Path:
    found = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    if len(found) == 1:
        return folder / found[0]
    if not found:
        raise PackageError(f"{what} folder {folder} holds no .gguf file", hint="point it at a GGUF file")
    raise PackageError(
        f"{what} folder {folder} holds {len(found)} GGUF files: {', '.join(found)}",
        hint="name the one to use, e.g. " + str(folder / found[0]),
    )


def _is_explicit_path(raw: str) -> bool:
    # What can only be a path, never a model name: Ollama's rule, minus its name lookup.
    return raw.startswith(("./", "../", "/", "~")) or raw in (".", "..")


def _looks_like_path(raw: str) -> bool:
    return raw.startswith((".", "/", "~")) or raw.lower().endswith(".gguf")


def resolve_from(
    store: Store, base: str, modelfile_dir: Path, *, location: SourceLocation | None = None
) -> GGUFSource | Package:
    """What FROM names: a GGUF file (or a folder holding exactly one), else a model in the store.

    Paths: absolute, `~` expanded, else relative to the Modelfile's folder. A
    value starting with `./`, `../`, `/` or `~` is a path and nothing else: if
    it does not exist the error names `location` (file:line:col) and the
    resolved path. A corrupt GGUF raises GGUFError here, before anything is stored.
    """
    if not base:
        raise PackageError("FROM is empty", hint="write FROM <path to a .gguf> or FROM <model name>")
    path = _resolve_path(base, modelfile_dir)
    if path.exists():
        if path.is_dir():
            path = _single_gguf(path, "FROM")
        return GGUFSource(path, inspect_gguf(path))
    if _is_explicit_path(base):
        where = f"{location}: " if location is not None else ""
        relative = not Path(base).expanduser().is_absolute()
        raise PackageError(
            f"{where}FROM {base}: no such file: {os.path.normpath(path)}",
            hint="relative paths are resolved against the Modelfile's folder" if relative else "fix the path",
        )
    try:
        ref = Reference.parse(base)
    except ReferenceError:
        ref = None
    if ref is not None and store.resolve(ref) is not None:
        return load_package(store, ref)
    if ref is not None and not ref.is_local:
        hint = f"pull it first: ingot pull {base}"
    else:
        hint = "create it with `ingot create` or pull it with `ingot pull`"
    if _looks_like_path(base) or ref is None:
        hint += f" (no file at {path})"
    raise PackageError(f"no such file or model '{base}'", hint=hint)


# ---------------------------------------------------------------------------
# build


def adapter_filepath(number: int) -> str:
    """Where the `number`-th adapter (from 1) goes when a package is extracted."""
    return f"{ADAPTERS_FOLDER}/adapter-{number}.gguf"


def license_filepath(number: int) -> str:
    """Where the `number`-th license (from 1) goes when a package is extracted."""
    return "LICENSE" if number == 1 else f"LICENSE-{number}"


def layer_title(filepath: str) -> str:
    """The file name a layer gets in a mount: its filepath's last part (a mount is one flat folder)."""
    return filepath.rsplit("/", 1)[-1]


def layer_annotations(filepath: str) -> dict[str, str]:
    """A layer's annotations: its ModelPack filepath, and its file name for runtimes that mount it.

    CRI-O and podman mount each layer of an artifact as a file named by
    `org.opencontainers.image.title` (the ORAS convention), not by the
    ModelPack filepath; a Kubernetes image volume of a package needs both.
    """
    return {mt.ANNOTATION_FILEPATH: filepath, mt.ANNOTATION_TITLE: layer_title(filepath)}


def _relabel(progress: ProgressCallback | None, label: str) -> ProgressCallback | None:
    if progress is None:
        return None

    def report(event: Progress) -> None:
        progress(Progress(label, event.digest, event.total, event.completed))

    return report


def _check_adapter(path: Path) -> GGUFInfo:
    info = inspect_gguf(path)
    kind = info.metadata.get("general.type")
    if kind != "adapter":
        raise PackageError(
            f"ADAPTER {path} is not a LoRA adapter (its general.type is {kind!r})",
            hint="ADAPTER takes a GGUF LoRA adapter; the base model goes in FROM",
        )
    return info


def _source_date(env: Mapping[str, str]) -> str | None:
    raw = env.get(SOURCE_DATE_EPOCH)
    if raw is None or raw == "":
        return None
    try:
        seconds = int(raw)
    except ValueError:
        raise PackageError(f"SOURCE_DATE_EPOCH must be an integer number of seconds, got {raw!r}") from None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_config(info: GGUFInfo, annotations: Mapping[str, str], diff_ids: list[str]) -> dict[str, Any]:
    """The ModelPack config document of a package: the GGUF's facts, descriptor fields, the layers' diffIds."""
    descriptor: dict[str, Any] = {"family": info.architecture}
    if info.name:
        descriptor["name"] = info.name
    for key, field_name in _DESCRIPTOR_FIELDS.items():
        if annotations.get(key):
            descriptor[field_name] = annotations[key]
    config: dict[str, Any] = {"format": "gguf", "architecture": info.architecture}
    if info.parameter_count:
        config["paramSize"] = format_param_size(info.parameter_count)
    file_type = info.file_type or info.quantization
    if file_type:
        if file_type.upper() in _PRECISIONS:
            config["precision"] = _PRECISIONS[file_type.upper()]
        else:
            config["quantization"] = file_type
    return {"descriptor": descriptor, "config": config, "modelfs": {"type": "layers", "diffIds": diff_ids}}


def _runtime_document(
    merged: Modelfile,
    *,
    template_source: str,
    weights: Descriptor,
    adapters: list[Descriptor],
    licenses: list[Descriptor],
) -> dict[str, Any]:
    # The canonical Modelfile names the package's own files (as extracted by
    # filepath), so it is itself a valid Modelfile next to an extracted package.
    portable = dataclasses.replace(
        merged,
        base="./" + WEIGHTS_FILEPATH,
        adapters=tuple("./" + a.annotations[mt.ANNOTATION_FILEPATH] for a in adapters),
        warnings=(),
    )
    try:
        text = format_modelfile(portable)
    except ValueError as exc:
        raise PackageError(f"the Modelfile cannot be written back in Modelfile syntax: {exc}") from None
    return {
        "schemaVersion": RUNTIME_SCHEMA_VERSION,
        "weights": weights.digest,
        "template": merged.template,
        "templateSource": template_source,
        "system": merged.system,
        "parameters": {k: list(v) if isinstance(v, tuple) else v for k, v in merged.parameters.items()},
        "messages": [{"role": m.role, "content": m.content} for m in merged.messages],
        "adapters": [a.digest for a in adapters],
        "licenses": [d.digest for d in licenses],
        "requires": merged.requires,
        "modelfile": text,
    }


def _merge(child: Modelfile, parent: Modelfile | None) -> Modelfile:
    """The child's settings over the parent's; a list the child sets (stop, MESSAGE, LICENSE, ADAPTER) replaces."""
    if parent is None:
        return child
    return dataclasses.replace(
        child,
        parameters={**parent.parameters, **child.parameters},
        template=child.template if child.template is not None else parent.template,
        system=child.system if child.system is not None else parent.system,
        adapters=child.adapters or parent.adapters,
        licenses=child.licenses or parent.licenses,
        messages=child.messages or parent.messages,
        requires=child.requires if child.requires is not None else parent.requires,
    )


def build_package(
    store: Store,
    modelfile: Modelfile,
    modelfile_dir: str | Path,
    *,
    ref: Reference,
    quantize: str | None = None,
    annotations: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
    link: bool = True,
    env: Mapping[str, str] | None = None,
    template_source: str | None = None,
) -> Descriptor:
    """Build the package a Modelfile describes into `store`, tag it `ref`, and return its manifest descriptor.

    `annotations` are manifest annotations (org.opencontainers.image.version,
    revision, source...). `link=False` stores copies of the files instead of
    sharing their blocks. `env` (default os.environ) is read for SOURCE_DATE_EPOCH.
    `template_source` says where a TEMPLATE came from when it is not the
    Modelfile (TEMPLATE_FROM_PACKAGE for a converted package's own template).
    """
    env = os.environ if env is None else env
    # A TEMPLATE written in a Modelfile that does not compile fails here, at its place in the
    # file, before anything is written. One converted from a pulled package (no position) is
    # kept: pull reports it as a warning, since the package is still usable raw.
    if modelfile.template_location is not None:
        compile_modelfile_template(modelfile)
    modelfile_dir = Path(modelfile_dir).expanduser().absolute()
    manifest_annotations = {k: v for k, v in (annotations or {}).items() if v}
    created = _source_date(env)
    if created is not None:
        manifest_annotations[mt.ANNOTATION_CREATED] = created

    with store.writing():
        base = resolve_from(store, modelfile.base, modelfile_dir, location=modelfile.base_location)
        parent = base if isinstance(base, Package) else None
        adapter_paths = [_resolve_path(a, modelfile_dir) for a in modelfile.adapters]
        for adapter in adapter_paths:
            if not adapter.is_file():
                raise PackageError(f"no such ADAPTER file {adapter}", hint="ADAPTER takes a path to a GGUF LoRA adapter")
            _check_adapter(adapter)

        if quantize:
            source = base.weights if isinstance(base, Package) else base.path
            weights_desc, info = _quantized_weights(store, source, quantize, progress)
        elif isinstance(base, Package):
            info = inspect_gguf(base.weights)
            weights_desc = _weights_layer(base.manifest, base.digest)
        else:
            info = base.info
            label = f"adding {base.path.name}"
            weights_desc = store.ingest_file(base.path, link=link, progress=_relabel(progress, label))
        weights_desc = weights_desc.with_media_type(mt.MODEL_WEIGHT_RAW, layer_annotations(WEIGHTS_FILEPATH))

        merged = _merge(modelfile, parent.modelfile if parent is not None else None)
        if modelfile.adapters:
            adapter_descs = [
                store.ingest_file(a, link=link, progress=_relabel(progress, f"adding {a.name}")) for a in adapter_paths
            ]
        else:
            adapter_descs = _adapter_layers(parent.manifest, parent.digest) if parent is not None else []
        adapter_descs = [
            d.with_media_type(mt.INGOT_ADAPTER, layer_annotations(adapter_filepath(i)))
            for i, d in enumerate(adapter_descs, start=1)
        ]
        license_descs = [
            store.ingest_bytes(
                text.encode("utf-8"),
                media_type=mt.MODEL_DOC_RAW,
                annotations=layer_annotations(license_filepath(i)),
            )
            for i, text in enumerate(merged.licenses, start=1)
        ]
        if merged.template is not None:
            template_source = template_source or TEMPLATE_FROM_MODELFILE
        elif info.chat_template:
            template_source = TEMPLATE_FROM_GGUF
        else:
            template_source = TEMPLATE_NONE
        runtime = _runtime_document(
            merged,
            template_source=template_source,
            weights=weights_desc,
            adapters=adapter_descs,
            licenses=license_descs,
        )
        runtime_desc = store.ingest_bytes(
            canonical_json(runtime),
            media_type=mt.INGOT_MODELFILE,
            annotations=layer_annotations(MODELFILE_FILEPATH),
        )
        layers = [weights_desc, *adapter_descs, *license_descs, runtime_desc]
        config = model_config(info, manifest_annotations, [layer.digest for layer in layers])
        config_desc = store.ingest_bytes(canonical_json(config), media_type=mt.MODEL_CONFIG)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": mt.MODEL_ARTIFACT,
            "config": config_desc.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
        if manifest_annotations:
            manifest["annotations"] = dict(sorted(manifest_annotations.items()))
        manifest_desc = store.ingest_bytes(canonical_json(manifest), media_type=mt.OCI_MANIFEST)
        manifest_desc = Descriptor(
            mt.OCI_MANIFEST, manifest_desc.digest, manifest_desc.size, {}, mt.MODEL_ARTIFACT
        )
        store.tag(ref, manifest_desc)
    return manifest_desc


def _quantized_weights(
    store: Store, source: Path, quantize: str, progress: ProgressCallback | None
) -> tuple[Descriptor, GGUFInfo]:
    from ingot.registry.quantize import quantize_gguf

    total = source.stat().st_size
    label = f"quantizing to {quantize.upper()}"

    def on_fraction(fraction: float) -> None:
        if progress is not None:
            progress(Progress(label, None, total, int(total * fraction)))

    tmp = store.tmp_dir / f"quantize-{secrets.token_hex(8)}.gguf"
    try:
        quantize_gguf(source, tmp, quantize, progress=on_fraction)
        info = inspect_gguf(tmp)
        descriptor = store.ingest_file(tmp, move=True, progress=_relabel(progress, "adding quantized weights"))
    finally:
        tmp.unlink(missing_ok=True)
    return descriptor, info


# ---------------------------------------------------------------------------
# load


def _layers(manifest: Mapping[str, Any], digest: str) -> list[Descriptor]:
    raw = manifest.get("layers")
    if not isinstance(raw, list):
        raise PackageError(f"manifest {digest} has no layers list")
    try:
        return [Descriptor.from_json(layer) for layer in raw]
    except (StoreError, ValueError) as exc:
        raise PackageError(f"manifest {digest} has a malformed layer: {exc}") from None


def _weights_layer(manifest: Mapping[str, Any], digest: str) -> Descriptor:
    weights = [layer for layer in _layers(manifest, digest) if layer.media_type == mt.MODEL_WEIGHT_RAW]
    if len(weights) != 1:
        raise PackageError(
            f"package {digest} has {len(weights)} raw weight layers; ingot runs exactly one GGUF file",
            hint="package the model as a single GGUF",
        )
    return weights[0]


def _adapter_layers(manifest: Mapping[str, Any], digest: str) -> list[Descriptor]:
    return [layer for layer in _layers(manifest, digest) if layer.media_type == mt.INGOT_ADAPTER]


def _read_manifest(store: Store, ref: Reference) -> tuple[Descriptor, dict[str, Any]]:
    descriptor = store.resolve(ref)
    if descriptor is None:
        raise ModelNotFoundError(
            f"model '{ref.short}' not found", hint="create it with `ingot create` or pull it with `ingot pull`"
        )
    manifest = store.read_json(descriptor.digest)
    if not isinstance(manifest, dict) or manifest.get("mediaType", mt.OCI_MANIFEST) not in mt.MANIFEST_TYPES:
        raise PackageError(f"'{ref.short}' ({descriptor.digest}) is not an OCI image manifest")
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    if manifest.get("artifactType") != mt.MODEL_ARTIFACT and config_type != mt.MODEL_CONFIG:
        found = manifest.get("artifactType") or config_type
        raise PackageError(
            f"'{ref.short}' is not a model package (artifact type {found!r})",
            hint=f"ingot reads ModelPack artifacts ({mt.MODEL_ARTIFACT})",
        )
    return descriptor, manifest


def _parameters(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): tuple(v) if isinstance(v, list) else v for k, v in raw.items()}


# A chat template file is small; anything bigger is not one.
_MAX_TEMPLATE_FILE = 4 * 1024 * 1024


def _packaged_chat_template(store: Store, layers: list[Descriptor]) -> str | None:
    """The Jinja chat template a plain ModelPack package carries as a file, if any.

    Hugging Face repositories keep it in `chat_template.jinja` or as the
    `chat_template` string of `tokenizer_config.json`; the first wins, as in
    transformers.
    """
    by_name: dict[str, Descriptor] = {}
    for layer in layers:
        if layer.media_type in (mt.MODEL_WEIGHT_CONFIG_RAW, mt.MODEL_DOC_RAW) and layer.size <= _MAX_TEMPLATE_FILE:
            by_name.setdefault(PurePosixPath(layer.annotations.get(mt.ANNOTATION_FILEPATH, "")).name, layer)
    if "chat_template.jinja" in by_name:
        return store.read_blob(by_name["chat_template.jinja"].digest).decode("utf-8", errors="replace")
    if "tokenizer_config.json" in by_name:
        try:
            config = json.loads(store.read_blob(by_name["tokenizer_config.json"].digest))
        except ValueError:
            return None
        template = config.get("chat_template") if isinstance(config, dict) else None
        if isinstance(template, list):  # named templates: transformers uses "default"
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default")
        return template if isinstance(template, str) and template else None
    return None


def load_package(store: Store, ref: Reference) -> Package:
    """Read the package `ref` names, checking its blobs are present (and unmodified where hardlinked)."""
    descriptor, manifest = _read_manifest(store, ref)
    digest = descriptor.digest
    config_desc = Descriptor.from_json(manifest["config"])
    config = store.read_json(config_desc.digest)
    layers = _layers(manifest, digest)
    weights_desc = _weights_layer(manifest, digest)
    weights = store.verified_blob_path(weights_desc.digest, weights_desc.size)

    runtime_layers = [layer for layer in layers if layer.media_type == mt.INGOT_MODELFILE]
    runtime: dict[str, Any] = store.read_json(runtime_layers[0].digest) if runtime_layers else {}
    if not isinstance(runtime, dict):
        raise PackageError(f"package {digest}: the {mt.INGOT_MODELFILE} layer is not a JSON object")
    by_digest = {layer.digest: layer for layer in layers}
    adapter_digests = runtime.get("adapters")
    if not isinstance(adapter_digests, list):
        adapter_digests = [layer.digest for layer in _adapter_layers(manifest, digest)]
    license_digests = runtime.get("licenses")
    if not isinstance(license_digests, list):
        license_digests = [
            layer.digest
            for layer in layers
            if layer.media_type == mt.MODEL_DOC_RAW
            and layer.annotations.get(mt.ANNOTATION_FILEPATH, "").upper().startswith("LICENSE")
        ]
    for needed in [*adapter_digests, *license_digests]:
        if needed not in by_digest:
            raise PackageError(f"package {digest} refers to {needed}, which is not one of its layers")
    adapters = tuple(store.verified_blob_path(d, by_digest[d].size) for d in adapter_digests)
    licenses = tuple(store.read_blob(d).decode("utf-8", errors="replace") for d in license_digests)
    # A ModelPack or Docker Model Runner package without ingot's layer may carry its own chat template.
    packaged = None if runtime_layers else _packaged_chat_template(store, layers)
    return package_from_runtime(
        reference=ref,
        digest=digest,
        manifest=manifest,
        config=config if isinstance(config, dict) else {},
        weights=weights,
        runtime=runtime,
        adapters=adapters,
        licenses=licenses,
        size=descriptor.size + config_desc.size + sum(layer.size for layer in layers),
        packaged_template=packaged,
    )


def package_from_runtime(
    *,
    reference: Reference,
    digest: str,
    manifest: Mapping[str, Any],
    config: Mapping[str, Any],
    weights: Path,
    runtime: Mapping[str, Any],
    adapters: tuple[Path, ...],
    licenses: tuple[str, ...],
    size: int,
    packaged_template: str | None = None,
) -> Package:
    """A Package from its located files and its runtime document (the ingot-modelfile.json layer).

    `packaged_template` is the chat template layer of a package without ingot's runtime layer.
    Shared by packages in a store and packages mounted as folders (`ingot.registry.mounted`).
    """
    messages = tuple(
        Message(str(m.get("role", "")), str(m.get("content", "")))
        for m in runtime.get("messages") or []
        if isinstance(m, dict)
    )
    modelfile = Modelfile(
        base=reference.without_digest().short,
        parameters=_parameters(runtime.get("parameters")),
        template=runtime.get("template"),
        system=runtime.get("system"),
        adapters=tuple(str(p) for p in adapters),
        licenses=licenses,
        messages=messages,
        requires=runtime.get("requires"),
    )
    template_source = runtime.get("templateSource")
    if packaged_template is not None:
        modelfile = dataclasses.replace(modelfile, template=packaged_template)
        template_source = TEMPLATE_FROM_PACKAGE
    if template_source not in (TEMPLATE_FROM_MODELFILE, TEMPLATE_FROM_GGUF, TEMPLATE_FROM_PACKAGE, TEMPLATE_NONE):
        template_source = TEMPLATE_FROM_MODELFILE if modelfile.template is not None else TEMPLATE_NONE
    return Package(
        reference=reference,
        digest=digest,
        manifest=manifest,
        config=config,
        weights=weights,
        adapters=adapters,
        modelfile=modelfile,
        licenses=licenses,
        size=size,
        template_source=template_source,
    )
