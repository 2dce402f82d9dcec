"""Dropped connections, corrupted bytes and overloaded registries, injected by a loopback proxy."""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import pytest
import requests

from oci_fault_proxy import FaultProxy
from oci_packages import Layer, gguf_weights, raw_package
from ingot.registry import mediatypes as mt
from ingot.registry.digest import digest_hex
from ingot.registry.errors import DigestMismatchError
from ingot.registry.oci import ClientOptions, RegistryConnectionError, RetryPolicy, Timeouts, pull, push
from ingot.registry.oci.download import _body_readinto
from ingot.registry.package import load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Descriptor, Store
from oci_registry_server import RegistryProcess

BLOB_SIZE = 4 * 1024 * 1024
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
NO_RETRY = RetryPolicy(attempts=1)


def _weights_package(store: Store, ref: Reference, data: bytes) -> Descriptor:
    """A ModelPack package whose single raw weight layer is `data` (a GGUF, checked on pull)."""
    return raw_package(
        store, ref,
        config_media_type=mt.MODEL_CONFIG,
        config={"descriptor": {}, "config": {"format": "gguf"}, "modelfs": {"type": "layers", "diffIds": []}},
        layers=[Layer(mt.MODEL_WEIGHT_RAW, data, {mt.ANNOTATION_FILEPATH: "model.gguf"})],
        artifact_type=mt.MODEL_ARTIFACT,
    )


@pytest.fixture
def published(registry: RegistryProcess, store: Store, tiny_gguf: Path,
              request: pytest.FixtureRequest) -> tuple[str, bytes]:
    """A 4 MiB-weight package pushed straight to the registry; returns (repository path, weights)."""
    data = gguf_weights(tiny_gguf, BLOB_SIZE)
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60].strip("-")  # parametrized: "...[cut]"
    path = f"faults/{name}:1"
    _weights_package(store, Reference.parse(f"{registry.host}/{path}"), data)
    push(store, f"{registry.host}/{path}")
    return path, data


def _weights_digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


# A connection the registry drops (cut) or leaves open but silent (stall: only the read timeout notices).
BROKEN_CONNECTIONS = ["cut", "stall"]
SHORT_TIMEOUTS = Timeouts(connect=5.0, read=1.0)


