"""AMD GPUs: the amdgpu/KFD sysfs tree first, ``rocm-smi --showmeminfo vram --json`` as the fallback.

KFD topology nodes (``/sys/class/kfd/kfd/topology/nodes/N/properties``) list the
CPUs first and then the GPUs, in the order ROCm numbers them. A GPU node's
``gfx_target_version`` (e.g. ``110000`` → ``gfx1100``, ``90010`` → ``gfx90a``)
and ``simd_count`` describe it; its VRAM lives with the DRM driver, at
``/sys/class/drm/cardN/device/mem_info_vram_{total,used}``. A node is matched to
its DRM card by PCI vendor (0x1002), device and unique ids (decimal in the KFD
file, hex in the DRM files), with ``drm_render_minor`` breaking ties between
identical cards. Visibility: ``ROCR_VISIBLE_DEVICES`` (indices or UUIDs) is
applied first, then ``HIP_VISIBLE_DEVICES`` (or, when unset,
``CUDA_VISIBLE_DEVICES``, which HIP honours too) on what remains.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .report import GPUDevice
from .sources import ProbeError, ProbeSources
from .visibility import select_visible

AMD_VENDOR_ID = 0x1002
KFD_NODES = "/sys/class/kfd/kfd/topology/nodes"
_CARD_NAME = re.compile(r"card(\d+)$")


@dataclass(frozen=True)
class AmdGPU:
    """A card as KFD (or rocm-smi) lists it, before visibility filtering."""

    name: str
    gfx: str | None
    simd_count: int | None
    total_bytes: int | None
    used_bytes: int | None
    uuid: str | None
    driver: str | None
    card: Path | None = None  # /sys/class/drm/cardN/device, where the live readings are
    gpu_id: int | None = None  # KFD's id, naming the card in /sys/class/kfd/kfd/proc/PID/vram_GPUID


@dataclass(frozen=True)
class RocmResult:
    devices: tuple[GPUDevice, ...]
    problems: tuple[str, ...]
    source: str | None  # "sysfs" | "rocm-smi" | None


def detect_rocm(sources: ProbeSources) -> RocmResult:
    problems: list[str] = []
    physical = sysfs_gpus(sources, problems)
    source = "sysfs" if physical else None
    if not physical:
        smi = sources.which("rocm-smi")
        if smi:
            try:
                physical = rocm_smi_gpus(sources, smi)
                source = "rocm-smi"
            except ProbeError as exc:
                problems.append(f"rocm-smi: {exc}")
    if not physical:
        return RocmResult((), tuple(problems), source)
    devices = _apply_visibility(physical, sources, problems)
    return RocmResult(devices, tuple(problems), source)


def gfx_name(target_version: int) -> str:
    """KFD's decimal ``gfx_target_version`` → the gfx target name (90010 → gfx90a)."""
    major, minor, stepping = target_version // 10000, (target_version // 100) % 100, target_version % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def parse_kfd_properties(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return values


def sysfs_gpus(sources: ProbeSources, problems: list[str]) -> list[AmdGPU]:
    """AMD GPUs from the KFD topology, each matched to its DRM card, in ROCm's order."""
    node_dirs = [p for p in sources.glob(f"{KFD_NODES}/*") if p.name.isdigit()]
    node_dirs.sort(key=lambda p: int(p.name))
    cards = _amd_drm_cards(sources)
    driver = sources.read_text("/sys/module/amdgpu/version")
    driver = driver.strip() if driver and driver.strip() else None
    used_cards: set[Path] = set()
    gpus: list[AmdGPU] = []
    for node in node_dirs:
        try:
            text = (node / "properties").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        props = parse_kfd_properties(text)
        target = props.get("gfx_target_version", 0)
        if target == 0 or props.get("simd_count", 0) == 0:
            continue  # a CPU node
        vendor = props.get("vendor_id", AMD_VENDOR_ID)
        if vendor != AMD_VENDOR_ID:
            continue
        gfx = gfx_name(target)
        card = _match_card(props, cards, used_cards)
        total = used = None
        product = None
        if card is None:
            problems.append(f"AMD GPU (KFD node {node.name}, {gfx}) has no matching DRM card; its VRAM is unknown")
        else:
            used_cards.add(card)
            total = read_int(card / "mem_info_vram_total")
            used = read_int(card / "mem_info_vram_used")
            product = read_str(card / "product_name")
            if total is None:
                problems.append(f"AMD GPU {card.parent.name} ({gfx}) does not report mem_info_vram_total")
        unique = props.get("unique_id", 0)
        device_id = props.get("device_id", 0)
        name = product or f"AMD GPU {gfx} [{AMD_VENDOR_ID:04x}:{device_id:04x}]"
        gpus.append(
            AmdGPU(
                name=name,
                gfx=gfx,
                simd_count=props.get("simd_count"),
                total_bytes=total,
                used_bytes=used,
                uuid=f"GPU-{unique:016x}" if unique else None,
                driver=driver,
                card=card,
                gpu_id=read_int(node / "gpu_id"),
            )
        )
    return gpus


