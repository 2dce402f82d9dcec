"""NVIDIA GPUs: NVML first (in a child process), ``nvidia-smi`` on PATH as the fallback.

Both list devices in PCI bus order. CUDA numbers them the same way only when
``CUDA_DEVICE_ORDER=PCI_BUS_ID``; its default order is "fastest first", which
differs on mixed-model boxes, so detection warns in that one case.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .report import GPUDevice
from .sources import ProbeError, ProbeSources, run_bounded
from .visibility import select_visible

MIB = 1024 * 1024
SMI_FIELDS = ("index", "uuid", "name", "memory.total", "memory.free", "memory.used", "compute_cap", "driver_version")


@dataclass(frozen=True)
class PhysicalGPU:
    """A card as NVML / nvidia-smi list it, before visibility filtering."""

    bus_index: int
    uuid: str | None
    name: str
    total_bytes: int | None
    free_bytes: int | None
    compute_capability: str | None
    driver: str | None


@dataclass(frozen=True)
class NvidiaResult:
    devices: tuple[GPUDevice, ...]
    problems: tuple[str, ...]
    source: str | None  # "nvml" | "nvidia-smi" | None when nothing answered


def detect_nvidia(sources: ProbeSources) -> NvidiaResult:
    problems: list[str] = []
    physical: list[PhysicalGPU] | None = None
    source = None
    if sources.nvml_library:
        try:
            physical = _from_nvml(sources)
            source = "nvml" if physical is not None else None
        except ProbeError as exc:
            problems.append(f"NVML: {exc}")
    if physical is None:
        smi = sources.which("nvidia-smi")
        if smi:
            try:
                physical = _from_nvidia_smi(sources, smi)
                source = "nvidia-smi"
            except ProbeError as exc:
                problems.append(f"nvidia-smi: {exc}")
    if not physical:
        return NvidiaResult((), tuple(problems), source)
    for gpu in physical:
        if gpu.total_bytes is None:
            problems.append(
                f"NVIDIA GPU {gpu.bus_index} ({gpu.name}) does not report its memory; it is not planned for"
            )
    devices, visibility_problems = _apply_visibility(physical, sources)
    problems.extend(visibility_problems)
    return NvidiaResult(devices, tuple(problems), source)


def _from_nvml(sources: ProbeSources) -> list[PhysicalGPU] | None:
    """GPUs from NVML, None when the library is absent (a machine without the NVIDIA driver)."""
    answer = nvml_answer(sources)
    if answer is None:
        return None
    driver = answer.get("driver")
    return [
        PhysicalGPU(
            bus_index=int(d["index"]),
            uuid=d.get("uuid"),
            name=str(d["name"]),
            total_bytes=int(d["total"]),
            free_bytes=int(d["free"]),
            compute_capability=d.get("compute_capability"),
            driver=driver,
        )
        for d in answer.get("devices", [])
    ]


def nvml_answer(sources: ProbeSources) -> dict[str, Any] | None:
    """The NVML child's answer (see ``nvml``), None when the library is absent; ProbeError when it failed."""
    assert sources.nvml_library is not None
    argv = [sys.executable, "-m", "ingot.daemon.hardware.nvml", sources.nvml_library]
    try:
        done = run_bounded(argv, timeout_s=sources.timeout_s, env=sources.env or None)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"did not answer within {sources.timeout_s:g} s (driver busy or wedged?)") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProbeError(f"probe process exited with status {done.returncode}: {tail}")
    if answer.get("status") == "missing":
        return None
    if answer.get("status") != "ok":
        raise ProbeError(str(answer.get("message", "unknown failure")))
    return answer


def _from_nvidia_smi(sources: ProbeSources, smi: str) -> list[PhysicalGPU]:
    fields = list(SMI_FIELDS)
    try:
        output = sources.run([smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"])
    except ProbeError as exc:
        # Drivers older than 510 do not know the compute_cap field and refuse the whole query.
        if "compute_cap" not in str(exc):
            raise
        fields.remove("compute_cap")
        output = sources.run([smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"])
    return parse_nvidia_smi_csv(output, fields=tuple(fields))


def parse_nvidia_smi_csv(text: str, *, fields: tuple[str, ...] = SMI_FIELDS) -> list[PhysicalGPU]:
    """Parse ``nvidia-smi --query-gpu=... --format=csv,noheader,nounits`` (memory in MiB)."""
    gpus = []
    for row_number, row in enumerate(csv.reader(io.StringIO(text), skipinitialspace=True), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(fields):
            raise ProbeError(f"line {row_number} has {len(row)} fields, expected {len(fields)}: {','.join(row)!r}")
        values = dict(zip(fields, (cell.strip() for cell in row)))
        index = int_or_none(values["index"])
        if index is None:
            raise ProbeError(f"line {row_number}: GPU index {values['index']!r} is not a number")
        total = int_or_none(values["memory.total"])
        free = int_or_none(values["memory.free"])
        used = int_or_none(values["memory.used"])
        if free is None and total is not None and used is not None:
            free = total - used
        gpus.append(
            PhysicalGPU(
                bus_index=index,
                uuid=text_or_none(values["uuid"]),
                name=values["name"],
                total_bytes=None if total is None else total * MIB,
                free_bytes=None if free is None else free * MIB,
                compute_capability=text_or_none(values.get("compute_cap", "")),
                driver=text_or_none(values["driver_version"]),
            )
        )
    return gpus


def _apply_visibility(physical: list[PhysicalGPU], sources: ProbeSources) -> tuple[tuple[GPUDevice, ...], list[str]]:
    problems: list[str] = []
    spec = sources.env.get("CUDA_VISIBLE_DEVICES")
    selection = select_visible(physical, spec, lambda g: g.uuid)
    if selection.stopped_at is not None:
        problems.append(
            f"CUDA_VISIBLE_DEVICES={spec!r}: entry {selection.stopped_at!r} matches no single GPU, "
            "so it and every entry after it are ignored (CUDA does the same)"
        )
    visible = [physical[p] for p in selection.positions]
    names = {g.name for g in physical}
    if len(names) > 1 and sources.env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        problems.append(
            "GPUs of different models: CUDA numbers them fastest-first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, "
            "so indices here (PCI order) may name other cards in CUDA_VISIBLE_DEVICES, main_gpu and tensor_split; "
            "set CUDA_DEVICE_ORDER=PCI_BUS_ID"
        )
    devices = tuple(
        GPUDevice(
            index=ordinal,
            backend="cuda",
            name=gpu.name,
            total_bytes=gpu.total_bytes or 0,
            free_bytes=gpu.free_bytes or 0,
            compute_capability=gpu.compute_capability,
            driver=gpu.driver,
            uuid=gpu.uuid,
        )
        for ordinal, gpu in enumerate(visible)
    )
    return devices, problems


def int_or_none(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None  # "[N/A]", "[Not Supported]", "[Unknown Error]"


def text_or_none(text: str) -> str | None:
    text = text.strip()
    return None if not text or text.startswith("[") else text
