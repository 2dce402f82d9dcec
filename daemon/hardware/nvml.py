"""NVML through ctypes, run as a child process: ``python -m ingot.daemon.hardware.nvml LIBRARY``.

``nvmlInit`` can hang for a long time on a wedged driver, and a ctypes call
cannot be interrupted, so the parent runs this module under a timeout and reads
one JSON object from stdout:

- ``{"status": "ok", "driver": "...", "devices": [{index, uuid, name, total, free, used, compute_capability}]}``
- ``{"status": "missing", "message": ...}`` when the library is not installed (no NVIDIA driver: not a problem)
- ``{"status": "error", "message": ...}`` when NVML is there but failed (reported, then nvidia-smi is tried)
"""

from __future__ import annotations

import ctypes
import json
import sys
from typing import Any

NVML_SUCCESS = 0
# Buffer sizes from nvml.h (the _V2 sizes are the larger, current ones).
_NAME_BUFFER = 96
_UUID_BUFFER = 96
_DRIVER_BUFFER = 80


class _NvmlMemory(ctypes.Structure):
    _fields_ = [
        ("total", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]


class NvmlError(Exception):
    pass


def _bind(lib: ctypes.CDLL) -> None:
    handle_p = ctypes.POINTER(ctypes.c_void_p)
    signatures: dict[str, tuple[list[Any], Any]] = {
        "nvmlInit_v2": ([], ctypes.c_int),
        "nvmlShutdown": ([], ctypes.c_int),
        "nvmlErrorString": ([ctypes.c_int], ctypes.c_char_p),
        "nvmlSystemGetDriverVersion": ([ctypes.c_char_p, ctypes.c_uint], ctypes.c_int),
        "nvmlDeviceGetCount_v2": ([ctypes.POINTER(ctypes.c_uint)], ctypes.c_int),
        "nvmlDeviceGetHandleByIndex_v2": ([ctypes.c_uint, handle_p], ctypes.c_int),
        "nvmlDeviceGetName": ([ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint], ctypes.c_int),
        "nvmlDeviceGetUUID": ([ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint], ctypes.c_int),
        "nvmlDeviceGetMemoryInfo": ([ctypes.c_void_p, ctypes.POINTER(_NvmlMemory)], ctypes.c_int),
        "nvmlDeviceGetCudaComputeCapability": (
            [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)],
            ctypes.c_int,
        ),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype


def _check(lib: ctypes.CDLL, code: int, what: str) -> None:
    if code != NVML_SUCCESS:
        message = lib.nvmlErrorString(code)
        text = message.decode("utf-8", "replace") if message else f"error {code}"
        raise NvmlError(f"{what} failed: {text} (NVML error {code})")


def query(library: str) -> dict[str, Any]:
    """Everything NVML knows about the installed GPUs, in NVML (PCI bus) order."""
    try:
        lib = ctypes.CDLL(library)
    except OSError as exc:
        return {"status": "missing", "message": f"cannot load {library}: {exc}"}
    try:
        _bind(lib)
    except AttributeError as exc:
        return {"status": "error", "message": f"{library} lacks an NVML function: {exc}"}
    try:
        _check(lib, lib.nvmlInit_v2(), "nvmlInit_v2")
    except NvmlError as exc:
        return {"status": "error", "message": str(exc)}
    try:
        driver = ctypes.create_string_buffer(_DRIVER_BUFFER)
        _check(lib, lib.nvmlSystemGetDriverVersion(driver, _DRIVER_BUFFER), "nvmlSystemGetDriverVersion")
        count = ctypes.c_uint(0)
        _check(lib, lib.nvmlDeviceGetCount_v2(ctypes.byref(count)), "nvmlDeviceGetCount_v2")
        devices = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            _check(lib, lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)), "nvmlDeviceGetHandleByIndex_v2")
            name = ctypes.create_string_buffer(_NAME_BUFFER)
            _check(lib, lib.nvmlDeviceGetName(handle, name, _NAME_BUFFER), "nvmlDeviceGetName")
            uuid = ctypes.create_string_buffer(_UUID_BUFFER)
            _check(lib, lib.nvmlDeviceGetUUID(handle, uuid, _UUID_BUFFER), "nvmlDeviceGetUUID")
            memory = _NvmlMemory()
            _check(lib, lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory)), "nvmlDeviceGetMemoryInfo")
            major, minor = ctypes.c_int(0), ctypes.c_int(0)
            capability: str | None = None
            if lib.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor)) == NVML_SUCCESS:
                capability = f"{major.value}.{minor.value}"
            devices.append(
                {
                    "index": index,
                    "uuid": uuid.value.decode("utf-8", "replace"),
                    "name": name.value.decode("utf-8", "replace"),
                    "total": memory.total,
                    "free": memory.free,
                    "used": memory.used,
                    "compute_capability": capability,
                }
            )
        return {"status": "ok", "driver": driver.value.decode("utf-8", "replace"), "devices": devices}
    except NvmlError as exc:
        return {"status": "error", "message": str(exc)}
    finally:
        lib.nvmlShutdown()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(json.dumps({"status": "error", "message": "usage: python -m ingot.daemon.hardware.nvml LIBRARY"}))
        return 2
    print(json.dumps(query(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
