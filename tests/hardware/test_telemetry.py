"""Live device readings from recorded tool outputs, sysfs trees and the stand-in NVML library."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingot.daemon.hardware import CpuUsage, DeviceProcess, ProbeSources, detect_hardware, read_telemetry
from ingot.daemon.hardware.cpu_telemetry import parse_proc_stat
from ingot.daemon.hardware.metal_telemetry import parse_ioreg
from ingot.daemon.hardware.nvidia_telemetry import parse_telemetry_csv

from .conftest import CPU_ENGINE, CUDA_ENGINE, DATA, FakeHost
from .test_nvidia import fake_nvml  # noqa: F401 - the compiled stand-in library, a module fixture there

MIB = 2**20
TELEMETRY = DATA / "telemetry"
SMI = DATA / "nvidia-smi"


def _read(host: FakeHost, engine=CUDA_ENGINE, usage: CpuUsage | None = None, **env: str):
    environment = host.env(**env)
    hardware = detect_hardware(environment, engine=engine)
    return hardware, read_telemetry(ProbeSources.from_env(environment), hardware, cpu_usage=usage)


def _nvidia_smi(host: FakeHost, detection: Path, query: Path, apps: Path) -> None:
    """A fake nvidia-smi answering each of the three queries ingot makes with its recording."""
    host.script(
        "nvidia-smi",
        'case "$1" in\n'
        f"  --query-gpu=index,*) cat '{detection}';;\n"
        f"  --query-gpu=uuid,*) cat '{query}';;\n"
        f"  --query-compute-apps=*) cat '{apps}';;\n"
        '  *) echo "unexpected arguments: $*" >&2; exit 2;;\n'
        "esac\n",
    )


def test_nvidia_smi_readings_per_card(host: FakeHost) -> None:
    _nvidia_smi(host, SMI / "2x-rtx3090.csv", TELEMETRY / "2x-rtx3090-query-gpu.csv",
                TELEMETRY / "2x-rtx3090-compute-apps.csv")
    _, report = _read(host)
    busy, idle = report.device("cuda:0"), report.device("cuda:1")
    assert busy is not None and idle is not None
    assert (busy.source, busy.utilization, busy.temperature_celsius, busy.power_watts, busy.power_limit_watts) == (
        "nvidia-smi", 0.93, 74.0, 331.62, 350.0
    )
    assert (busy.memory_used_bytes, busy.memory_total_bytes) == (18734 * MIB, 24576 * MIB)
    assert busy.processes == (DeviceProcess(48211, 14562 * MIB), DeviceProcess(48390, 4158 * MIB))
    assert (idle.utilization, idle.processes) == (0.0, ())
    assert report.problems == ()


def test_nvidia_smi_follows_cuda_visible_devices_by_uuid(host: FakeHost) -> None:
    _nvidia_smi(host, SMI / "2x-rtx3090.csv", TELEMETRY / "2x-rtx3090-query-gpu.csv",
                TELEMETRY / "2x-rtx3090-compute-apps.csv")
    _, report = _read(host, CUDA_VISIBLE_DEVICES="1")
    assert [(d.key, d.utilization) for d in report.devices if d.backend == "cuda"] == [("cuda:0", 0.0)]


def test_unsupported_fields_are_unknown_not_zero(host: FakeHost) -> None:
    _nvidia_smi(host, SMI / "gb10-unified.csv", TELEMETRY / "gb10-query-gpu.csv", TELEMETRY / "no-compute-apps.csv")
    _, report = _read(host)
    gb10 = report.device("cuda:0")
    assert gb10 is not None
    assert (gb10.utilization, gb10.temperature_celsius) == (0.41, 52.0)
    assert (gb10.memory_used_bytes, gb10.memory_total_bytes, gb10.power_watts) == (None, None, None)


def test_garbled_nvidia_smi_telemetry_is_a_problem(host: FakeHost, tmp_path: Path) -> None:
    garbled = tmp_path / "garbled.csv"
    garbled.write_text("GPU-0b6c3f2e-7d41-1a9e-5c22-8e6b0f3a9d17, 93\n")
    _nvidia_smi(host, SMI / "2x-rtx3090.csv", garbled, TELEMETRY / "no-compute-apps.csv")
    _, report = _read(host)
    assert report.device("cuda:0") is not None  # still listed, with what detection knows
    assert report.device("cuda:0").memory_total_bytes == 24576 * MIB  # type: ignore[union-attr]
    assert any("has 2 fields, expected 7" in p for p in report.problems)


def test_parse_telemetry_csv_reads_not_supported() -> None:
    [reading] = parse_telemetry_csv("GPU-x, [Not Supported], 10, 20, [N/A], [Unknown Error], 70.00\n")
    assert (reading.utilization, reading.memory_used_bytes, reading.temperature_celsius, reading.power_watts) == (
        None, 10 * MIB, None, None
    )


def test_nvml_readings_and_processes(host: FakeHost, fake_nvml: Path) -> None:  # noqa: F811
    processes = f"0:4242:{3 * 2**30},0:4243:{2**30},1:4244:{5 * 2**30}"
    _, report = _read(host, INGOT_NVML=str(fake_nvml), FAKE_NVML_PROCESSES=processes)
    busy, idle = report.device("cuda:0"), report.device("cuda:1")
    assert busy is not None and idle is not None
    assert (busy.source, busy.utilization, busy.temperature_celsius, busy.power_watts, busy.power_limit_watts) == (
        "nvml", 0.97, 71.0, 312.5, 400.0
    )
    assert busy.processes == (DeviceProcess(4242, 3 * 2**30), DeviceProcess(4243, 2**30))
    assert busy.memory_used_bytes == 40 * 2**30 - 42314694656
    # The second board reports no power sensor: unknown, and the rest of its readings still arrive.
    assert (idle.power_watts, idle.temperature_celsius, idle.processes) == (None, 34.0, (DeviceProcess(4244, 5 * 2**30),))


def test_amd_sysfs_readings_and_kfd_processes(host: FakeHost) -> None:
    host.use_tree(DATA / "rocm" / "two-7900xtx")
    host.use_tree(TELEMETRY / "two-7900xtx-live")
    hardware, report = _read(host, engine=CPU_ENGINE)
    # rocm:1 is card0 (KFD node 2): busy, on power1_input (RDNA3), with two processes' VRAM.
    busy = report.device("rocm:1")
    assert busy is not None and busy.uuid == "GPU-82bec708f20d0c5e"
    assert (busy.source, busy.utilization, busy.temperature_celsius, busy.power_watts, busy.power_limit_watts) == (
        "sysfs", 0.97, 68.0, 339.0, 355.0
    )
    assert busy.memory_used_bytes == 1073741824
    assert busy.processes == (DeviceProcess(48211, 805306368), DeviceProcess(48390, 26843545))
    idle = report.device("rocm:0")
    assert idle is not None
    assert (idle.utilization, idle.power_watts, idle.processes) == (0.0, 18.0, (DeviceProcess(48390, 0),))
    cpu = report.device("cpu")
    assert cpu is not None and cpu.temperature_celsius == 61.25  # k10temp
    assert report.problems == ()


def test_amd_without_live_files_reports_unknowns(host: FakeHost) -> None:
    host.use_tree(DATA / "rocm" / "two-7900xtx")
    _, report = _read(host, engine=CPU_ENGINE)
    for key in ("rocm:0", "rocm:1"):
        device = report.device(key)
        assert device is not None
        assert (device.utilization, device.temperature_celsius, device.power_watts, device.processes) == (
            None, None, None, None
        )
        assert device.memory_total_bytes == 25753026560


def test_rocm_smi_fallback(host: FakeHost) -> None:
    host.script(
        "rocm-smi",
        f'case "$*" in *--showuse*) cat \'{TELEMETRY / "rocm-smi-telemetry.json"}\';;\n'
        f'  *--showproductname*) cat \'{DATA / "rocm" / "rocm-smi-productname.json"}\';;\n'
        f'  *) cat \'{DATA / "rocm" / "rocm-smi-meminfo.json"}\';; esac\n',
    )
    _, report = _read(host, engine=CPU_ENGINE)
    first, second = report.device("rocm:0"), report.device("rocm:1")
    assert first is not None and second is not None
    assert (first.source, first.utilization, first.temperature_celsius, first.power_watts) == ("rocm-smi", 0.88, 41.0, 187.0)
    assert second.power_watts == 42.0  # newer ROCm: "Current Socket Graphics Package Power (W)"
    assert second.memory_used_bytes == 4294967296


def test_apple_ioreg_readings(host: FakeHost) -> None:
    host.platform = "Darwin/arm64"
    host.sysctl(DATA / "mac" / "m1-16g.sysctl")
    host.replay("ioreg", TELEMETRY / "m1-pro-ioreg.txt")
    host.replay("vm_stat", DATA / "mac" / "vm_stat.txt")
    _, report = _read(host, engine=CPU_ENGINE)
    gpu = report.device("metal:0")
    assert gpu is not None
    assert (gpu.source, gpu.utilization, gpu.memory_used_bytes) == ("ioreg", 0.64, 4563402752)
    assert (gpu.temperature_celsius, gpu.power_watts) == (None, None)  # powermetrics needs root
    assert report.device("cpu") is not None


def test_parse_ioreg_without_an_accelerator() -> None:
    assert parse_ioreg("+-o Root  <class IORegistryEntry>\n") is None


def test_cpu_utilisation_between_two_readings(host: FakeHost) -> None:
    usage = CpuUsage()
    shutil.copy(TELEMETRY / "proc-stat-1", host.root / "proc" / "stat")
    _, first = _read(host, engine=CPU_ENGINE, usage=usage)
    assert first.device("cpu").utilization is None  # type: ignore[union-attr] - nothing to compare with yet
    shutil.copy(TELEMETRY / "proc-stat-2", host.root / "proc" / "stat")
    _, second = _read(host, engine=CPU_ENGINE, usage=usage)
    cpu = second.device("cpu")
    assert cpu is not None
    assert cpu.utilization == pytest.approx(800 / 1600)  # 600 user + 200 system of 1600 ticks
    assert (cpu.memory_total_bytes, cpu.memory_used_bytes) == (8 * 2**30, 2**30)  # the cgroup limit applies


def test_proc_stat_without_cpu_line() -> None:
    assert parse_proc_stat("intr 1 2 3\n") is None


def test_report_serialises_to_json(host: FakeHost) -> None:
    import json

    _nvidia_smi(host, SMI / "2x-rtx3090.csv", TELEMETRY / "2x-rtx3090-query-gpu.csv",
                TELEMETRY / "2x-rtx3090-compute-apps.csv")
    _, report = _read(host)
    data = json.loads(json.dumps(report.to_dict()))
    assert [d["key"] for d in data["devices"]] == ["cpu", "cuda:0", "cuda:1"]
    assert data["devices"][1]["processes"][0] == {"pid": 48211, "used_bytes": 14562 * MIB}


# --- `ingot hw --watch`, through the console script as a user runs it ---------------------------------------


def _ingot_watch(host: FakeHost, tmp_path: Path, *args: str):
    import os
    import subprocess
    import sys

    home = tmp_path / "home"  # no daemon there: the readings show without models
    env = {**os.environ, **host.env(), "INGOT_HOME": str(home), "COLUMNS": "200"}
    env.pop("INGOT_HOST", None)
    command = [str(Path(sys.executable).parent / "ingot"), "hw", "--watch", "--interval", "0.05", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_hw_watch_json_lines(host: FakeHost, tmp_path: Path) -> None:
    import json

    _nvidia_smi(host, SMI / "2x-rtx3090.csv", TELEMETRY / "2x-rtx3090-query-gpu.csv",
                TELEMETRY / "2x-rtx3090-compute-apps.csv")
    done = _ingot_watch(host, tmp_path, "--json", "--count", "2")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2
    devices = {d["key"]: d for d in lines[-1]["devices"]}
    assert devices["cuda:0"]["utilization"] == 0.93 and devices["cuda:0"]["models"] == []
    assert devices["cuda:0"]["processes"][0]["pid"] == 48211
    assert devices["cpu"]["memory_total_bytes"] == 8 * 2**30


def test_hw_watch_table(host: FakeHost, tmp_path: Path) -> None:
    _nvidia_smi(host, SMI / "2x-rtx3090.csv", TELEMETRY / "2x-rtx3090-query-gpu.csv",
                TELEMETRY / "2x-rtx3090-compute-apps.csv")
    done = _ingot_watch(host, tmp_path, "--count", "1")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[1]: line for line in done.stdout.splitlines() if "cuda:" in line}
    assert "93%" in rows["cuda:0"] and "74 °C" in rows["cuda:0"] and "332 W / 350" in rows["cuda:0"]
    assert "18.3 / 24.0 GiB" in rows["cuda:0"]


def test_hw_watch_rejects_a_bad_interval(host: FakeHost, tmp_path: Path) -> None:
    done = _ingot_watch(host, tmp_path, "--interval", "0")
    assert done.returncode == 2 and "must be more than 0 seconds" in done.stderr
