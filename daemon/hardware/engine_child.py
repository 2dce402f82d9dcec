"""Engine capability probe, run as a child: ``python -m ingot.daemon.hardware.engine_child``.

Importing ``llama_cpp`` loads the native library (and, for GPU builds, the CUDA
/ ROCm / Metal runtimes), which can be slow or abort the process; the parent
runs this under a timeout and reads one JSON object from the last stdout line:
``{"gpu_offload": bool, "devices": [{name, description, kind, backend, free, total}]}``
or ``{"error": "..."}``.

Device enumeration uses ggml's backend registry (``ggml_backend_dev_*``), bound
here with explicit argtypes/restype: llama-cpp-python does not bind them.
"""

from __future__ import annotations

import ctypes
import json
import sys
from typing import Any

# enum ggml_backend_dev_type in ggml-backend.h (vendored llama.cpp of llama-cpp-python 0.3.x).
_DEVICE_KINDS = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}


def _ggml_library() -> ctypes.CDLL:
    """The shared library holding the ggml backend registry."""
    try:
        from llama_cpp import _ggml

        return _ggml.libggml
    except (ImportError, OSError, AttributeError):
        # Older wheels have no _ggml module; libllama links ggml, so its handle resolves the symbols.
        from llama_cpp import llama_cpp as bindings

        return bindings._lib


def _bind(lib: ctypes.CDLL) -> None:
    void_p = ctypes.c_void_p
    size_p = ctypes.POINTER(ctypes.c_size_t)
    signatures: dict[str, tuple[list[Any], Any]] = {
        "ggml_backend_dev_count": ([], ctypes.c_size_t),
        "ggml_backend_dev_get": ([ctypes.c_size_t], void_p),
        "ggml_backend_dev_name": ([void_p], ctypes.c_char_p),
        "ggml_backend_dev_description": ([void_p], ctypes.c_char_p),
        "ggml_backend_dev_type": ([void_p], ctypes.c_int),
        "ggml_backend_dev_memory": ([void_p, size_p, size_p], None),
        "ggml_backend_dev_backend_reg": ([void_p], void_p),
        "ggml_backend_reg_name": ([void_p], ctypes.c_char_p),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype


def probe() -> dict[str, Any]:
    try:
        import llama_cpp
    except Exception as exc:  # noqa: BLE001 - any import failure means "engine unusable", reported as text
        return {"error": f"cannot import llama_cpp: {type(exc).__name__}: {exc}"}
    result: dict[str, Any] = {"gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()), "devices": []}
    try:
        lib = _ggml_library()
        _bind(lib)
    except (AttributeError, OSError) as exc:
        result["error"] = f"ggml backend registry unavailable: {exc}"
        return result
    if lib.ggml_backend_dev_count() == 0 and hasattr(lib, "ggml_backend_load_all"):
        # Builds with dynamically loaded backends (GGML_BACKEND_DL) register nothing until asked.
        lib.ggml_backend_load_all.argtypes = []
        lib.ggml_backend_load_all.restype = None
        lib.ggml_backend_load_all()
    for index in range(lib.ggml_backend_dev_count()):
        device = lib.ggml_backend_dev_get(index)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
        registry = lib.ggml_backend_dev_backend_reg(device)
        registry_name = lib.ggml_backend_reg_name(registry) if registry else b""
        result["devices"].append(
            {
                "name": (lib.ggml_backend_dev_name(device) or b"").decode("utf-8", "replace"),
                "description": (lib.ggml_backend_dev_description(device) or b"").decode("utf-8", "replace"),
                "kind": _DEVICE_KINDS.get(lib.ggml_backend_dev_type(device), "unknown"),
                "backend": (registry_name or b"").decode("utf-8", "replace"),
                "free": free.value,
                "total": total.value,
            }
        )
    return result


def main() -> int:
    print(json.dumps(probe()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
