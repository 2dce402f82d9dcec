"""ingot.registry: model references, GGUF files, the local store, packages, transfers.

Modules (import them directly; this package only re-exports the main names):

| module | job |
|---|---|
| `reference` | `Reference`: `[host[:port]/][namespace/]name[:tag][@sha256:...]` |
| `digest` | sha256 validation and streaming hashing; `Progress` events |
| `home` | `$INGOT_HOME` and the paths in it; `$INGOT_REGISTRY` |
| `store` | the local OCI image layout: blobs, `BlobWriter`, tags, gc |
| `locks` | flock-based inter-process locks |
| `mediatypes` | every media type and annotation key |
| `package` | `build_package` / `load_package` (ModelPack manifests) |
| `mounted` | packages mounted as folders (Kubernetes image volumes), served without copying |
| `errors` | the `IngotError` tree |
| `gguf_info`, `synthetic`, `quantize`, `oci/` | GGUF inspection, test models, quantization, push/pull |

Re-exported names are resolved on first use (PEP 562), so importing one light
module (say `ingot.registry.reference`) never loads numpy through `package`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Reference": "reference",
    "Descriptor": "store",
    "Store": "store",
    "TagEntry": "store",
    "BlobWriter": "store",
    "IngotHome": "home",
    "Progress": "digest",
    "Package": "package",
    "build_package": "package",
    "load_package": "package",
    "IngotError": "errors",
    "ReferenceError": "errors",
    "ModelNotFoundError": "errors",
    "PackageError": "errors",
    "StoreError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ingot.registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ingot.registry.{module}"), name)