def _amd_drm_cards(sources: ProbeSources) -> list[Path]:
    """``/sys/class/drm/cardN/device`` folders of AMD devices, in card order."""
    found = []
    for device in sources.glob("/sys/class/drm/card*/device"):
        match = _CARD_NAME.match(device.parent.name)
        if not match:
            continue  # connector entries such as card0-DP-1
        if read_int(device / "vendor", base=16) == AMD_VENDOR_ID:
            found.append((int(match.group(1)), device))
    return [device for _, device in sorted(found)]


def _match_card(props: dict[str, int], cards: list[Path], used: set[Path]) -> Path | None:
    candidates = []
    for card in cards:
        if card in used:
            continue
        ok = True
        for prop, filename in (("vendor_id", "vendor"), ("device_id", "device"), ("unique_id", "unique_id")):
            wanted = props.get(prop, 0)
            if not wanted:
                continue  # unpopulated ids cannot be matched on
            have = read_int(card / filename, base=16)
            if have is None and prop == "unique_id":
                continue  # older kernels have no unique_id file
            if have != wanted:
                ok = False
                break
        if ok:
            candidates.append(card)
    minor = props.get("drm_render_minor")
    if minor is not None:
        for card in candidates:
            if (card / "drm" / f"renderD{minor}").exists():
                return card
    return candidates[0] if candidates else None


def rocm_smi_gpus(sources: ProbeSources, smi: str) -> list[AmdGPU]:
    memory = parse_rocm_smi_json(sources.run([smi, "--showmeminfo", "vram", "--json"]))
    names: dict[str, dict[str, str]] = {}
    try:
        names = parse_rocm_smi_json(sources.run([smi, "--showproductname", "--json"]))
    except ProbeError:
        pass  # names are cosmetic; memory is what planning needs
    gpus = []
    for card, values in memory.items():
        info = {k.lower(): v for k, v in names.get(card, {}).items()}
        series = info.get("card series") or info.get("card model") or ""
        gfx = info.get("gfx version") or None
        total = _int_or_none(values.get("VRAM Total Memory (B)"))
        used = _int_or_none(values.get("VRAM Total Used Memory (B)"))
        gpus.append(
            AmdGPU(
                name=series.strip() or f"AMD GPU {card}",
                gfx=gfx.strip() if gfx else None,
                simd_count=None,
                total_bytes=total,
                used_bytes=used,
                uuid=None,
                driver=None,
            )
        )
    return gpus


def parse_rocm_smi_json(text: str) -> dict[str, dict[str, str]]:
    """``{"card0": {...}, "card1": {...}}`` in card order; rocm-smi adds a "system" key on some versions."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProbeError(f"output is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ProbeError("output is not a JSON object")
    cards = {}
    for key, value in data.items():
        match = _CARD_NAME.match(key)
        if match and isinstance(value, dict):
            cards[key] = {str(k): str(v) for k, v in value.items()}
    return dict(sorted(cards.items(), key=lambda kv: int(kv[0][4:])))


def _apply_visibility(physical: list[AmdGPU], sources: ProbeSources, problems: list[str]) -> tuple[GPUDevice, ...]:
    visible = list(physical)
    hip_var = "HIP_VISIBLE_DEVICES" if "HIP_VISIBLE_DEVICES" in sources.env else "CUDA_VISIBLE_DEVICES"
    for variable in ("ROCR_VISIBLE_DEVICES", hip_var):
        spec = sources.env.get(variable)
        selection = select_visible(visible, spec, lambda g: g.uuid)
        if selection.stopped_at is not None:
            problems.append(
                f"{variable}={spec!r}: entry {selection.stopped_at!r} matches no single GPU, "
                "so it and every entry after it are ignored"
            )
        visible = [visible[p] for p in selection.positions]
    devices = []
    for ordinal, gpu in enumerate(visible):
        total = gpu.total_bytes or 0
        used = gpu.used_bytes or 0
        devices.append(
            GPUDevice(
                index=ordinal,
                backend="rocm",
                name=gpu.name,
                total_bytes=total,
                free_bytes=max(0, total - used),
                compute_capability=gpu.gfx,
                driver=gpu.driver,
                uuid=gpu.uuid,
            )
        )
    return tuple(devices)


def read_int(path: Path, *, base: int = 10) -> int | None:
    text = read_str(path)
    if text is None:
        return None
    try:
        return int(text, base)
    except ValueError:
        return None


def read_str(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text or None


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
