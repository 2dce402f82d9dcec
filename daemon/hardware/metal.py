"""Apple Metal: unified memory, capped at the working set macOS lets the GPU wire.

llama.cpp (``ggml-metal``) and Ollama (``discover/gpu_darwin.go``) both size the
GPU by ``MTLDevice.recommendedMaxWorkingSetSize``. That number is not reachable
without Objective-C, so it is reconstructed from ``sysctl`` the way macOS
derives it:

- ``iogpu.wired_limit_mb`` (macOS 14+; ``debug.iogpu.wired_limit`` in bytes on
  macOS 13) when set to a non-zero value: the user's override, which Metal then
  reports as the working set;
- otherwise 2/3 of ``hw.memsize`` on machines with up to 36 GiB of RAM and 3/4
  above (reported values: 16 GiB → 10922.67 MiB, 32 GiB → 21845.34 MiB,
  64 GiB → 49152 MiB, 96 GiB → 73728 MiB). Newer macOS releases grant somewhat
  more on large machines; this estimate is the conservative side of that.

Intel Macs get no GPU: llama.cpp's Metal backend targets Apple silicon only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .report import GPUDevice
from .sources import ProbeError, ProbeSources

GIB = 1024**3
MIB = 1024**2
# At or below this much RAM macOS grants 2/3 of it to the GPU, above it 3/4.
SMALL_MAC_RAM = 36 * GIB


@dataclass(frozen=True)
class MetalResult:
    devices: tuple[GPUDevice, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]


def default_working_set(ram_bytes: int) -> int:
    """macOS's default ``recommendedMaxWorkingSetSize`` for a machine with ``ram_bytes`` of RAM."""
    if ram_bytes <= SMALL_MAC_RAM:
        return ram_bytes * 2 // 3
    return ram_bytes * 3 // 4


def is_apple_silicon(sources: ProbeSources) -> bool:
    return sources.system == "Darwin" and sources.machine in ("arm64", "aarch64")


def sysctl(sources: ProbeSources, key: str) -> str:
    """``sysctl -n KEY`` through the injected PATH (ProbeError when absent or failing)."""
    command = sources.which("sysctl")
    if command is None:
        raise ProbeError("sysctl is not on PATH")
    return sources.run([command, "-n", key]).strip()


def detect_metal(sources: ProbeSources) -> MetalResult:
    if sources.system != "Darwin":
        return MetalResult((), (), ())
    if not is_apple_silicon(sources):
        return MetalResult((), (), (f"Intel Mac ({sources.machine}): llama.cpp has no Metal offload here; CPU only",))
    try:
        ram = int(sysctl(sources, "hw.memsize"))
    except (ProbeError, ValueError) as exc:
        return MetalResult((), (f"Metal: cannot read hw.memsize: {exc}",), ())
    working_set, how = _working_set(sources, ram)
    try:
        name = sysctl(sources, "machdep.cpu.brand_string") or "Apple GPU"
    except ProbeError:
        name = "Apple GPU"
    try:
        driver: str | None = "macOS " + sysctl(sources, "kern.osproductversion")
    except ProbeError:
        driver = None
    device = GPUDevice(
        index=0,
        backend="metal",
        name=name,
        total_bytes=working_set,
        free_bytes=working_set,
        compute_capability=None,
        driver=driver,
        uuid=None,
    )
    return MetalResult((device,), (), (f"Metal working set {working_set / GIB:.2f} GiB ({how})",))


def _working_set(sources: ProbeSources, ram: int) -> tuple[int, str]:
    for key, scale in (("iogpu.wired_limit_mb", MIB), ("debug.iogpu.wired_limit", 1)):
        try:
            value = int(sysctl(sources, key))
        except (ProbeError, ValueError):
            continue  # the key does not exist on this macOS release
        if value > 0:
            return min(value * scale, ram), f"{key}={value} override"
    fraction = "2/3" if ram <= SMALL_MAC_RAM else "3/4"
    return default_working_set(ram), f"{fraction} of {ram / GIB:.0f} GiB RAM, the macOS default"
