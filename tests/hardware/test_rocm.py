"""AMD detection from recorded KFD/DRM sysfs trees and recorded rocm-smi JSON."""

from __future__ import annotations

import pytest

from ingot.daemon.hardware import EngineDevice, EngineSupport, detect_hardware
from ingot.daemon.hardware.rocm import gfx_name

from .conftest import CPU_ENGINE, DATA, FakeHost

ROCM = DATA / "rocm"
VRAM_7900XTX = 25753026560
VRAM_MI210 = 68702699520
ROCM_ENGINE = EngineSupport(
    installed=True,
    version="0.3.36",
    gpu_offload=True,
    devices=(EngineDevice("ROCm0", "Radeon RX 7900 XTX", "gpu", "ROCm", VRAM_7900XTX, VRAM_7900XTX),),
)


@pytest.mark.parametrize(
    ("version", "name"),
    [(110000, "gfx1100"), (90010, "gfx90a"), (90402, "gfx942"), (100300, "gfx1030"), (90008, "gfx908")],
)
def test_gfx_names(version: int, name: str) -> None:
    assert gfx_name(version) == name


def test_kfd_nodes_are_matched_to_drm_cards_by_unique_id(host: FakeHost) -> None:
    # DRM numbers the cards in the opposite order to KFD; the used-VRAM figures tell which card was read.
    host.use_tree(ROCM / "two-7900xtx")
    report = detect_hardware(host.env(), engine=ROCM_ENGINE)
    assert [(g.index, g.backend, g.compute_capability, g.driver) for g in report.gpus] == [
        (0, "rocm", "gfx1100", "6.3.6"),
        (1, "rocm", "gfx1100", "6.3.6"),
    ]
    assert [g.total_bytes for g in report.gpus] == [VRAM_7900XTX, VRAM_7900XTX]
    # KFD node 1 (unique_id 12634893045768829457) is card1, which has 256 MiB in use; node 2 is card0 with 1 GiB.
    assert [g.free_bytes for g in report.gpus] == [VRAM_7900XTX - 268435456, VRAM_7900XTX - 1073741824]
    assert report.gpus[0].uuid == f"GPU-{12634893045768829457:016x}"
    assert report.gpus[0].name == "AMD GPU gfx1100 [1002:744c]"
    assert report.problems == ()


def test_render_minor_breaks_ties_without_unique_ids(host: FakeHost) -> None:
    host.use_tree(ROCM / "two-mi210-no-unique-id")
    report = detect_hardware(host.env(), engine=ROCM_ENGINE)
    assert [g.name for g in report.gpus] == ["AMD Instinct MI210", "AMD Instinct MI210"]
    # Node 1 has drm_render_minor 129 → card1 (4 GiB used); node 2 has 128 → card0.
    assert [g.free_bytes for g in report.gpus] == [VRAM_MI210 - 4294967296, VRAM_MI210 - 10960896]
    assert [g.compute_capability for g in report.gpus] == ["gfx90a", "gfx90a"]
    assert [g.driver for g in report.gpus] == [None, None]  # no /sys/module/amdgpu/version on this kernel


@pytest.mark.parametrize(
    ("variables", "expected_used"),
    [
        ({"HIP_VISIBLE_DEVICES": "1"}, [1073741824]),
        ({"HIP_VISIBLE_DEVICES": "1,0"}, [1073741824, 268435456]),
        ({"ROCR_VISIBLE_DEVICES": "1"}, [1073741824]),
        ({"ROCR_VISIBLE_DEVICES": f"GPU-{12634893045768829457:016x}"}, [268435456]),
        # HIP indices count the devices ROCR left visible.
        ({"ROCR_VISIBLE_DEVICES": "1,0", "HIP_VISIBLE_DEVICES": "0"}, [1073741824]),
        ({"CUDA_VISIBLE_DEVICES": "1"}, [1073741824]),  # HIP honours it when HIP_VISIBLE_DEVICES is unset
        ({"CUDA_VISIBLE_DEVICES": "1", "HIP_VISIBLE_DEVICES": "0"}, [268435456]),
        ({"HIP_VISIBLE_DEVICES": "-1"}, []),
    ],
)
def test_visible_devices(host: FakeHost, variables: dict[str, str], expected_used: list[int]) -> None:
    host.use_tree(ROCM / "two-7900xtx")
    report = detect_hardware(host.env(**variables), engine=ROCM_ENGINE)
    assert [VRAM_7900XTX - g.free_bytes for g in report.gpus] == expected_used
    assert [g.index for g in report.gpus] == list(range(len(expected_used)))


def test_rocm_smi_fallback(host: FakeHost) -> None:
    host.script(
        "rocm-smi",
        f"case \"$*\" in *--showmeminfo*) cat '{ROCM / 'rocm-smi-meminfo.json'}';; "
        f"*--showproductname*) cat '{ROCM / 'rocm-smi-productname.json'}';; *) exit 1;; esac\n",
    )
    report = detect_hardware(host.env(), engine=ROCM_ENGINE)
    assert [(g.name, g.compute_capability, g.total_bytes, g.free_bytes) for g in report.gpus] == [
        ("AMD Instinct MI210", "gfx90a", VRAM_MI210, VRAM_MI210 - 10960896),
        ("AMD Instinct MI210", "gfx90a", VRAM_MI210, VRAM_MI210 - 4294967296),
    ]
    assert report.problems == ()


def test_rocm_smi_names_are_optional(host: FakeHost) -> None:
    host.script(
        "rocm-smi",
        f"case \"$*\" in *--showmeminfo*) cat '{ROCM / 'rocm-smi-meminfo.json'}';; "
        "*) echo 'unknown option' >&2; exit 2;; esac\n",
    )
    report = detect_hardware(host.env(), engine=ROCM_ENGINE)
    assert [g.name for g in report.gpus] == ["AMD GPU card0", "AMD GPU card1"]
    assert report.problems == ()


def test_rocm_smi_garbage_is_a_problem(host: FakeHost) -> None:
    host.script("rocm-smi", "echo 'WARNING: AMD GPU device(s) is/are in a low-power state'\n")
    report = detect_hardware(host.env(), engine=ROCM_ENGINE)
    assert report.gpus == ()
    assert any(p.startswith("rocm-smi: output is not JSON") for p in report.problems)


def test_cpu_only_engine_with_amd_gpus_gives_hip_rebuild_command(host: FakeHost) -> None:
    host.use_tree(ROCM / "two-7900xtx")
    report = detect_hardware(host.env(), engine=CPU_ENGINE)
    assert any(
        'CMAKE_ARGS="-DGGML_HIP=on" pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36' in p
        for p in report.problems
    )
