"""`ingest_file` on a filesystem that clones (XFS with reflink): the blob is a copy-on-write clone.

The test mounts a small XFS image on a loop device, so it needs root and
`mkfs.xfs` (scripts/setup --test installs xfsprogs); elsewhere it skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingot.registry.store import Store

# mkfs.xfs refuses filesystems under 300 MiB; the image file is sparse.
_IMAGE_BYTES = 320 * 1024 * 1024
_WEIGHTS_BYTES = 32 * 1024 * 1024


def _skip(reason: str) -> None:
    pytest.skip(f"reflink filesystem unavailable: {reason}")


@pytest.fixture(scope="module")
def xfs_mount() -> Iterator[Path]:
    """A freshly made XFS filesystem (reflink on, the default), mounted through a loop device."""
    mkfs = shutil.which("mkfs.xfs", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if mkfs is None:
        _skip("mkfs.xfs is not installed (apt-get install xfsprogs)")
    if os.geteuid() != 0:
        _skip("mounting a loop device needs root")
    with tempfile.TemporaryDirectory(prefix="ingot-xfs-") as folder:
        image, mountpoint = Path(folder) / "xfs.img", Path(folder) / "mnt"
        mountpoint.mkdir()
        with open(image, "wb") as f:
            f.truncate(_IMAGE_BYTES)
        made = subprocess.run([mkfs, "-q", str(image)], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            _skip(f"mkfs.xfs failed: {made.stderr.strip()}")
        mount = ["mount", "-o", "loop", str(image), str(mountpoint)]
        mounted = subprocess.run(mount, capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            _skip(f"mount -o loop failed: {mounted.stderr.strip()}")
        try:
            yield mountpoint
        finally:
            # A busy mount (a test that failed holding a file) is detached lazily rather than left behind.
            if subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


def _used_bytes(path: Path) -> int:
    fs = os.statvfs(path)
    return (fs.f_blocks - fs.f_bfree) * fs.f_frsize


def test_ingest_clones_without_a_second_copy_or_touching_the_source(xfs_mount: Path) -> None:
    store = Store(xfs_mount / "store")
    source = xfs_mount / "model.gguf"
    original = os.urandom(_WEIGHTS_BYTES)
    source.write_bytes(original)
    os.sync()
    used_before = _used_bytes(xfs_mount)

    descriptor = store.ingest_file(source, link=True)
    os.sync()

    blob = store.blob_path(descriptor.digest)
    assert descriptor.size == _WEIGHTS_BYTES
    # A clone, not a hardlink: its own inode, and the user's file keeps its one name and its write bits.
    assert blob.stat().st_ino != source.stat().st_ino
    assert source.stat().st_nlink == 1
    assert os.access(source, os.W_OK)
    # The clone shares the extents: far less new space than a copy of the weights.
    assert _used_bytes(xfs_mount) - used_before < _WEIGHTS_BYTES // 4
    # Nothing to watch for in-place edits, unlike a hardlink (whose size and mtime go to .links/).
    assert not store.links_dir.exists() or not any(store.links_dir.iterdir())

    # Editing the user's file in place never reaches the blob (copy on write).
    with open(source, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 4096)
    assert store.read_blob(descriptor.digest) == original
    assert store.verified_blob_path(descriptor.digest, descriptor.size) == blob
