"""A store opened read-only (an image volume, a read-only PVC): every read works, every write is refused, nothing changes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from read_only import made_read_only, write_guard_env

from ingot.modelfile import parse
from ingot.registry.errors import ReadOnlyStoreError
from ingot.registry.package import build_package, load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store, is_read_only_path

REF = Reference.parse("team/m:1")


@pytest.fixture
def filled(tmp_path: Path, small_model: Path) -> Path:
    root = tmp_path / "models"
    (tmp_path / "w.gguf").write_bytes(small_model.read_bytes())
    build_package(Store(root), parse("FROM ./w.gguf\nLICENSE MIT\n"), tmp_path, ref=REF, env={})
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under root with its mode and content hash (folders: '')."""
    out = {}
    for path in sorted(root.rglob("*")):
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(root))] = (path.stat().st_mode, content)
    return out


def test_reads_work_and_every_write_is_refused_without_a_trace(filled: Path, tmp_path: Path) -> None:
    before = _snapshot(filled)
    store = Store(filled, read_only=True)
    assert [t.reference for t in store.list_tags()] == [REF]
    package = load_package(store, REF)
    assert package.licenses == ("MIT",)
    descriptor = store.resolve(REF)
    assert descriptor is not None
    (tmp_path / "new.bin").write_bytes(b"new")

    writes = [
        lambda: store.ingest_bytes(b"not in the store yet"),
        lambda: store.ingest_file(tmp_path / "new.bin"),
        lambda: store.tag(Reference.parse("other"), descriptor),
        lambda: store.untag(REF),
        lambda: store.gc(),
        lambda: store.blob_writer("sha256:" + "ab" * 32, 3).__enter__(),
    ]
    for write in writes:
        with pytest.raises(ReadOnlyStoreError, match="is read-only"):
            write()
    assert _snapshot(filled) == before


def test_a_read_only_store_that_does_not_exist_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "absent" / "models", read_only=True)
    assert store.list_tags() == [] and store.resolve(REF) is None
    assert not (tmp_path / "absent").exists()


def test_nothing_is_opened_for_writing_while_reading(filled: Path, tmp_path: Path) -> None:
    # In a child under the write guard: root ignores permission bits, the guard does not.
    report = tmp_path / "writes.txt"
    script = (
        "import sys; from ingot.registry.store import Store; from ingot.registry.package import load_package;"
        "from ingot.registry.reference import Reference;"
        "s = Store(sys.argv[1], read_only=True); p = load_package(s, Reference.parse('team/m:1'));"
        "open(p.weights, 'rb').read(16); print(len(s.list_tags()))"
    )
    env = {**os.environ, **write_guard_env(filled, report)}
    done = subprocess.run([sys.executable, "-c", script, str(filled)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert not report.exists(), report.read_text()
    # The guard itself works: a store opened for writing is stopped by it.
    script = "import sys; from ingot.registry.store import Store; Store(sys.argv[1]).ingest_bytes(b'x')"
    refused = subprocess.run([sys.executable, "-c", script, str(filled)], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "test write guard" in refused.stderr
    assert report.read_text().strip()


def test_a_read_only_mount_is_recognised(filled: Path) -> None:
    assert not is_read_only_path(filled)
    with made_read_only(filled) as how:
        if how is None:
            pytest.skip("neither a read-only bind mount nor chmod can make a folder read-only here")
        assert is_read_only_path(filled)
        assert is_read_only_path(filled / "blobs" / "not-yet")  # judged by its nearest existing folder
        store = Store(filled)  # not asked: the mount says so
        assert store.read_only
        assert load_package(store, REF).reference == REF
        with pytest.raises(ReadOnlyStoreError):
            store.untag(REF)
    assert not is_read_only_path(filled)
