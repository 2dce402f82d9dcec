"""What the installed llama-cpp-python can do, asked of a child process, and how to fix a CPU-only build.

The child (``engine_child``) imports the engine and lists ggml's backend devices;
a hang or crash there is reported in ``EngineSupport.error`` and never takes
the caller down.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from typing import Mapping

from .report import EngineDevice, EngineSupport
from .sources import run_bounded

ENGINE_DISTRIBUTION = "llama-cpp-python"
DEFAULT_ENGINE_TIMEOUT_S = 30.0
# CMake switch that builds ggml with each GPU backend.
_CMAKE_FLAGS = {"cuda": "-DGGML_CUDA=on", "rocm": "-DGGML_HIP=on", "metal": "-DGGML_METAL=on"}
_BACKEND_TITLES = {"cuda": "CUDA", "rocm": "ROCm", "metal": "Metal"}


def installed_engine_version() -> str | None:
    try:
        return metadata.version(ENGINE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def rebuild_command(backend: str, version: str | None) -> str:
    """The pip command that rebuilds llama-cpp-python with ``backend`` support, pinned to ``version``."""
    requirement = f"{ENGINE_DISTRIBUTION}=={version}" if version else ENGINE_DISTRIBUTION
    return f'CMAKE_ARGS="{_CMAKE_FLAGS[backend]}" pip install --force-reinstall --no-cache-dir {requirement}'


def missing_backend_message(backend: str, device_count: int, engine: EngineSupport) -> str:
    title = _BACKEND_TITLES[backend]
    what = f"{device_count} {title} GPU{'s' if device_count != 1 else ''}"
    build = f"llama-cpp-python {engine.version}" if engine.version else "llama-cpp-python"
    return (
        f"found {what}, but the installed {build} was built without {title} support, so models run on the CPU; "
        f"rebuild it with: {rebuild_command(backend, engine.version)}"
    )


def probe_engine(
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_ENGINE_TIMEOUT_S,
    python: str | None = None,
) -> EngineSupport:
    """Run the engine probe in a child process (``python`` defaults to this interpreter)."""
    version = installed_engine_version()
    if version is None:
        return EngineSupport(
            installed=False,
            version=None,
            gpu_offload=False,
            error=f"{ENGINE_DISTRIBUTION} is not installed (pip install {ENGINE_DISTRIBUTION})",
        )
    argv = [python or sys.executable, "-m", "ingot.daemon.hardware.engine_child"]
    try:
        done = run_bounded(argv, timeout_s=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return EngineSupport(
            installed=True,
            version=version,
            gpu_offload=False,
            error=f"engine probe did not finish within {timeout_s:g} s",
        )
    except OSError as exc:
        return EngineSupport(installed=True, version=version, gpu_offload=False, error=f"engine probe: {exc}")
    answer = _last_json_line(done.stdout)
    if answer is None:
        reason = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exited {done.returncode}"
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return EngineSupport(
            installed=True,
            version=version,
            gpu_offload=False,
            error=f"engine probe {reason}: {tail}",
        )
    devices = tuple(
        EngineDevice(
            name=str(d.get("name", "")),
            description=str(d.get("description", "")),
            kind=str(d.get("kind", "unknown")),
            backend=str(d.get("backend", "")),
            free_bytes=int(d.get("free", 0)),
            total_bytes=int(d.get("total", 0)),
        )
        for d in answer.get("devices", [])
    )
    error = answer.get("error")
    return EngineSupport(
        installed="gpu_offload" in answer,
        version=version,
        gpu_offload=bool(answer.get("gpu_offload", False)),
        devices=devices,
        error=str(error) if error else None,
    )


def _last_json_line(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None
