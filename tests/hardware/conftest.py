"""A fake host for the hardware probes: an empty sysfs root plus a bin folder of recorded tools.

Nothing is mocked: the probes really read files under ``INGOT_SYSFS_ROOT`` and
really run the executables found first on ``PATH`` — small shell scripts that
replay outputs recorded from the real tools (tests/hardware/data).
"""

from __future__ import annotations

import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingot.daemon.hardware import EngineDevice, EngineSupport, probe_engine

DATA = Path(__file__).parent / "data"
SYSTEM_PATH = "/usr/bin:/bin"

# An engine built with CUDA and one that is CPU-only: injected where a test is about
# detection, not about the engine probe (which has its own tests, run for real).
CUDA_ENGINE = EngineSupport(
    installed=True,
    version="0.3.36",
    gpu_offload=True,
    devices=(EngineDevice("CUDA0", "NVIDIA GeForce RTX 4090", "gpu", "CUDA", 24 * 2**30, 24 * 2**30),),
)
CPU_ENGINE = EngineSupport(
    installed=True,
    version="0.3.36",
    gpu_offload=False,
    devices=(EngineDevice("CPU", "some CPU", "cpu", "CPU", 2**34, 2**34),),
)


@dataclass
class FakeHost:
    root: Path
    bin: Path
    platform: str = "Linux/x86_64"
    extra_env: dict[str, str] = field(default_factory=dict)

    def script(self, name: str, body: str) -> Path:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    def replay(self, name: str, recording: Path, *, exit_code: int = 0) -> Path:
        """A fake ``name`` that prints a recorded output, whatever its arguments."""
        return self.script(name, f"cat '{recording}'\nexit {exit_code}\n")

    def sysctl(self, profile: Path) -> Path:
        """A fake ``sysctl -n KEY`` answering from a ``key=value`` profile, failing like macOS for unknown keys."""
        return self.script(
            "sysctl",
            '[ "$1" = "-n" ] || { echo "usage: sysctl -n KEY" >&2; exit 2; }\n'
            f"line=$(grep -m1 \"^$2=\" '{profile}') || {{ echo \"sysctl: unknown oid '$2'\" >&2; exit 1; }}\n"
            'printf "%s\\n" "${line#*=}"\n',
        )

    def use_tree(self, tree: Path) -> None:
        """Lay a recorded sysfs/proc tree over the root."""
        shutil.copytree(tree, self.root, dirs_exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:{SYSTEM_PATH}",
            "INGOT_SYSFS_ROOT": str(self.root),
            "INGOT_PLATFORM": self.platform,
            "INGOT_NVML": "0",
            **self.extra_env,
            **extra,
        }


def make_host(folder: Path) -> FakeHost:
    """Every fake host starts as the recorded CPU-only machine; tests lay GPU trees and tools over it."""
    root = folder / "root"
    shutil.copytree(DATA / "cpu-only-cgroup-v2", root)
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    return FakeHost(root=root, bin=bin_dir)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return make_host(tmp_path)


@pytest.fixture(scope="session")
def real_engine() -> EngineSupport:
    """The installed llama-cpp-python, probed for real in a child process (once per session)."""
    return probe_engine()
