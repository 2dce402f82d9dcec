"""Package formats from other tools -> ingot packages, on pull.

Recognized, by artifactType, then config media type, then layer media types:

- `ingot` / `modelpack`: artifactType `application/vnd.cncf.model.manifest.v1+json`
  or config `application/vnd.cncf.model.config.v1+json`; stored as is (exactly
  one raw GGUF weight layer required);
- `ollama`: layers `application/vnd.ollama.image.*`; converted;
- `docker-model-runner`: config `application/vnd.docker.ai.model.config.*` or
  layers `application/vnd.docker.ai.*`; converted.

Conversion keeps the GGUF blob byte for byte (same digest) and rebuilds the
Modelfile's meaning from the other layers, then writes a regular ingot package
with `package.build_package`, so `ingot show` and the daemon read it like any
other:

- Ollama: `model` -> weights; `template` -> TEMPLATE (Ollama's templates are Go
  templates, like ingot's); `system` -> SYSTEM; `params` (JSON) -> PARAMETERs;
  `messages` (JSON list of `{role, content}`) -> MESSAGEs; `license` ->
  LICENSE; `adapter` -> ADAPTER.
- Docker Model Runner: `gguf.v3` -> weights; `license` -> LICENSE;
  `chat.template.jinja` -> TEMPLATE (a Jinja template; Docker Model Runner
  prefers it to the GGUF's, and so does ingot); `config.context_size` -> `num_ctx`.

What cannot be carried over (a projector for images, deprecated Ollama
parameters) is dropped and listed in `Conversion.notes`. Anything else is refused with `UnsupportedFormatError`
naming the media types found.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingot.modelfile import Message, Modelfile, ParameterError, coerce_parameter
from ingot.modelfile.model import MESSAGE_ROLES
from ingot.registry import mediatypes as mt
from ingot.registry.digest import digest_bytes
from ingot.registry.errors import PackageError
from ingot.registry.gguf_info import GGUFError, inspect_gguf
from ingot.registry.oci.errors import ManifestRejectedError, UnsupportedFormatError
from ingot.registry.package import TEMPLATE_FROM_PACKAGE, build_package, load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Descriptor, Store

__all__ = [
    "ANNOTATION_CONVERTED_FROM",
    "Conversion",
    "FORMAT_DOCKER_MODEL_RUNNER",
    "FORMAT_INGOT",
    "FORMAT_MODELPACK",
    "FORMAT_OLLAMA",
    "materialize",
    "plan_conversion",
]

FORMAT_INGOT = "ingot"
FORMAT_MODELPACK = "modelpack"
FORMAT_OLLAMA = "ollama"
FORMAT_DOCKER_MODEL_RUNNER = "docker-model-runner"

# On a converted package's manifest: "<format> <registry reference>@<original manifest digest>".
ANNOTATION_CONVERTED_FROM = "io.ingot.converted-from"

# --- Ollama (github.com/ollama/ollama, server/images.go) ---------------------
OLLAMA_PREFIX = "application/vnd.ollama.image."
OLLAMA_MODEL = OLLAMA_PREFIX + "model"
OLLAMA_TEMPLATE = OLLAMA_PREFIX + "template"
OLLAMA_SYSTEM = OLLAMA_PREFIX + "system"
OLLAMA_PARAMS = OLLAMA_PREFIX + "params"
OLLAMA_MESSAGES = OLLAMA_PREFIX + "messages"
OLLAMA_LICENSE = OLLAMA_PREFIX + "license"
OLLAMA_ADAPTER = OLLAMA_PREFIX + "adapter"
OLLAMA_PROJECTOR = OLLAMA_PREFIX + "projector"
OLLAMA_CONFIG = "application/vnd.docker.container.image.v1+json"

# --- Docker Model Runner (github.com/docker/model-spec) ----------------------
DOCKER_AI_PREFIX = "application/vnd.docker.ai."
DOCKER_AI_CONFIG_PREFIX = DOCKER_AI_PREFIX + "model.config."
DOCKER_AI_GGUF = DOCKER_AI_PREFIX + "gguf.v3"
DOCKER_AI_LORA = DOCKER_AI_PREFIX + "gguf.v3.lora"
DOCKER_AI_LICENSE = DOCKER_AI_PREFIX + "license"
DOCKER_AI_TEMPLATE = DOCKER_AI_PREFIX + "chat.template.jinja"

# Small JSON/text layers are read into memory; anything bigger is not a template.
_MAX_TEXT_LAYER = 4 * 1024 * 1024


@dataclass(frozen=True)
class Conversion:
    """How a pulled manifest becomes an ingot package; decided before any blob is downloaded."""

    format: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def foreign(self) -> bool:
        return self.format not in (FORMAT_INGOT, FORMAT_MODELPACK)


def _unsupported(source: str, config: Descriptor, layers: Sequence[Descriptor], artifact_type: str | None,
                 why: str) -> UnsupportedFormatError:
    found = ([f"artifactType {artifact_type}"] if artifact_type else []) + [f"config {config.media_type}"]
    found += sorted({f"layer {layer.media_type}" for layer in layers})
    return UnsupportedFormatError(
        f"{source}: {why}; media types found: {', '.join(found)}",
        hint="ingot runs ingot/ModelPack, Ollama and Docker Model Runner packages holding one GGUF file",
    )


def _count(layers: Sequence[Descriptor], media_type: str) -> int:
    return sum(1 for layer in layers if layer.media_type == media_type)


def plan_conversion(
    config: Descriptor, layers: Sequence[Descriptor], artifact_type: str | None, *, source: str
) -> Conversion:
    """Recognize the format of a manifest; raise UnsupportedFormatError when ingot cannot run it."""
    layers = tuple(layers)
    types = [layer.media_type for layer in layers]
    if artifact_type == mt.MODEL_ARTIFACT or config.media_type == mt.MODEL_CONFIG:
        weights = _count(layers, mt.MODEL_WEIGHT_RAW)
        if weights != 1:
            why = f"a ModelPack package with {weights} raw weight layers ({mt.MODEL_WEIGHT_RAW})"
            raise _unsupported(source, config, layers, artifact_type, why + "; ingot runs exactly one GGUF file")
        fmt = FORMAT_INGOT if mt.INGOT_MODELFILE in types else FORMAT_MODELPACK
        return Conversion(fmt, config, layers)
    if any(t.startswith(OLLAMA_PREFIX) for t in types):
        models = _count(layers, OLLAMA_MODEL)
        if models != 1:
            raise _unsupported(source, config, layers, artifact_type,
                               f"an Ollama package with {models} model layers ({OLLAMA_MODEL})")
        notes = []
        if OLLAMA_PROJECTOR in types:
            notes.append("dropped the Ollama projector layer: ingot does not run multimodal projectors")
        known = {OLLAMA_MODEL, OLLAMA_TEMPLATE, OLLAMA_SYSTEM, OLLAMA_PARAMS, OLLAMA_MESSAGES, OLLAMA_LICENSE,
                 OLLAMA_ADAPTER, OLLAMA_PROJECTOR}
        for other in sorted(set(types) - known):
            notes.append(f"dropped a layer of unknown type {other}")
        return Conversion(FORMAT_OLLAMA, config, layers, tuple(notes))
    if config.media_type.startswith(DOCKER_AI_CONFIG_PREFIX) or any(t.startswith(DOCKER_AI_PREFIX) for t in types):
        ggufs = _count(layers, DOCKER_AI_GGUF)
        if ggufs != 1:
            why = f"a Docker Model Runner package with {ggufs} GGUF layers ({DOCKER_AI_GGUF})"
            raise _unsupported(source, config, layers, artifact_type,
                               why + ("; sharded models are not supported" if ggufs > 1 else ""))
        known = {DOCKER_AI_GGUF, DOCKER_AI_LORA, DOCKER_AI_LICENSE, DOCKER_AI_TEMPLATE}
        notes = [f"dropped a layer of type {other}: ingot does not use it" for other in sorted(set(types) - known)]
        return Conversion(FORMAT_DOCKER_MODEL_RUNNER, config, layers, tuple(notes))
    raise _unsupported(source, config, layers, artifact_type, "not a model package ingot knows")


def materialize(
    store: Store, plan: Conversion, manifest_raw: bytes, *, ref: Reference, tag: bool, source: str
) -> tuple[Descriptor, tuple[str, ...]]:
    """Put the pulled package into the store (converted when foreign); return (manifest descriptor, notes).

    Every blob the plan names must already be in the store. A native package
    is tagged `ref` only when `tag`; a converted one is always tagged `ref`
    (it has a new digest, so a tag is how it is found).
    """
    if not plan.foreign:
        return _store_native(store, plan, manifest_raw, ref=ref, tag=tag, source=source), plan.notes
    if plan.format == FORMAT_OLLAMA:
        modelfile, notes = _ollama_modelfile(store, plan, source)
        template_source = None
    else:
        modelfile, notes = _docker_modelfile(store, plan, source)
        template_source = TEMPLATE_FROM_PACKAGE
    annotations = {ANNOTATION_CONVERTED_FROM: f"{plan.format} {ref.without_digest()}@{digest_bytes(manifest_raw)}"}
    store.ingest_bytes(manifest_raw)  # the original, for provenance; gc removes it with the package
    descriptor = build_package(store, modelfile, store.root, ref=ref.without_digest(), annotations=annotations,
                               template_source=template_source)
    return descriptor, plan.notes + notes


def _store_native(store: Store, plan: Conversion, raw: bytes, *, ref: Reference, tag: bool, source: str) -> Descriptor:
    document = json.loads(raw)
    media_type = document.get("mediaType") or mt.OCI_MANIFEST
    artifact_type = document.get("artifactType") if isinstance(document.get("artifactType"), str) else None
    stored = store.ingest_bytes(raw, media_type=media_type)
    descriptor = Descriptor(media_type, stored.digest, stored.size, {}, artifact_type)
    try:
        package = load_package(store, ref.without_digest().with_digest(stored.digest))
    except PackageError as exc:
        raise ManifestRejectedError(f"{source}: the package is malformed: {exc}",
                                    hint="nothing was tagged; push a package built by `ingot create`") from None
    _check_weights(package.weights, source)
    if tag:
        store.tag(ref.without_digest(), descriptor)
    return descriptor


def _check_weights(weights: Path, source: str) -> None:
    """The gate `create` applies, on pull: weights llama.cpp must not see are refused before the tag moves."""
    try:
        inspect_gguf(weights)
    except GGUFError as exc:
        raise ManifestRejectedError(
            f"{source}: the weights layer sha256:{weights.name} is not a usable GGUF file: {exc.message}",
            hint="nothing was tagged; ingot runs packages whose weight layer is one GGUF file (not a tar, "
                 "not another format)",
        ) from None


def _layers_of(plan: Conversion, media_type: str) -> list[Descriptor]:
    return [layer for layer in plan.layers if layer.media_type == media_type]


def _text(store: Store, layer: Descriptor, source: str) -> str:
    if layer.size > _MAX_TEXT_LAYER:
        raise ManifestRejectedError(f"{source}: the {layer.media_type} layer is {layer.size} bytes; "
                                    f"a text layer over {_MAX_TEXT_LAYER} bytes is not plausible")
    return store.read_blob(layer.digest).decode("utf-8", errors="replace")


def _json(store: Store, layer: Descriptor, source: str) -> Any:
    try:
        return json.loads(_text(store, layer, source))
    except ValueError as exc:
        raise ManifestRejectedError(f"{source}: the {layer.media_type} layer is not valid JSON: {exc}") from None


def _parameters(raw: object, source: str, notes: list[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ManifestRejectedError(f"{source}: the {OLLAMA_PARAMS} layer is not a JSON object")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            out[str(name)] = coerce_parameter(str(name), value)
        except ParameterError as exc:
            notes.append(f"dropped parameter {name!r}: {exc}")
    return out


def _messages(raw: object, source: str) -> tuple[Message, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ManifestRejectedError(f"{source}: the {OLLAMA_MESSAGES} layer is not a JSON list")
    out = []
    for item in raw:
        valid = isinstance(item, dict) and item.get("role") in MESSAGE_ROLES and isinstance(item.get("content"), str)
        if not valid:
            raise ManifestRejectedError(
                f"{source}: the {OLLAMA_MESSAGES} layer holds an entry that is not "
                f"{{role: {'|'.join(MESSAGE_ROLES)}, content: text}}: {str(item)[:120]}"
            )
        out.append(Message(item["role"], item["content"]))
    return tuple(out)


def _blob_path(store: Store, layer: Descriptor) -> str:
    return str(store.verified_blob_path(layer.digest, layer.size))


def _single(plan: Conversion, media_type: str, source: str) -> Descriptor | None:
    found = _layers_of(plan, media_type)
    if len(found) > 1:
        raise ManifestRejectedError(f"{source}: {len(found)} layers of type {media_type}; at most one is allowed")
    return found[0] if found else None


def _ollama_modelfile(store: Store, plan: Conversion, source: str) -> tuple[Modelfile, tuple[str, ...]]:
    notes: list[str] = []
    (model,) = _layers_of(plan, OLLAMA_MODEL)
    _check_weights(Path(_blob_path(store, model)), source)
    template = _single(plan, OLLAMA_TEMPLATE, source)
    system = _single(plan, OLLAMA_SYSTEM, source)
    params = _single(plan, OLLAMA_PARAMS, source)
    messages = _single(plan, OLLAMA_MESSAGES, source)
    modelfile = Modelfile(
        base=_blob_path(store, model),
        parameters=_parameters(_json(store, params, source) if params else None, source, notes),
        template=_text(store, template, source) if template else None,
        system=_text(store, system, source) if system else None,
        adapters=tuple(_blob_path(store, a) for a in _layers_of(plan, OLLAMA_ADAPTER)),
        licenses=tuple(_text(store, lic, source) for lic in _layers_of(plan, OLLAMA_LICENSE)),
        messages=_messages(_json(store, messages, source) if messages else None, source),
    )
    return modelfile, tuple(notes)


def _docker_modelfile(store: Store, plan: Conversion, source: str) -> tuple[Modelfile, tuple[str, ...]]:
    notes: list[str] = []
    (weights,) = _layers_of(plan, DOCKER_AI_GGUF)
    weights_path = _blob_path(store, weights)
    _check_weights(Path(weights_path), source)
    parameters: dict[str, Any] = {}
    config = _json(store, plan.config, source) if plan.config.media_type.startswith(DOCKER_AI_CONFIG_PREFIX) else {}
    model_config = config.get("config") if isinstance(config, dict) else None
    context = model_config.get("context_size") if isinstance(model_config, dict) else None
    if context is not None:
        try:
            parameters["num_ctx"] = coerce_parameter("num_ctx", context)
        except ParameterError as exc:
            notes.append(f"dropped context_size {context!r}: {exc}")
    # Docker Model Runner renders with this layer whatever the GGUF carries, so ingot does too.
    template = _single(plan, DOCKER_AI_TEMPLATE, source)
    modelfile = Modelfile(
        base=weights_path,
        parameters=parameters,
        template=_text(store, template, source) if template is not None else None,
        adapters=tuple(_blob_path(store, a) for a in _layers_of(plan, DOCKER_AI_LORA)),
        licenses=tuple(_text(store, lic, source) for lic in _layers_of(plan, DOCKER_AI_LICENSE)),
    )
    return modelfile, tuple(notes)
