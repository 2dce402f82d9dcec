"""NVIDIA detection from recorded nvidia-smi outputs and a compiled stand-in NVML library."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ingot.daemon.hardware import detect_hardware
from ingot.daemon.hardware.nvidia import parse_nvidia_smi_csv

from .conftest import CPU_ENGINE, CUDA_ENGINE, DATA, FakeHost

MIB = 2**20
SMI = DATA / "nvidia-smi"


def test_one_gpu(host: FakeHost) -> None:
    host.replay("nvidia-smi", SMI / "1x-rtx4090.csv")
    report = detect_hardware(host.env(), engine=CUDA_ENGINE)
    assert len(report.gpus) == 1
    gpu = report.gpus[0]
    assert (gpu.index, gpu.backend, gpu.name) == (0, "cuda", "NVIDIA GeForce RTX 4090")
    assert gpu.total_bytes == 24564 * MIB
    assert gpu.free_bytes == 24080 * MIB
    assert gpu.compute_capability == "8.9"
    assert gpu.driver == "550.54.14"
    assert gpu.uuid == "GPU-5e5b2a3c-9f1e-4f7a-8c2d-1a2b3c4d5e6f"
    assert report.problems == ()


def test_two_gpus_in_bus_order(host: FakeHost) -> None:
    host.replay("nvidia-smi", SMI / "2x-rtx3090.csv")
    report = detect_hardware(host.env(), engine=CUDA_ENGINE)
    assert [g.index for g in report.gpus] == [0, 1]
    assert [g.uuid for g in report.gpus] == [
        "GPU-0b6c3f2e-7d41-1a9e-5c22-8e6b0f3a9d17",
        "GPU-e81f4c90-2b37-6d58-a3c1-47f9d2b6e054",
    ]
    assert all(g.free_bytes == 24231 * MIB for g in report.gpus)


def test_eight_gpus_one_nearly_full(host: FakeHost) -> None:
    host.replay("nvidia-smi", SMI / "8x-h100-one-full.csv")
    report = detect_hardware(host.env(), engine=CUDA_ENGINE)
    assert len(report.gpus) == 8
    assert report.gpus[5].free_bytes == 1203 * MIB
    assert {g.free_bytes for i, g in enumerate(report.gpus) if i != 5} == {81004 * MIB}


@pytest.mark.parametrize(
    ("visible", "expected_bus_order", "stopped"),
    [
        ("1,0", [1, 0], False),
        ("2", [2], False),
        ("0,2,-1,1", [0, 2], True),  # CUDA stops at the first invalid entry
        ("-1", [], True),
        ("", [], False),  # empty: no devices, nothing wrong
        ("7,9,3", [7], True),  # index out of range ends the list
        ("3,3", [3], True),  # a repeat is invalid too
        ("GPU-6e1f9b4d-7c28-4e83-b6a9-3d5e8c0f2a47,GPU-1d4b", [5, 0], False),  # full UUID, then a unique prefix
        ("GPU-8d3b", [7], False),
        ("8d3b7f1a", [7], False),  # the GPU- prefix may be left out
        ("GPU-", [], True),  # ambiguous prefix
        ("MIG-4b2d8f1c-5e69-4a30", [], True),
    ],
)
def test_cuda_visible_devices(host: FakeHost, visible: str, expected_bus_order: list[int], stopped: bool) -> None:
    host.replay("nvidia-smi", SMI / "8x-h100-one-full.csv")
    all_uuids = [g.uuid for g in detect_hardware(host.env(), engine=CUDA_ENGINE).gpus]
    report = detect_hardware(host.env(CUDA_VISIBLE_DEVICES=visible), engine=CUDA_ENGINE)
    assert [g.uuid for g in report.gpus] == [all_uuids[i] for i in expected_bus_order]
    assert [g.index for g in report.gpus] == list(range(len(expected_bus_order)))  # renumbered as CUDA sees them
    assert any("CUDA_VISIBLE_DEVICES" in p for p in report.problems) == stopped


def test_mixed_models_warn_about_cuda_device_order(host: FakeHost) -> None:
    host.replay("nvidia-smi", SMI / "mixed-4090-3060.csv")
    report = detect_hardware(host.env(), engine=CUDA_ENGINE)
    assert any("CUDA_DEVICE_ORDER=PCI_BUS_ID" in p for p in report.problems)
    settled = detect_hardware(host.env(CUDA_DEVICE_ORDER="PCI_BUS_ID"), engine=CUDA_ENGINE)
    assert settled.problems == ()


def test_old_driver_without_compute_cap_field(host: FakeHost) -> None:
    # Drivers before 510 reject the whole query when it names compute_cap; the probe asks again without it.
    host.script(
        "nvidia-smi",
        f'case "$1" in *compute_cap*) cat \'{SMI / "old-driver-error.txt"}\'; exit 2;; esac\n'
        f"cat '{SMI / 'old-driver-v100.csv'}'\n",
    )
    report = detect_hardware(host.env(), engine=CUDA_ENGINE)
    assert [(g.name, g.total_bytes, g.compute_capability) for g in report.gpus] == [
        ("Tesla V100-SXM2-16GB", 16160 * MIB, None)
    ]
    assert report.problems == ()


def test_gpu_without_memory_figures_is_reported(host: FakeHost) -> None:
    host.replay("nvidia-smi", SMI / "gb10-unified.csv")
    report = detect_hardware(host.env(), engine=CUDA_ENGINE)
    assert [(g.name, g.total_bytes, g.compute_capability) for g in report.gpus] == [("NVIDIA GB10", 0, "12.1")]
    assert any("does not report its memory" in p for p in report.problems)


def test_failing_nvidia_smi_is_a_problem_not_a_crash(host: FakeHost) -> None:
    host.replay("nvidia-smi", SMI / "driver-not-loaded.txt", exit_code=9)
    report = detect_hardware(host.env(), engine=CUDA_ENGINE)
    assert report.gpus == ()
    assert len(report.problems) == 1
    assert "exited with status 9" in report.problems[0]
    assert "couldn't communicate with the NVIDIA driver" in report.problems[0]


def test_hanging_nvidia_smi_times_out(host: FakeHost) -> None:
    # Not exec'd: the shell's child keeps the pipes open, so only killing the process group ends it.
    host.script("nvidia-smi", "sleep 60\n")
    started = time.monotonic()
    report = detect_hardware(host.env(), engine=CUDA_ENGINE, timeout_s=0.5)
    assert time.monotonic() - started < 10
    assert report.gpus == ()
    assert any("did not answer within 0.5 s" in p for p in report.problems)


def test_garbled_output_is_a_problem(host: FakeHost, tmp_path: Path) -> None:
    garbled = tmp_path / "garbled.csv"
    garbled.write_text("0, GPU-1, Some GPU, 1024\n")
    host.replay("nvidia-smi", garbled)
    report = detect_hardware(host.env(), engine=CUDA_ENGINE)
    assert report.gpus == ()
    assert any("has 4 fields, expected 8" in p for p in report.problems)


def test_parse_csv_handles_blank_lines_and_not_available() -> None:
    text = "\n0, GPU-a, Card, [N/A], 100, [N/A], [Not Supported], 1.0\n\n"
    [gpu] = parse_nvidia_smi_csv(text)
    assert (gpu.total_bytes, gpu.free_bytes, gpu.compute_capability) == (None, 100 * MIB, None)


def test_cpu_only_engine_with_gpus_gives_rebuild_command(host: FakeHost) -> None:
    host.replay("nvidia-smi", SMI / "2x-rtx3090.csv")
    report = detect_hardware(host.env(), engine=CPU_ENGINE)
    [message] = [p for p in report.problems if "rebuild" in p]
    assert "found 2 CUDA GPUs" in message
    command = 'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36'
    assert command in message


# --- NVML, through a compiled stand-in library with the same C ABI -------------------------------


@pytest.fixture(scope="module")
def fake_nvml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the stand-in NVML library")
    library = tmp_path_factory.mktemp("nvml") / "libnvidia-ml.so.1"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O0", "-o", str(library), str(DATA / "fake_nvml.c")],
        check=True,
        capture_output=True,
    )
    return library


def test_nvml_is_read_through_ctypes(host: FakeHost, fake_nvml: Path) -> None:
    report = detect_hardware(host.env(INGOT_NVML=str(fake_nvml)), engine=CUDA_ENGINE)
    assert [(g.name, g.total_bytes, g.free_bytes, g.compute_capability, g.driver) for g in report.gpus] == [
        ("NVIDIA A100-SXM4-40GB", 40 * 2**30, 42314694656, "8.0", "535.161.08"),
        ("NVIDIA A100-SXM4-40GB", 40 * 2**30, 20 * 2**30, "8.0", "535.161.08"),
    ]
    assert report.gpus[1].uuid == "GPU-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    assert report.problems == ()


def test_nvml_is_preferred_over_nvidia_smi(host: FakeHost, fake_nvml: Path) -> None:
    host.replay("nvidia-smi", SMI / "1x-rtx4090.csv")
    report = detect_hardware(host.env(INGOT_NVML=str(fake_nvml)), engine=CUDA_ENGINE)
    assert {g.name for g in report.gpus} == {"NVIDIA A100-SXM4-40GB"}


def test_nvml_visible_devices_by_uuid(host: FakeHost, fake_nvml: Path) -> None:
    env = host.env(INGOT_NVML=str(fake_nvml), CUDA_VISIBLE_DEVICES="GPU-1a2b")
    report = detect_hardware(env, engine=CUDA_ENGINE)
    assert [(g.index, g.free_bytes) for g in report.gpus] == [(0, 20 * 2**30)]


def test_failing_nvml_falls_back_to_nvidia_smi(host: FakeHost, fake_nvml: Path) -> None:
    host.replay("nvidia-smi", SMI / "1x-rtx4090.csv")
    report = detect_hardware(host.env(INGOT_NVML=str(fake_nvml), FAKE_NVML_MODE="fail"), engine=CUDA_ENGINE)
    assert [g.name for g in report.gpus] == ["NVIDIA GeForce RTX 4090"]
    assert any("NVML/RM version mismatch" in p and "NVML error 18" in p for p in report.problems)


def test_hanging_nvml_is_abandoned(host: FakeHost, fake_nvml: Path) -> None:
    host.replay("nvidia-smi", SMI / "1x-rtx4090.csv")
    started = time.monotonic()
    report = detect_hardware(
        host.env(INGOT_NVML=str(fake_nvml), FAKE_NVML_MODE="hang"), engine=CUDA_ENGINE, timeout_s=1.0
    )
    assert time.monotonic() - started < 15
    assert [g.name for g in report.gpus] == ["NVIDIA GeForce RTX 4090"]
    assert any(p.startswith("NVML: did not answer within 1 s") for p in report.problems)


def test_missing_nvml_library_is_silent(host: FakeHost, tmp_path: Path) -> None:
    report = detect_hardware(host.env(INGOT_NVML=str(tmp_path / "absent.so")), engine=CUDA_ENGINE)
    assert report.gpus == ()
    assert report.problems == ()
