"""Apple Metal profiles (sysctl/vm_stat recordings) and CPU/RAM detection from recorded /proc and cgroup trees."""

from __future__ import annotations

import os

import pytest

from ingot.daemon.hardware import EngineDevice, EngineSupport, detect_hardware
from ingot.daemon.hardware.metal import default_working_set

from .conftest import CPU_ENGINE, DATA, FakeHost

GIB = 2**30
MIB = 2**20
MAC = DATA / "mac"
METAL_ENGINE = EngineSupport(
    installed=True,
    version="0.3.36",
    gpu_offload=True,
    devices=(EngineDevice("MTL0", "Apple M2 Max", "gpu", "MTL", 48 * GIB, 48 * GIB),),
)


def mac(host: FakeHost, profile: str, machine: str = "arm64") -> dict[str, str]:
    host.sysctl(MAC / profile)
    host.replay("vm_stat", MAC / "vm_stat.txt")
    host.platform = f"Darwin/{machine}"
    return host.env()


@pytest.mark.parametrize(
    ("ram_gib", "working_set_mib"),
    # Values Metal reported on real machines (llama.cpp's ggml_metal_init log lines).
    [(16, 10922.67), (32, 21845.34), (64, 49152.0), (96, 73728.0)],
)
def test_default_working_set_matches_reported_values(ram_gib: int, working_set_mib: float) -> None:
    assert default_working_set(ram_gib * GIB) / MIB == pytest.approx(working_set_mib, abs=0.01)


def test_apple_silicon_64g(host: FakeHost) -> None:
    report = detect_hardware(mac(host, "m2-max-64g.sysctl"), engine=METAL_ENGINE)
    [gpu] = report.gpus
    # 64 GiB is above 36 GiB, so macOS grants 3/4: 48 GiB.
    assert (gpu.backend, gpu.name, gpu.total_bytes, gpu.free_bytes) == ("metal", "Apple M2 Max", 48 * GIB, 48 * GIB)
    assert gpu.driver == "macOS 14.5"
    assert gpu.unified_memory
    assert report.cpu.physical_cores == report.cpu.logical_cores == 12
    assert report.cpu.ram_total_bytes == 64 * GIB
    # vm_stat: (free 412345 + inactive 1234567 + speculative 23456 + purgeable 12345) pages × 16 KiB.
    assert report.cpu.ram_available_bytes == (412345 + 1234567 + 23456 + 12345) * 16384
    assert report.problems == ()
    assert any("3/4 of 64 GiB" in n for n in report.notes)


def test_apple_silicon_16g_on_macos_13(host: FakeHost) -> None:
    report = detect_hardware(mac(host, "m1-16g.sysctl"), engine=METAL_ENGINE)
    # 16 GiB: 2/3 → 11453246122 bytes (10922.67 MiB); debug.iogpu.wired_limit=0 means "default".
    assert report.gpus[0].total_bytes == 16 * GIB * 2 // 3
    assert report.gpus[0].driver == "macOS 13.6.7"


def test_wired_limit_override(host: FakeHost) -> None:
    report = detect_hardware(mac(host, "m3-max-128g-wired-override.sysctl"), engine=METAL_ENGINE)
    assert report.gpus[0].total_bytes == 114688 * MIB  # iogpu.wired_limit_mb=114688 → 112 GiB
    assert any("iogpu.wired_limit_mb=114688 override" in n for n in report.notes)


def test_intel_mac_has_no_metal_offload(host: FakeHost) -> None:
    report = detect_hardware(mac(host, "intel-i9-32g.sysctl", machine="x86_64"), engine=CPU_ENGINE)
    assert report.gpus == ()
    assert any("Intel Mac" in n for n in report.notes)
    assert (report.cpu.physical_cores, report.cpu.logical_cores) == (8, 16)
    assert not any("rebuild" in p for p in report.problems)


def test_mac_without_sysctl_is_reported(host: FakeHost) -> None:
    host.platform = "Darwin/arm64"
    report = detect_hardware(host.env(), engine=METAL_ENGINE)
    assert report.gpus == ()
    assert any("Metal: cannot read hw.memsize" in p for p in report.problems)


def test_cpu_only_host_with_cgroup_v2_limits(host: FakeHost) -> None:
    report = detect_hardware(host.env(), engine=CPU_ENGINE)
    cpu = report.cpu
    assert report.gpus == ()
    assert cpu.model == "Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz"
    assert (cpu.physical_cores, cpu.logical_cores) == (4, 8)
    assert cpu.usable_cores == 6  # Cpus_allowed_list 0-5
    assert cpu.cpu_quota == 2.0  # cpu.max "200000 100000"
    assert cpu.usable_threads == 2
    # memory.max 8 GiB is below MemTotal (31.25 GiB); headroom = 8 GiB − 1 GiB in use, below MemAvailable.
    assert cpu.memory_limit_bytes == 8 * GIB
    assert cpu.ram_total_bytes == 8 * GIB
    assert cpu.ram_available_bytes == 7 * GIB
    assert report.problems == ()


def test_cpu_only_host_with_cgroup_v1_limits(host: FakeHost) -> None:
    host.use_tree(DATA / "cpu-only-cgroup-v1")
    report = detect_hardware(host.env(), engine=CPU_ENGINE)
    cpu = report.cpu
    assert cpu.model == "AMD EPYC 7B13"
    assert cpu.logical_cores == 4
    assert cpu.memory_limit_bytes == 4 * GIB  # the root's "unlimited" 9223372036854771712 is ignored
    assert cpu.ram_available_bytes == 4 * GIB - 512 * MIB
    assert cpu.cpu_quota == 1.5
    assert cpu.usable_threads == 2


def test_missing_proc_is_reported_not_fatal(host: FakeHost) -> None:
    env = host.env(INGOT_SYSFS_ROOT=str(host.bin))  # a folder with no /proc or /sys at all
    report = detect_hardware(env, engine=CPU_ENGINE)
    assert report.cpu.logical_cores == 1
    assert any("cannot count CPUs" in p for p in report.problems)
    assert any("MemTotal" in p for p in report.problems)


def test_this_machine(real_engine: EngineSupport) -> None:
    """The real host: whatever it has, detection returns a consistent report."""
    report = detect_hardware(os.environ, engine=real_engine)
    assert report.cpu.logical_cores == os.cpu_count()
    assert report.cpu.usable_cores == len(os.sched_getaffinity(0))
    assert 0 < report.cpu.ram_available_bytes <= report.cpu.ram_total_bytes
