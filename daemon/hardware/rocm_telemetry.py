"""AMD readings: the amdgpu sysfs files of each card detection matched, ``rocm-smi --json`` as the fallback.

Per card (``/sys/class/drm/cardN/device``): ``gpu_busy_percent``, ``mem_info_vram_used`` /
``_total`` (bytes), and its hwmon folder: ``temp1_input`` (the edge sensor, millidegrees),
``power1_average`` (µW; kernels from 6.x on RDNA3 and newer name it ``power1_input``) and
``power1_cap`` (µW). Processes come from KFD: ``/sys/class/kfd/kfd/proc/PID/vram_GPUID`` holds
the VRAM bytes process PID has on the card whose topology node has that ``gpu_id``; reading
them needs no root. rocm-smi's JSON keys changed between ROCm releases, so several are tried.
"""

from __future__ import annotations

from .readings import DeviceProcess, DeviceReading
from .rocm import AmdGPU, parse_rocm_smi_json, read_int, sysfs_gpus
from .sources import ProbeError, ProbeSources

__all__ = ["read_rocm", "readings_from_rocm_smi"]

KFD_PROCESSES = "/sys/class/kfd/kfd/proc"
_UTILIZATION_KEYS = ("GPU use (%)", "GPU Utilization (%)")
_TEMPERATURE_KEYS = ("Temperature (Sensor edge) (C)", "Temperature (Sensor junction) (C)")
_POWER_KEYS = ("Average Graphics Package Power (W)", "Current Socket Graphics Package Power (W)")


def read_rocm(sources: ProbeSources) -> tuple[list[DeviceReading], str | None, list[str]]:
    problems: list[str] = []
    gpus = sysfs_gpus(sources, problems)
    if gpus:
        processes = _kfd_processes(sources)
        return [_from_card(gpu, processes) for gpu in gpus], "sysfs", problems
    smi = sources.which("rocm-smi")
    if smi is None:
        return [], None, problems
    try:
        text = sources.run(
            [smi, "--showuse", "--showtemp", "--showpower", "--showmeminfo", "vram", "--showuniqueid", "--json"]
        )
        return readings_from_rocm_smi(text), "rocm-smi", problems
    except ProbeError as exc:
        problems.append(f"rocm-smi telemetry: {exc}")
        return [], None, problems


def _from_card(gpu: AmdGPU, processes: dict[int, list[DeviceProcess]]) -> DeviceReading:
    card = gpu.card
    if card is None:
        return DeviceReading(uuid=gpu.uuid, memory_total_bytes=gpu.total_bytes)
    busy = read_int(card / "gpu_busy_percent")
    hwmon = next(iter(sorted(card.glob("hwmon/hwmon*"))), None)
    temperature = power = cap = None
    if hwmon is not None:
        millidegrees = read_int(hwmon / "temp1_input")
        temperature = None if millidegrees is None else millidegrees / 1000
        microwatts = read_int(hwmon / "power1_average")
        if microwatts is None:
            microwatts = read_int(hwmon / "power1_input")
        power = None if microwatts is None else microwatts / 1e6
        cap_microwatts = read_int(hwmon / "power1_cap")
        cap = None if cap_microwatts is None else cap_microwatts / 1e6
    return DeviceReading(
        uuid=gpu.uuid,
        utilization=None if busy is None else busy / 100,
        memory_used_bytes=read_int(card / "mem_info_vram_used"),
        memory_total_bytes=read_int(card / "mem_info_vram_total"),
        temperature_celsius=temperature,
        power_watts=power,
        power_limit_watts=cap,
        processes=tuple(processes.get(gpu.gpu_id, ())) if gpu.gpu_id is not None else None,
    )


def _kfd_processes(sources: ProbeSources) -> dict[int, list[DeviceProcess]]:
    """KFD's per-process VRAM use, by gpu_id."""
    by_gpu: dict[int, list[DeviceProcess]] = {}
    for folder in sources.glob(f"{KFD_PROCESSES}/*"):
        if not folder.name.isdigit():
            continue
        for entry in sorted(folder.glob("vram_*")):
            gpu_id = entry.name.removeprefix("vram_")
            used = read_int(entry)
            if gpu_id.isdigit():
                by_gpu.setdefault(int(gpu_id), []).append(DeviceProcess(pid=int(folder.name), used_bytes=used))
    return by_gpu


def readings_from_rocm_smi(text: str) -> list[DeviceReading]:
    """``rocm-smi --showuse --showtemp --showpower --showmeminfo vram --showuniqueid --json``, in card order."""
    readings = []
    for values in parse_rocm_smi_json(text).values():
        unique = (values.get("Unique ID") or "").strip().lower().removeprefix("0x")
        utilization = _first_number(values, _UTILIZATION_KEYS)
        used = _first_number(values, ("VRAM Total Used Memory (B)",))
        total = _first_number(values, ("VRAM Total Memory (B)",))
        readings.append(
            DeviceReading(
                uuid=f"GPU-{int(unique, 16):016x}" if _is_hex(unique) else None,
                utilization=None if utilization is None else utilization / 100,
                memory_used_bytes=None if used is None else int(used),
                memory_total_bytes=None if total is None else int(total),
                temperature_celsius=_first_number(values, _TEMPERATURE_KEYS),
                power_watts=_first_number(values, _POWER_KEYS),
            )
        )
    return readings


def _first_number(values: dict[str, str], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        try:
            return float(values[key])
        except (KeyError, ValueError):
            continue
    return None


def _is_hex(text: str) -> bool:
    try:
        return bool(text) and int(text, 16) > 0
    except ValueError:
        return False
