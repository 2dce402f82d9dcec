"""Every media type and annotation key ingot reads or writes, in one place.

OCI and CNCF ModelPack names are the standard ones; `application/vnd.ingot.*`
media types and `io.ingot.*` annotation keys are ingot's own and documented in
docs/package-format.md.
"""

from __future__ import annotations

# --- OCI image spec ---------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYOUT_VERSION = "1.0.0"
OCI_EMPTY_JSON = "application/vnd.oci.empty.v1+json"
# Docker schema 2, read only (a pulled Ollama/Docker package may use them).
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

# --- CNCF ModelPack (github.com/modelpack/model-spec, v1) --------------------
MODEL_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG = "application/vnd.cncf.model.config.v1+json"
MODEL_WEIGHT_RAW = "application/vnd.cncf.model.weight.v1.raw"
MODEL_DOC_RAW = "application/vnd.cncf.model.doc.v1.raw"
# Tokenizer and chat-template files travel as weight.config layers (chat_template.jinja, tokenizer_config.json).
MODEL_WEIGHT_CONFIG_RAW = "application/vnd.cncf.model.weight.config.v1.raw"

# --- ingot's own -------------------------------------------------------------
# The Modelfile's runtime meaning (template, system, parameters, messages,
# adapter and license references, canonical Modelfile text) as canonical JSON.
INGOT_MODELFILE = "application/vnd.ingot.modelfile.v1+json"
# A LoRA adapter GGUF. Not a ModelPack weight on purpose: a ModelPack consumer
# that only knows weights must never mistake an adapter for the base model.
INGOT_ADAPTER = "application/vnd.ingot.adapter.v1.raw"

# --- annotation keys ---------------------------------------------------------
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_VERSION = "org.opencontainers.image.version"
ANNOTATION_REVISION = "org.opencontainers.image.revision"
ANNOTATION_SOURCE = "org.opencontainers.image.source"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_FILEPATH = "org.cncf.model.filepath"
# Set by ingot on index.json entries only (never inside a package): when the
# tag was last written, for `ingot list`'s MODIFIED column.
ANNOTATION_TAGGED_AT = "io.ingot.tagged-at"

__all__ = [name for name in dir() if name.isupper()]
