"""The local store: OCI layout, atomic verified blobs, hardlink/copy ingest, resumable writers, tags, locks, gc."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ingot.registry import mediatypes as mt
from ingot.registry.digest import Progress, digest_bytes
from ingot.registry.errors import (
    BlobModifiedError,
    BlobNotFoundError,
    DigestError,
    DigestMismatchError,
    LockTimeoutError,
)
from ingot.registry.reference import Reference
from ingot.registry.store import Descriptor, Store

HEX_LEN = 64


def sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def assert_store_consistent(store: Store) -> None:
    """What an OCI tool relies on: every blob hashes to its name; every tag's manifest and its parts exist."""
    layout = json.loads((store.root / "oci-layout").read_text())
    assert layout == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(store.index_path.read_text())
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == mt.OCI_INDEX
    for path in store.blobs_dir.iterdir():
        if len(path.name) == HEX_LEN:
            assert sha256_file(path) == f"sha256:{path.name}", f"corrupt blob {path.name}"
    for entry in index["manifests"]:
        manifest_path = store.blob_path(entry["digest"])
        assert manifest_path.is_file(), f"dangling tag {entry}"
        assert manifest_path.stat().st_size == entry["size"]
        manifest = json.loads(manifest_path.read_bytes())
        for part in [manifest["config"], *manifest["layers"]]:
            assert store.blob_path(part["digest"]).stat().st_size == part["size"]


def write_random(path: Path, size: int, seed: int = 0) -> Path:
    # Deterministic, incompressible-ish content without a big allocation per call.
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    with path.open("wb") as f:
        written = 0
        counter = 0
        while written < size:
            chunk = hashlib.sha256(block + counter.to_bytes(8, "little")).digest() + block[: 65536 - 32]
            chunk = chunk[: size - written]
            f.write(chunk)
            written += len(chunk)
            counter += 1
    return path


def put_manifest(store: Store, layers: list[bytes]) -> Descriptor:
    """A small OCI manifest with the given layer contents, stored; returns its descriptor."""
    config = store.ingest_bytes(b"{}", media_type=mt.MODEL_CONFIG)
    layer_descs = [store.ingest_bytes(data, media_type=mt.MODEL_DOC_RAW) for data in layers]
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [d.to_json() for d in layer_descs],
    }
    data = json.dumps(manifest, sort_keys=True).encode()
    return store.ingest_bytes(data, media_type=mt.OCI_MANIFEST)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "home" / "models")


# ---------------------------------------------------------------------------
# layout and blobs


