"""The engine probe (run for real against the installed llama-cpp-python) and the report's JSON form."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import pytest

from ingot.daemon.hardware import (
    CPUInfo,
    EngineSupport,
    GPUDevice,
    HardwareReport,
    HardwareReportError,
    detect_hardware,
    probe_engine,
    rebuild_command,
)

from .conftest import CUDA_ENGINE, DATA, FakeHost


def test_real_engine_probe_on_this_machine(real_engine: EngineSupport) -> None:
    # This machine has no GPU and llama-cpp-python was built for the CPU only.
    assert real_engine.installed
    assert real_engine.version == metadata.version("llama-cpp-python")
    assert real_engine.error is None
    assert real_engine.gpu_offload is False
    assert real_engine.gpu_backends == frozenset()
    cpu_devices = [d for d in real_engine.devices if d.kind == "cpu"]
    assert [d.backend for d in cpu_devices] == ["CPU"]
    assert cpu_devices[0].total_bytes > 0
    for backend in ("cuda", "rocm", "metal"):
        assert not real_engine.can_offload_to(backend)


def test_real_engine_with_recorded_gpus_says_how_to_rebuild(host: FakeHost, real_engine: EngineSupport) -> None:
    host.replay("nvidia-smi", DATA / "nvidia-smi" / "1x-rtx4090.csv")
    report = detect_hardware(host.env(), engine=real_engine)
    version = metadata.version("llama-cpp-python")
    [message] = [p for p in report.problems if "built without CUDA support" in p]
    assert message.endswith(
        f'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python=={version}'
    )


def test_engine_probe_that_crashes(tmp_path: Path) -> None:
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\necho 'GGML_ASSERT failed' >&2\nkill -ABRT $$\n")
    crashing.chmod(0o755)
    engine = probe_engine(python=str(crashing), timeout_s=10)
    assert engine.installed and not engine.gpu_offload
    assert engine.error == "engine probe killed by signal 6: GGML_ASSERT failed"


def test_engine_probe_that_hangs(tmp_path: Path) -> None:
    hanging = tmp_path / "python"
    hanging.write_text("#!/bin/sh\nsleep 60\n")
    hanging.chmod(0o755)
    engine = probe_engine(python=str(hanging), timeout_s=0.5)
    assert engine.error == "engine probe did not finish within 0.5 s"


def test_engine_probe_failure_is_a_report_problem(host: FakeHost, tmp_path: Path) -> None:
    broken = EngineSupport(installed=True, version="0.3.36", gpu_offload=False, error="engine probe exited 1: boom")
    report = detect_hardware(host.env(), engine=broken)
    assert report.problems == ("engine: engine probe exited 1: boom",)


def test_rebuild_commands() -> None:
    assert rebuild_command("metal", "0.3.36") == (
        'CMAKE_ARGS="-DGGML_METAL=on" pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36'
    )
    assert rebuild_command("rocm", None).endswith("--no-cache-dir llama-cpp-python")


def test_vulkan_engine_drives_nvidia_and_amd_cards() -> None:
    from ingot.daemon.hardware import EngineDevice

    vulkan = EngineSupport(True, "0.3.36", True, (EngineDevice("Vulkan0", "AMD Radeon", "gpu", "Vulkan", 1, 1),))
    assert vulkan.can_offload_to("cuda") and vulkan.can_offload_to("rocm")
    assert not vulkan.can_offload_to("metal")


def test_report_json_round_trip(host: FakeHost) -> None:
    host.replay("nvidia-smi", DATA / "nvidia-smi" / "2x-rtx3090.csv")
    report = detect_hardware(host.env(CUDA_VISIBLE_DEVICES="1,0,7"), engine=CUDA_ENGINE)
    assert report.problems  # the stop at "7" is recorded and must survive the trip
    text = report.to_json()
    assert json.loads(text)["format"] == 1
    assert HardwareReport.from_json(text) == report


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected a JSON object at the top level"),
        ('{"format": 99, "cpu": {}}', "report format 99 is not supported"),
        ("{}", "missing field 'cpu'"),
        ('{"cpu": {"model": "x"}}', "cpu: missing field 'physical_cores'"),
        (
            '{"cpu": {"model": "x", "physical_cores": "four", "logical_cores": 1, "usable_cores": 1,'
            ' "ram_total_bytes": 1, "ram_available_bytes": 1}}',
            "cpu.physical_cores: expected an integer, got 'four'",
        ),
        (
            '{"cpu": {"model": "x", "physical_cores": 1, "logical_cores": 1, "usable_cores": 1,'
            ' "ram_total_bytes": 1, "ram_available_bytes": 1, "gpu": 1}}',
            "cpu: unknown field 'gpu'",
        ),
        (
            '{"cpu": {"model": "x", "physical_cores": 1, "logical_cores": 1, "usable_cores": 1,'
            ' "ram_total_bytes": 1, "ram_available_bytes": 1},'
            ' "gpus": [{"index": 0, "backend": "opencl", "name": "x", "total_bytes": 1, "free_bytes": 1}]}',
            "backend is 'opencl'",
        ),
        ('{"cpu": ', "box.json:1:9: not valid JSON"),
    ],
)
def test_bad_report_files(text: str, message: str) -> None:
    with pytest.raises(HardwareReportError) as caught:
        HardwareReport.from_json(text, source="box.json")
    assert message in str(caught.value)
    assert "ingot hw --json" in str(caught.value)


def test_minimal_hand_written_report() -> None:
    text = json.dumps(
        {
            "cpu": {
                "model": "x",
                "physical_cores": 8,
                "logical_cores": 16,
                "usable_cores": 16,
                "ram_total_bytes": 2**36,
                "ram_available_bytes": 2**35,
            },
            "gpus": [{"index": 0, "backend": "cuda", "name": "A", "total_bytes": 2**34, "free_bytes": 2**34}],
        }
    )
    report = HardwareReport.from_json(text)
    assert report.gpus == (GPUDevice(0, "cuda", "A", 2**34, 2**34),)
    assert report.cpu == CPUInfo("x", 8, 16, 16, 2**36, 2**35)
    assert report.engine.installed is False


def test_child_modules_run_standalone() -> None:
    # The probes run as `python -m ...`: the modules must stay importable on their own.
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "ingot.daemon.hardware.nvml", "/nonexistent/libnvidia-ml.so.1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["status"] == "missing"