@pytest.mark.parametrize("fault", BROKEN_CONNECTIONS)
def test_broken_download_is_resumed_within_the_same_pull(
    fault: str, fault_proxy: FaultProxy, published: tuple[str, bytes], other_store: Store
) -> None:
    path, data = published
    getattr(fault_proxy, fault)(after=BLOB_SIZE // 2)
    result = pull(other_store, f"{fault_proxy.host}/{path}",
                  options=ClientOptions(retry=FAST_RETRY, timeouts=SHORT_TIMEOUTS))
    assert fault_proxy.faults_fired == 1
    # Resumed with Range, not started over: starting over would cost the half before the break
    # plus a whole copy (1.5x); a resume re-reads at most the one block in flight when it broke.
    assert fault_proxy.bytes_down < BLOB_SIZE * 1.45
    assert other_store.read_blob(_weights_digest(data)) == data
    assert load_package(other_store, Reference.parse(f"{fault_proxy.host}/{path}")).digest == result.digest


def test_blob_body_is_read_straight_into_the_buffer(registry: RegistryProcess, published: tuple[str, bytes]) -> None:
    # The pull reads bodies through http.client under urllib3, into its own buffer (one copy fewer). Should a
    # urllib3 release change what lies beneath, the pull silently takes the slower path: this test says so.
    path, data = published
    url = f"{registry.url}/v2/{path.split(':')[0]}/blobs/{_weights_digest(data)}"
    with requests.get(url, stream=True, timeout=30) as response:
        readinto = _body_readinto(response)
        assert isinstance(getattr(readinto, "__self__", None), http.client.HTTPResponse)
        buffer, received = bytearray(1 << 20), bytearray()
        while n := readinto(buffer):
            received += buffer[:n]
    assert bytes(received) == data


def test_rerun_after_a_failed_pull_continues_from_the_partial_file(
    fault_proxy: FaultProxy, published: tuple[str, bytes], other_store: Store
) -> None:
    path, data = published
    ref = f"{fault_proxy.host}/{path}"
    digest = _weights_digest(data)
    fault_proxy.cut(after=BLOB_SIZE // 2)
    with pytest.raises(RegistryConnectionError, match="cannot reach|closed|Error"):
        pull(other_store, ref, options=ClientOptions(retry=NO_RETRY, parallel=1))
    partial = other_store.partial_dir / digest_hex(digest)
    left_behind = partial.stat().st_size
    assert 0 < left_behind < BLOB_SIZE
    assert not other_store.has_blob(digest)
    assert other_store.resolve(Reference.parse(ref)) is None

    fault_proxy.reset_counters()
    result = pull(other_store, ref, options=ClientOptions(retry=NO_RETRY))
    assert result.bytes_resumed == left_behind
    # Only the rest of the weights came over the wire (the config landed in the first run).
    assert result.bytes_transferred == BLOB_SIZE - left_behind
    assert fault_proxy.bytes_down < BLOB_SIZE
    assert other_store.read_blob(digest) == data
    assert not partial.exists()


def test_corrupted_blob_is_refused_and_nothing_is_stored(
    fault_proxy: FaultProxy, published: tuple[str, bytes], other_store: Store
) -> None:
    path, data = published
    ref = f"{fault_proxy.host}/{path}"
    digest = _weights_digest(data)
    fault_proxy.corrupt(after=BLOB_SIZE // 3)
    with pytest.raises(DigestMismatchError, match="does not match"):
        pull(other_store, ref, options=ClientOptions(retry=FAST_RETRY))
    assert fault_proxy.faults_fired == 1
    assert not other_store.has_blob(digest)
    assert not (other_store.partial_dir / digest_hex(digest)).exists()
    assert other_store.resolve(Reference.parse(ref)) is None


def test_overloaded_registry_is_retried_with_retry_after(
    fault_proxy: FaultProxy, published: tuple[str, bytes], other_store: Store
) -> None:
    path, _ = published
    fault_proxy.refuse(2, status=503, retry_after="0")
    result = pull(other_store, f"{fault_proxy.host}/{path}", options=ClientOptions(retry=FAST_RETRY))
    assert fault_proxy.refused == 2
    assert result.blobs_transferred == result.blobs_total


def test_registry_that_stays_overloaded_fails_with_one_clear_error(
    fault_proxy: FaultProxy, published: tuple[str, bytes], other_store: Store
) -> None:
    path, _ = published
    fault_proxy.refuse(10, status=429, retry_after="0")
    with pytest.raises(RegistryConnectionError, match="HTTP 429"):
        pull(other_store, f"{fault_proxy.host}/{path}", options=ClientOptions(retry=RetryPolicy(attempts=3)))
    assert fault_proxy.refused == 3
    assert other_store.list_tags() == []


@pytest.mark.parametrize("fault", BROKEN_CONNECTIONS)
def test_upload_broken_mid_chunk_is_sent_again_and_lands_intact(
    fault: str, fault_proxy: FaultProxy, registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path
) -> None:
    data = gguf_weights(tiny_gguf, BLOB_SIZE)
    ref = Reference.parse(f"{fault_proxy.host}/faults/upload-{fault}:1")
    _weights_package(store, ref, data)
    # A stalled upload: the registry stops reading, the client's send blocks until the read timeout.
    getattr(fault_proxy, fault)(after=BLOB_SIZE // 2 + 1000, direction="up")
    options = ClientOptions(retry=FAST_RETRY, chunk_size=512 * 1024, timeouts=SHORT_TIMEOUTS)
    result = push(store, ref, options=options)
    assert fault_proxy.faults_fired == 1
    # distribution 2.8 invalidates an upload session whose PATCH broke off
    # (BLOB_UPLOAD_INVALID on the status GET), so the upload starts over once;
    # registries that report the offset continue from it instead.
    assert BLOB_SIZE < result.bytes_transferred < 2 * BLOB_SIZE
    direct = pull(other_store, f"{registry.host}/faults/upload-{fault}:1")
    assert direct.digest == result.digest
    assert other_store.read_blob(_weights_digest(data)) == data