def test_new_store_is_an_empty_oci_layout(store: Store) -> None:
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(store.index_path.read_text())
    assert index == {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    assert store.blobs_dir == store.root / "blobs" / "sha256"
    assert store.list_tags() == []


def test_reopening_a_store_keeps_its_index(store: Store) -> None:
    desc = put_manifest(store, [b"a"])
    store.tag(Reference.parse("m"), desc)
    again = Store(store.root)
    assert again.resolve(Reference.parse("m")) is not None


def test_ingest_bytes_stores_a_read_only_verified_blob(store: Store) -> None:
    desc = store.ingest_bytes(b"hello", media_type="text/plain")
    assert desc == Descriptor("text/plain", digest_bytes(b"hello"), 5)
    path = store.blob_path(desc.digest)
    assert path.read_bytes() == b"hello"
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    assert store.ingest_bytes(b"hello").digest == desc.digest
    assert store.read_blob(desc.digest) == b"hello"
    assert [p.name for p in store.blobs_dir.iterdir()] == [desc.digest.split(":")[1]]


@pytest.mark.parametrize(
    "bad",
    ["sha256:../../../etc/passwd", "sha256:" + "A" * 64, "sha512:" + "a" * 128, "a" * 64, "sha256:" + "a" * 63, ""],
)
def test_digests_are_validated_before_any_path_is_built(store: Store, bad: str) -> None:
    with pytest.raises(DigestError):
        store.blob_path(bad)
    with pytest.raises(DigestError):
        store.has_blob(bad)
    with pytest.raises(DigestError):
        Descriptor(mt.OCI_MANIFEST, bad, 1)
    with pytest.raises(DigestError):
        with store.blob_writer(bad, 1):
            pass


def test_read_blob_detects_corruption(store: Store) -> None:
    desc = store.ingest_bytes(b"payload")
    path = store.blob_path(desc.digest)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(DigestMismatchError, match="corrupt"):
        store.read_blob(desc.digest)
    with pytest.raises(BlobNotFoundError):
        store.read_blob(digest_bytes(b"never stored"))


def test_ingest_file_hardlinks_after_one_read_and_protects_the_shared_inode(store: Store, tmp_path: Path) -> None:
    src = write_random(tmp_path / "weights.gguf", 3 * (1 << 20) + 123)
    events: list[Progress] = []
    desc = store.ingest_file(src, progress=events.append)
    assert desc.digest == sha256_file(src)
    assert desc.size == src.stat().st_size
    blob = store.blob_path(desc.digest)
    assert blob.stat().st_ino == src.stat().st_ino  # no second copy on disk
    assert stat.S_IMODE(src.stat().st_mode) & 0o222 == 0  # in-place edits now fail for non-root users
    # One pass: byte counts only grow, and end at the size.
    hashed = [e.completed for e in events if e.status == "hashing"]
    assert hashed == sorted(hashed) and hashed[-1] == desc.size
    assert len(hashed) == -(-desc.size // (1 << 20))
    assert events[-1] == Progress("stored", desc.digest, desc.size, desc.size)
    assert store.verified_blob_path(desc.digest, desc.size) == blob
    assert not list(store.blobs_dir.glob("*.incomplete"))


def test_removing_a_hardlinked_blob_gives_the_user_file_its_write_bits_back(store: Store, tmp_path: Path) -> None:
    src = write_random(tmp_path / "w.gguf", 100_000)
    src.chmod(0o640)
    desc = store.ingest_file(src)
    assert stat.S_IMODE(src.stat().st_mode) == 0o440
    store.gc()  # nothing tags the blob: it goes, and the file is the user's alone again
    assert not store.has_blob(desc.digest)
    assert stat.S_IMODE(src.stat().st_mode) == 0o640
    assert src.stat().st_nlink == 1
    # While a second store still shares the inode, the protection stays.
    store.ingest_file(src)
    other = Store(tmp_path / "other" / "models")
    other.ingest_file(src)
    store.gc()
    assert src.stat().st_nlink == 2
    assert stat.S_IMODE(src.stat().st_mode) == 0o440


def test_edit_of_a_hardlinked_source_is_caught_on_use(store: Store, tmp_path: Path) -> None:
    src = write_random(tmp_path / "w.gguf", 200_000)
    desc = store.ingest_file(src)
    # A touch alone (same bytes, new mtime) is re-verified and accepted.
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    assert store.verified_blob_path(desc.digest) == store.blob_path(desc.digest)
    # An in-place edit (root ignores the read-only bit; others would chmod first) is refused.
    src.chmod(0o644)
    with src.open("r+b") as f:
        f.seek(1000)
        f.write(b"\xff" * 16)
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10_000_000_000))
    with pytest.raises(BlobModifiedError, match="w.gguf"):
        store.verified_blob_path(desc.digest)


def test_ingest_file_copy_mode_leaves_the_source_alone(store: Store, tmp_path: Path) -> None:
    src = write_random(tmp_path / "w.gguf", 1_500_000, seed=3)
    src.chmod(0o644)
    events: list[Progress] = []
    desc = store.ingest_file(src, link=False, progress=events.append)
    blob = store.blob_path(desc.digest)
    assert blob.stat().st_ino != src.stat().st_ino
    assert blob.read_bytes() == src.read_bytes()
    assert stat.S_IMODE(src.stat().st_mode) == 0o644
    assert [e.completed for e in events if e.status == "copying"][-1] == desc.size
    # Editing the source now cannot touch the blob.
    src.write_bytes(b"changed")
    assert store.verified_blob_path(desc.digest) == blob
    assert sha256_file(blob) == desc.digest


