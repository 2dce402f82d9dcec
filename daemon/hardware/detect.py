"""``detect_hardware``: run every probe once, collect what they found and what went wrong.

The environment is read once, here, into ``ProbeSources`` and handed down; no
probe consults ``os.environ`` itself. A probe that raises, fails or times out
becomes a line in ``HardwareReport.problems`` and detection carries on.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, TypeVar

from .cpu import detect_cpu
from .engine import DEFAULT_ENGINE_TIMEOUT_S, installed_engine_version, missing_backend_message, probe_engine
from .metal import detect_metal
from .nvidia import detect_nvidia
from .report import GPU_BACKENDS, CPUInfo, EngineSupport, GPUDevice, HardwareReport
from .rocm import detect_rocm
from .sources import DEFAULT_TIMEOUT_S, ProbeSources

T = TypeVar("T")


def detect_hardware(
    env: Mapping[str, str] = os.environ,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    engine: EngineSupport | None = None,
    probe_engine_support: bool = True,
    engine_timeout_s: float = DEFAULT_ENGINE_TIMEOUT_S,
) -> HardwareReport:
    """Detect CPU, RAM, GPUs and engine support.

    ``env`` supplies every injectable source (see ``sources``); ``engine`` skips
    the engine probe with a known answer, and ``probe_engine_support=False``
    skips it with "not probed".
    """
    sources = ProbeSources.from_env(env, timeout_s=timeout_s)
    problems: list[str] = []
    notes: list[str] = []

    cpu_result = _guarded("CPU", lambda: detect_cpu(sources), problems)
    if cpu_result is None:
        cpu = CPUInfo(
            model="unknown CPU",
            physical_cores=1,
            logical_cores=1,
            usable_cores=1,
            ram_total_bytes=0,
            ram_available_bytes=0,
        )
    else:
        cpu, cpu_problems = cpu_result
        problems.extend(cpu_problems)

    gpus: list[GPUDevice] = []
    nvidia = _guarded("NVIDIA", lambda: detect_nvidia(sources), problems)
    if nvidia is not None:
        gpus.extend(nvidia.devices)
        problems.extend(nvidia.problems)
    rocm = _guarded("AMD ROCm", lambda: detect_rocm(sources), problems)
    if rocm is not None:
        gpus.extend(rocm.devices)
        problems.extend(rocm.problems)
    metal = _guarded("Metal", lambda: detect_metal(sources), problems)
    if metal is not None:
        gpus.extend(metal.devices)
        problems.extend(metal.problems)
        notes.extend(metal.notes)

    known = engine is not None or probe_engine_support
    if engine is None:
        if probe_engine_support:
            engine = probe_engine(env=sources.env, timeout_s=engine_timeout_s)
        else:
            version = installed_engine_version()
            engine = EngineSupport(
                installed=version is not None, version=version, gpu_offload=False, error="engine not probed"
            )
    if known and engine.error:
        problems.append(f"engine: {engine.error}")
    if known and engine.installed:
        for backend in GPU_BACKENDS:
            count = sum(1 for g in gpus if g.backend == backend)
            if count and not engine.can_offload_to(backend):
                problems.append(missing_backend_message(backend, count, engine))

    return HardwareReport(cpu=cpu, gpus=tuple(gpus), engine=engine, problems=tuple(problems), notes=tuple(notes))


def _guarded(name: str, probe: Callable[[], T], problems: list[str]) -> T | None:
    """Run one probe; an unexpected exception is a reported problem, not a crash."""
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - detection must survive any single probe
        problems.append(f"{name} probe failed: {type(exc).__name__}: {exc}")
        return None
