"""Make a folder read-only for a test, the strongest way this machine allows.

Root ignores permission bits, so for root only a read-only bind mount stops a
write (`mount --bind` + `mount -o remount,ro,bind`); other users get
`chmod -R a-w`. `made_read_only()` yields which one it used ("mount",
"chmod"), or None where neither can hold (root without mount rights): the
caller then relies on its write guard alone (tests/support/write_guard).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["made_read_only", "write_guard_env"]

GUARD_DIR = Path(__file__).parent / "write_guard"


def _mount(*args: str) -> bool:
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def _chmod_tree(root: Path, *, writable: bool) -> None:
    bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod((mode | stat.S_IWUSR) if writable else (mode & ~bits))
    mode = root.stat().st_mode
    root.chmod((mode | stat.S_IWUSR) if writable else (mode & ~bits))


@contextmanager
def made_read_only(path: Path) -> Iterator[str | None]:
    if os.geteuid() == 0:
        if not _mount("--bind", str(path), str(path)):
            yield None
            return
        try:
            if not _mount("-o", "remount,ro,bind", str(path)):
                yield None
                return
            yield "mount"
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
        return
    _chmod_tree(path, writable=False)
    try:
        yield "chmod"
    finally:
        _chmod_tree(path, writable=True)


def write_guard_env(guarded: Path, report: Path) -> dict[str, str]:
    """Environment for a Python child that must not write under `guarded` (see write_guard/sitecustomize.py)."""
    return {
        "PYTHONPATH": str(GUARD_DIR),
        "INGOT_TEST_GUARD_DIR": str(guarded),
        "INGOT_TEST_GUARD_REPORT": str(report),
    }