def test_ingest_file_across_filesystems_copies(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev or not os.access(shm, os.W_OK):
        pytest.skip("needs a second, writable filesystem at /dev/shm")
    store = Store(tmp_path / "models")
    src = write_random(shm / f"ingot-test-{os.getpid()}.bin", 300_000)
    try:
        desc = store.ingest_file(src)
        assert store.blob_path(desc.digest).read_bytes() == src.read_bytes()
        assert store.blob_path(desc.digest).stat().st_dev != src.stat().st_dev
    finally:
        src.unlink()


def test_ingest_file_move_takes_over_a_scratch_file(store: Store) -> None:
    scratch = write_random(store.tmp_dir / "q.gguf", 100_000)
    digest = sha256_file(scratch)
    desc = store.ingest_file(scratch, move=True)
    assert desc.digest == digest
    assert not scratch.exists()
    assert not store._link_record_path(digest).exists()
    assert store.blob_path(digest).stat().st_nlink == 1


def test_ingest_of_a_present_blob_changes_nothing(store: Store, tmp_path: Path) -> None:
    src = write_random(tmp_path / "w.gguf", 50_000)
    first = store.ingest_file(src, link=False)
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(src.read_bytes())
    second = store.ingest_file(copy)
    assert second == first
    assert copy.stat().st_nlink == 1  # the existing blob was reused, not relinked


# ---------------------------------------------------------------------------
# BlobWriter


def test_blob_writer_resumes_across_sessions(store: Store) -> None:
    data = os.urandom(300_000)
    digest = digest_bytes(data)
    with store.blob_writer(digest, len(data)) as writer:
        assert writer.offset == 0 and not writer.exists
        writer.write(data[:120_000])
    assert (store.partial_dir / digest.split(":")[1]).stat().st_size == 120_000
    assert not store.has_blob(digest)
    with store.blob_writer(digest, len(data)) as writer:
        assert writer.offset == 120_000
        writer.write(data[writer.offset :])
        desc = writer.commit(media_type=mt.MODEL_WEIGHT_RAW)
    assert desc == Descriptor(mt.MODEL_WEIGHT_RAW, digest, len(data))
    assert store.read_blob(digest) == data
    assert not (store.partial_dir / digest.split(":")[1]).exists()
    with store.blob_writer(digest, len(data)) as writer:
        assert writer.exists and writer.offset == len(data)
        assert writer.commit().digest == digest


def test_blob_writer_reset_starts_over(store: Store) -> None:
    data = b"x" * 1000
    digest = digest_bytes(data)
    with store.blob_writer(digest, len(data)) as writer:
        writer.write(b"garbage")
        writer.reset()
        assert writer.offset == 0
        writer.write(data)
        writer.commit()
    assert store.read_blob(digest) == data


def test_blob_writer_mismatch_deletes_the_partial_and_publishes_nothing(store: Store) -> None:
    data = b"expected content"
    digest = digest_bytes(data)
    partial = store.partial_dir / digest.split(":")[1]
    with store.blob_writer(digest, len(data)) as writer:
        writer.write(b"unexpected data!")
        with pytest.raises(DigestMismatchError, match="received content hashing to"):
            writer.commit()
    assert not partial.exists() and not store.has_blob(digest)
    with store.blob_writer(digest, len(data)) as writer:
        writer.write(data[:4])
        with pytest.raises(DigestMismatchError, match="received 4 bytes"):
            writer.commit()
    assert not partial.exists()
    with store.blob_writer(digest, len(data)) as writer:
        with pytest.raises(DigestMismatchError, match="larger than"):
            writer.write(data + b"extra")
    assert not partial.exists() and not store.has_blob(digest)


def test_blob_writer_large_blocks_hash_in_order_with_small_ones(store: Store) -> None:
    # Blocks of 256 KiB and more are hashed in a second thread while being written: the digest must still
    # cover every byte in order, across a mix of block sizes, a resume, a reset and a corrupted block.
    data = os.urandom(5 * 1024 * 1024 + 12_345)
    digest = digest_bytes(data)
    cuts = [0, 1024 * 1024, 1024 * 1024 + 10, 3 * 1024 * 1024, len(data)]
    with store.blob_writer(digest, len(data)) as writer:
        writer.write(data[cuts[0] : cuts[1]])
        writer.write(data[cuts[1] : cuts[2]])
    with store.blob_writer(digest, len(data)) as writer:  # resumed: the partial file is hashed again on open
        assert writer.offset == cuts[2]
        writer.write(memoryview(data)[cuts[2] : cuts[3]])
        writer.write(memoryview(data)[cuts[3] : cuts[4]])
        writer.commit()
    assert store.read_blob(digest) == data

    other = os.urandom(2 * 1024 * 1024)
    other_digest = digest_bytes(other)
    flipped = bytearray(other)
    flipped[1_500_000] ^= 0x01
    with store.blob_writer(other_digest, len(other)) as writer:
        writer.write(other[: 1024 * 1024])
        writer.reset()
        writer.write(bytes(flipped))
        with pytest.raises(DigestMismatchError, match="received content hashing to"):
            writer.commit()
    assert not store.has_blob(other_digest)


_CHILD_PRELUDE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ingot.registry.store import Store
    store = Store(Path(sys.argv[1]))
    """
)


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD_PRELUDE + textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_blob_writer_holds_a_per_digest_lock_across_processes(store: Store) -> None:
    data = b"locked"
    digest = digest_bytes(data)
    other = digest_bytes(b"other")
    script = """
        from ingot.registry.errors import LockTimeoutError
        try:
            with store.blob_writer(sys.argv[2], 6, timeout=0.3):
                print("acquired")
        except LockTimeoutError:
            print("timeout")
    """
    with store.blob_writer(digest, len(data)):
        blocked = _child(script, str(store.root), digest)
        free = _child(script, str(store.root), other)
        assert blocked.communicate(timeout=60)[0].strip() == "timeout"
        assert free.communicate(timeout=60)[0].strip() == "acquired"
    again = _child(script, str(store.root), digest)
    assert again.communicate(timeout=60)[0].strip() == "acquired"


# ---------------------------------------------------------------------------
# tags


def test_tag_resolve_list_untag(store: Store) -> None:
    a = put_manifest(store, [b"one"])
    b = put_manifest(store, [b"two"])
    store.tag(Reference.parse("m"), a)
    store.tag(Reference.parse("me/m:v1"), b)
    assert store.resolve(Reference.parse("library/m:latest")).digest == a.digest
    assert store.resolve(Reference.parse("me/m:v1")).digest == b.digest
    assert store.resolve(Reference.parse("me/m:v2")) is None
    by_digest = store.resolve(Reference.parse(f"anything@{b.digest}"))
    assert by_digest is not None and by_digest.digest == b.digest and by_digest.media_type == mt.OCI_MANIFEST
    assert [str(t.reference) for t in store.list_tags()] == ["library/m:latest", "me/m:v1"]
    index = json.loads(store.index_path.read_text())
    names = {m["annotations"][mt.ANNOTATION_REF_NAME] for m in index["manifests"]}
    assert names == {"library/m:latest", "me/m:v1"}
    # Re-tagging moves the tag instead of adding a second entry.
    store.tag(Reference.parse("m"), b)
    assert store.resolve(Reference.parse("m")).digest == b.digest
    assert len(json.loads(store.index_path.read_text())["manifests"]) == 2
    removed = store.untag(Reference.parse("m"))
    assert removed is not None and removed.digest == b.digest
    assert store.untag(Reference.parse("m")) is None
    assert [str(t.reference) for t in store.list_tags()] == ["me/m:v1"]
    assert_store_consistent(store)


def test_tag_refuses_a_missing_manifest(store: Store) -> None:
    with pytest.raises(BlobNotFoundError):
        store.tag(Reference.parse("m"), Descriptor(mt.OCI_MANIFEST, digest_bytes(b"absent"), 6))
    assert store.list_tags() == []


def test_foreign_index_entries_survive_tagging(store: Store) -> None:
    foreign = put_manifest(store, [b"foreign"])
    index = json.loads(store.index_path.read_text())
    index["manifests"].append({**foreign.to_json(), "annotations": {mt.ANNOTATION_REF_NAME: "v1"}})
    index["manifests"].append(foreign.to_json())
    store.index_path.write_text(json.dumps(index))
    store.tag(Reference.parse("m"), put_manifest(store, [b"ours"]))
    entries = json.loads(store.index_path.read_text())["manifests"]
    assert len(entries) == 3
    assert [str(t.reference) for t in store.list_tags()] == ["library/m:latest"]
    assert store.gc().removed == ()  # the foreign manifests are roots too


def test_concurrent_taggers_lose_no_tag(store: Store) -> None:
    script = """
        from ingot.registry.reference import Reference
        import json
        from ingot.registry import mediatypes as mt
        n = sys.argv[2]
        for i in range(8):
            config = store.ingest_bytes(b"{}", media_type=mt.MODEL_CONFIG)
            layer = store.ingest_bytes(f"{n}-{i}".encode())
            manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config.to_json(),
                        "layers": [layer.to_json()]}
            desc = store.ingest_bytes(json.dumps(manifest).encode(), media_type=mt.OCI_MANIFEST)
            store.tag(Reference.parse(f"p{n}/m:t{i}"), desc)
    """
    children = [_child(script, str(store.root), str(n)) for n in range(4)]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    assert len(store.list_tags()) == 32
    assert_store_consistent(store)


# ---------------------------------------------------------------------------
# gc and crashes


def test_gc_removes_only_unreachable_blobs(store: Store, tmp_path: Path) -> None:
    shared_layer = b"shared weights"
    a = put_manifest(store, [shared_layer, b"only a"])
    b = put_manifest(store, [shared_layer, b"only b"])
    store.tag(Reference.parse("a"), a)
    store.tag(Reference.parse("b"), b)
    linked = store.ingest_file(write_random(tmp_path / "orphan.bin", 10_000))
    assert store._link_record_path(linked.digest).exists()
    result = store.gc()
    assert result.removed == (linked.digest,)
    assert not store._link_record_path(linked.digest).exists()
    store.untag(Reference.parse("a"))
    result = store.gc()
    assert set(result.removed) == {a.digest, digest_bytes(b"only a")}
    assert result.freed_bytes == a.size + len(b"only a")
    assert store.has_blob(digest_bytes(shared_layer))
    assert_store_consistent(store)
    store.untag(Reference.parse("b"))
    store.gc()
    assert [p for p in store.blobs_dir.iterdir()] == []


def test_gc_removes_stale_incomplete_files_only(store: Store) -> None:
    stale = store.blobs_dir / ("ab" * 32 + ".deadbeef.incomplete")
    fresh = store.blobs_dir / ("cd" * 32 + ".deadbeef.incomplete")
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    scratch = store.tmp_dir / "quantize-old.gguf"
    scratch.write_bytes(b"x")
    os.utime(scratch, (two_hours_ago, two_hours_ago))
    result = store.gc()
    assert not stale.exists() and fresh.exists()
    assert not scratch.exists()
    assert result.stale_files_removed == 2


def test_gc_waits_for_or_skips_active_writers(store: Store) -> None:
    desc = store.ingest_bytes(b"unreferenced")
    writer = _child(
        """
        with store.writing():
            print("writing", flush=True)
            sys.stdin.read()
        """,
        str(store.root),
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"
        result = store.gc(wait=False)
        assert result.skipped and store.has_blob(desc.digest)
    finally:
        writer.communicate("", timeout=60)
    result = store.gc(wait=False)
    assert not result.skipped and result.removed == (desc.digest,)


def test_sigkill_during_ingest_leaves_no_half_blob(store: Store, tmp_path: Path) -> None:
    src = write_random(tmp_path / "big.bin", 4 * (1 << 20))
    child = _child(
        """
        def stall(event):
            print("started", flush=True)
            sys.stdin.read()  # blocks until the parent kills us
        store.ingest_file(sys.argv[2], link=False, progress=stall)
        """,
        str(store.root),
        str(src),
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    leftovers = list(store.blobs_dir.glob("*.incomplete"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size == 1 << 20
    assert [p for p in store.blobs_dir.iterdir() if len(p.name) == HEX_LEN] == []
    assert_store_consistent(store)
    # The store works on, and gc clears the leftover once it is stale.
    desc = store.ingest_file(src, link=False)
    assert sha256_file(store.blob_path(desc.digest)) == desc.digest
    old = time.time() - 7200
    os.utime(leftovers[0], (old, old))
    store.gc()
    assert not leftovers[0].exists()


def test_lock_timeout_is_reported(store: Store) -> None:
    digest = digest_bytes(b"z")
    holder = _child(
        """
        with store.blob_writer(sys.argv[2], 1):
            print("holding", flush=True)
            sys.stdin.read()
        """,
        str(store.root),
        digest,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(LockTimeoutError, match="timed out"):
            with store.blob_writer(digest, 1, timeout=0.2):
                pass
    finally:
        holder.communicate("", timeout=60)
