"""Packages for the push/pull tests: ingot ones via `build_package`, foreign ones built from their public specs.

Foreign packages (Ollama, Docker Model Runner) are assembled blob by blob in a
local store exactly as those tools lay them out, so `push` sends them to the
registry as they would appear in the wild.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingot.modelfile import parse
from ingot.registry import mediatypes as mt
from ingot.registry.package import build_package
from ingot.registry.reference import Reference
from ingot.registry.store import Descriptor, Store

OLLAMA_CONFIG = "application/vnd.docker.container.image.v1+json"
OLLAMA = "application/vnd.ollama.image."
DMR_CONFIG = "application/vnd.docker.ai.model.config.v0.1+json"
DMR = "application/vnd.docker.ai."


@dataclass(frozen=True)
class Layer:
    media_type: str
    data: bytes | Path
    annotations: dict[str, str] | None = None


def gguf_weights(gguf: Path, size: int) -> bytes:
    """`gguf`'s bytes padded with random ones to `size`: weights that pass the GGUF check on pull, unique per call."""
    head = gguf.read_bytes()
    assert len(head) <= size, f"{gguf} is larger than {size} bytes"
    return head + os.urandom(size - len(head))


def ingot_package(store: Store, ref: Reference, gguf: Path, folder: Path, extra: str = "") -> Descriptor:
    """`ingot create` of a Modelfile FROM `gguf` with a system prompt, a parameter and `extra` lines."""
    text = f"FROM {gguf}\nSYSTEM You are a test.\nPARAMETER temperature 0.25\n{extra}"
    return build_package(store, parse(text), folder, ref=ref)


def raw_package(
    store: Store,
    ref: Reference,
    *,
    config_media_type: str,
    config: dict[str, Any] | bytes,
    layers: Sequence[Layer],
    manifest_media_type: str = mt.OCI_MANIFEST,
    artifact_type: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Descriptor:
    """A manifest assembled by hand from blobs, tagged `ref` in `store`."""
    config_bytes = config if isinstance(config, bytes) else json.dumps(config).encode()
    config_desc = store.ingest_bytes(config_bytes, media_type=config_media_type)
    descriptors = []
    for layer in layers:
        if isinstance(layer.data, Path):
            d = store.ingest_file(layer.data, link=False, media_type=layer.media_type,
                                  annotations=layer.annotations or {})
        else:
            d = store.ingest_bytes(layer.data, media_type=layer.media_type, annotations=layer.annotations or {})
        descriptors.append(d)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": manifest_media_type,
        "config": config_desc.to_json(),
        "layers": [d.to_json() for d in descriptors],
    }
    if artifact_type:
        manifest["artifactType"] = artifact_type
    manifest.update(extra or {})
    raw = json.dumps(manifest).encode()
    stored = store.ingest_bytes(raw, media_type=manifest_media_type)
    descriptor = Descriptor(manifest_media_type, stored.digest, stored.size, {}, artifact_type)
    store.tag(ref, descriptor)
    return descriptor


OLLAMA_TEMPLATE = b"{{ if .System }}<<SYS>>{{ .System }}<</SYS>>{{ end }}[INST] {{ .Prompt }} [/INST]"


def ollama_package(store: Store, ref: Reference, gguf: Path, *, params: dict[str, Any],
                   template: bytes = OLLAMA_TEMPLATE) -> Descriptor:
    """An Ollama package as `ollama push` lays it out (Docker schema 2, vnd.ollama.image.* layers)."""
    config = {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"], "model_type": "tiny",
              "file_type": "F32", "architecture": "amd64", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": []}}
    messages = [{"role": "user", "content": "Is this a test?"}, {"role": "assistant", "content": "Yes."}]
    return raw_package(
        store, ref,
        config_media_type=OLLAMA_CONFIG,
        config=config,
        manifest_media_type=mt.DOCKER_MANIFEST,
        layers=[
            Layer(OLLAMA + "model", gguf),
            Layer(OLLAMA + "template", template),
            Layer(OLLAMA + "system", b"You are an Ollama model."),
            Layer(OLLAMA + "params", json.dumps(params).encode()),
            Layer(OLLAMA + "messages", json.dumps(messages).encode()),
            Layer(OLLAMA + "license", b"Test License 1.0\n"),
        ],
    )


def docker_model_runner_package(
    store: Store, ref: Reference, gguf: Path, *, context_size: int, jinja: str
) -> Descriptor:
    """A Docker Model Runner package (docker/model-spec: config v0.1, gguf.v3, license, chat.template.jinja)."""
    config = {"config": {"format": "gguf", "quantization": "F32", "parameters": "1 M", "architecture": "llama",
                         "size": str(gguf.stat().st_size), "context_size": context_size},
              "descriptor": {"created": "2025-01-01T00:00:00Z"},
              "rootfs": {"type": "rootfs", "diff_ids": []}}
    return raw_package(
        store, ref,
        config_media_type=DMR_CONFIG,
        config=config,
        layers=[
            Layer(DMR + "gguf.v3", gguf),
            Layer(DMR + "license", b"DMR Test License\n"),
            Layer(DMR + "chat.template.jinja", jinja.encode()),
        ],
    )
