"""Test-only: refuse, and record, every write a Python process attempts under $INGOT_TEST_GUARD_DIR.

Loaded through PYTHONPATH into `ingot serve` and the runners it starts (they
inherit the environment). An audit hook (PEP 578) sees every open() and
os.open() with its flags, and the os calls that change a folder; one that
would write under the guarded folder gets EROFS, as on a read-only mount, and
a line in $INGOT_TEST_GUARD_REPORT. Root ignores permission bits, so this is
what shows that serving *opens nothing for writing*, whether or not a
read-only bind mount could be made as well.
"""

from __future__ import annotations

import errno
import os
import sys

_GUARDED = os.environ.get("INGOT_TEST_GUARD_DIR")
_REPORT = os.environ.get("INGOT_TEST_GUARD_REPORT")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Events whose path arguments (by position) are changed, never only read.
_CHANGES = {
    "os.mkdir": (0,), "os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (1,), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (0, 1),
}  # fmt: skip


def _install(guarded: str, report: str) -> None:
    root = os.path.realpath(guarded)

    def inside(path: object) -> bool:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, (str, os.PathLike)):
            return False  # a file descriptor: opened earlier, and that open was checked
        full = os.path.realpath(os.fspath(path))
        return full == root or full.startswith(root + os.sep)

    def refuse(event: str, path: object) -> None:
        with open(report, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {event} {os.fspath(path) if not isinstance(path, int) else path}\n")
        raise OSError(errno.EROFS, "read-only file system (test write guard)", os.fspath(path))

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writes and inside(path):
                refuse(event, path)
        elif event in _CHANGES:
            for index in _CHANGES[event]:
                if index < len(args) and inside(args[index]):
                    refuse(event, args[index])

    sys.addaudithook(hook)


if _GUARDED and _REPORT:
    _install(_GUARDED, _REPORT)
