"""Where every probe reads from: one injectable bundle built once from the environment.

Tests (and "what would this box see" experiments) point the probes somewhere else
without touching the code paths: ``INGOT_SYSFS_ROOT`` re-roots every sysfs and
/proc read, ``PATH`` decides which ``nvidia-smi`` / ``rocm-smi`` / ``sysctl`` runs,
``INGOT_PLATFORM`` (``System/machine``, e.g. ``Darwin/arm64``) overrides what
``platform`` reports, and ``INGOT_NVML`` (``0`` to disable, or a library path)
controls the NVML probe. The environment is read here, once, and nowhere else.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_NVML_LIBRARY = "libnvidia-ml.so.1"
_OFF_VALUES = {"0", "off", "false", "no", "none", ""}


class ProbeError(Exception):
    """A probe that failed or timed out; detection records the message and moves on."""


@dataclass(frozen=True)
class ProbeSources:
    """Injectable inputs for every hardware probe."""

    root: Path = Path("/")
    search_path: str = ""
    system: str = "Linux"
    machine: str = "x86_64"
    nvml_library: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, timeout_s: float = DEFAULT_TIMEOUT_S) -> ProbeSources:
        snapshot = MappingProxyType(dict(env))
        system, machine = platform.system(), platform.machine()
        override = snapshot.get("INGOT_PLATFORM", "").strip()
        if override:
            system, _, machine = override.partition("/")
            machine = machine or ("arm64" if system == "Darwin" else "x86_64")
        nvml_setting = snapshot.get("INGOT_NVML")
        if nvml_setting is None:
            nvml_library = DEFAULT_NVML_LIBRARY if system == "Linux" else None
        elif nvml_setting.strip().lower() in _OFF_VALUES:
            nvml_library = None
        elif nvml_setting.strip().lower() in {"1", "on", "true", "yes"}:
            nvml_library = DEFAULT_NVML_LIBRARY
        else:
            nvml_library = nvml_setting.strip()
        return cls(
            root=Path(snapshot.get("INGOT_SYSFS_ROOT") or "/"),
            search_path=snapshot.get("PATH", os.defpath),
            system=system,
            machine=machine,
            nvml_library=nvml_library,
            timeout_s=timeout_s,
            env=snapshot,
        )

    @property
    def is_real_root(self) -> bool:
        return self.root.resolve() == Path("/")

    def path(self, absolute: str) -> Path:
        """Map an absolute host path (``/proc/meminfo``) under the injected root."""
        return self.root / absolute.lstrip("/")

    def read_text(self, absolute: str) -> str | None:
        """The file's text, or None when it does not exist or cannot be read (sysfs files come and go)."""
        try:
            return self.path(absolute).read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
            return None
        except OSError:
            # Some sysfs attributes raise EIO/ENODEV when the device is asleep or gone.
            return None

    def read_int(self, absolute: str, *, base: int = 10) -> int | None:
        text = self.read_text(absolute)
        if text is None:
            return None
        try:
            return int(text.strip(), base)
        except ValueError:
            return None

    def glob(self, pattern: str) -> list[Path]:
        """Glob an absolute pattern under the root, sorted for stable order."""
        return sorted(self.root.glob(pattern.lstrip("/")))

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self.search_path)

    def run(self, argv: Sequence[str], *, timeout_s: float | None = None) -> str:
        """Run a probe command found on the injected PATH; its stdout, or ProbeError (never hangs)."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            done = run_bounded(argv, timeout_s=limit, env=self.env or None)
        except subprocess.TimeoutExpired:
            raise ProbeError(f"`{_show(argv)}` did not answer within {limit:g} s") from None
        except OSError as exc:
            raise ProbeError(f"`{_show(argv)}` could not run: {exc.strerror or exc}") from None
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
            raise ProbeError(f"`{_show(argv)}` exited with status {done.returncode}: {detail[0] if detail else ''}")
        return done.stdout


def run_bounded(
    argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` capturing text output; on timeout kill its whole process group and raise TimeoutExpired.

    Killing only the direct child is not enough: a grandchild (a shell script's
    ``sleep``, a driver helper) keeps the output pipes open and the read blocks.
    """
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone


def _show(argv: Sequence[str]) -> str:
    shown = [os.path.basename(argv[0]), *argv[1:]]
    return " ".join(shown)
