"""NVML through ctypes, run as a child process: ``python -m ingot.daemon.hardware.nvml LIBRARY``.

``nvmlInit`` can hang for a long time on a wedged driver, and a ctypes call
cannot be interrupted, so the parent runs this module under a timeout and reads
one JSON object from stdout:

- ``{"status": "ok", "driver": "...", "devices": [{index, uuid, name, total, free, used, compute_capability,
  utilization, temperature, power_mw, power_limit_mw, processes: [{pid, used}]}]}`` -- the telemetry
  fields are None when the device does not support them (NVML_ERROR_NOT_SUPPORTED on many boards)
- ``{"status": "missing", "message": ...}`` when the library is not installed (no NVIDIA driver: not a problem)
- ``{"status": "error", "message": ...}`` when NVML is there but failed (reported, then nvidia-smi is tried)
"""

from __future__ import annotations

import ctypes
import json
import sys
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_TEMPERATURE_GPU = 0
# NVML reports a process whose memory it cannot see (no permission, WDDM) with this value.
NVML_VALUE_NOT_AVAILABLE = 2**64 - 1
_MAX_PROCESSES = 64
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


class _NvmlUtilization(ctypes.Structure):
    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]


class _NvmlProcessInfo(ctypes.Structure):
    # nvmlProcessInfo_t of the _v2/_v3 entry points (nvml.h since driver 510).
    _fields_ = [
        ("pid", ctypes.c_uint),
        ("usedGpuMemory", ctypes.c_ulonglong),
        ("gpuInstanceId", ctypes.c_uint),
        ("computeInstanceId", ctypes.c_uint),
    ]


class _NvmlProcessInfoV1(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong)]


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
    uint_p = ctypes.POINTER(ctypes.c_uint)
    # Telemetry: optional, since old or stripped-down libraries may lack some of them.
    optional: dict[str, list[Any]] = {
        "nvmlDeviceGetUtilizationRates": [ctypes.c_void_p, ctypes.POINTER(_NvmlUtilization)],
        "nvmlDeviceGetTemperature": [ctypes.c_void_p, ctypes.c_int, uint_p],
        "nvmlDeviceGetPowerUsage": [ctypes.c_void_p, uint_p],
        "nvmlDeviceGetEnforcedPowerLimit": [ctypes.c_void_p, uint_p],
        "nvmlDeviceGetComputeRunningProcesses_v3": [ctypes.c_void_p, uint_p, ctypes.POINTER(_NvmlProcessInfo)],
        "nvmlDeviceGetComputeRunningProcesses_v2": [ctypes.c_void_p, uint_p, ctypes.POINTER(_NvmlProcessInfo)],
        "nvmlDeviceGetComputeRunningProcesses": [ctypes.c_void_p, uint_p, ctypes.POINTER(_NvmlProcessInfoV1)],
    }
    for name, argtypes in optional.items():
        function = getattr(lib, name, None)
        if function is not None:
            function.argtypes = argtypes
            function.restype = ctypes.c_int


def _optional_uint(lib: ctypes.CDLL, name: str, handle: ctypes.c_void_p, *args: Any) -> int | None:
    """One ``unsigned int`` reading, None when the library lacks the call or the board does not support it."""
    function = getattr(lib, name, None)
    if function is None:
        return None
    value = ctypes.c_uint(0)
    if function(handle, *args, ctypes.byref(value)) != NVML_SUCCESS:
        return None
    return value.value


def _telemetry(lib: ctypes.CDLL, handle: ctypes.c_void_p) -> dict[str, Any]:
    utilization: int | None = None
    rates = getattr(lib, "nvmlDeviceGetUtilizationRates", None)
    if rates is not None:
        reading = _NvmlUtilization()
        if rates(handle, ctypes.byref(reading)) == NVML_SUCCESS:
            utilization = reading.gpu
    return {
        "utilization": utilization,
        "temperature": _optional_uint(lib, "nvmlDeviceGetTemperature", handle, NVML_TEMPERATURE_GPU),
        "power_mw": _optional_uint(lib, "nvmlDeviceGetPowerUsage", handle),
        "power_limit_mw": _optional_uint(lib, "nvmlDeviceGetEnforcedPowerLimit", handle),
        "processes": _processes(lib, handle),
    }


def _processes(lib: ctypes.CDLL, handle: ctypes.c_void_p) -> list[dict[str, Any]] | None:
    """Compute processes on the device and their memory (the newest entry point the library has)."""
    for name, kind in (
        ("nvmlDeviceGetComputeRunningProcesses_v3", _NvmlProcessInfo),
        ("nvmlDeviceGetComputeRunningProcesses_v2", _NvmlProcessInfo),
        ("nvmlDeviceGetComputeRunningProcesses", _NvmlProcessInfoV1),
    ):
        function = getattr(lib, name, None)
        if function is None:
            continue
        count = ctypes.c_uint(_MAX_PROCESSES)
        infos = (kind * _MAX_PROCESSES)()
        if function(handle, ctypes.byref(count), infos) != NVML_SUCCESS:
            return None  # INSUFFICIENT_SIZE (over 64 processes) or not supported: unknown, not empty
        return [
            {
                "pid": infos[i].pid,
                "used": None if infos[i].usedGpuMemory == NVML_VALUE_NOT_AVAILABLE else infos[i].usedGpuMemory,
            }
            for i in range(count.value)
        ]
    return None


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
                    **_telemetry(lib, handle),
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
