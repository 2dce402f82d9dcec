"""Hostile or broken packages on a registry: refused with one clear error, nothing stored, no tag moved."""

from __future__ import annotations

import json
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from ingot.registry import mediatypes as mt
from ingot.registry.digest import digest_bytes
from ingot.registry.oci import (
    ClientOptions,
    ManifestRejectedError,
    RegistryConnectionError,
    RetryPolicy,
    UnsupportedFormatError,
    pull,
    push,
)
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from oci_fault_proxy import FaultProxy
from oci_packages import Layer, gguf_weights, ingot_package, ollama_package, raw_package
from oci_registry_server import RegistryProcess


def _assert_nothing_stored(store: Store) -> None:
    assert store.list_tags() == []
    assert list(store.blobs_dir.iterdir()) == []
    assert [p for p in store.partial_dir.iterdir() if not p.name.endswith(".lock")] == []


def _put_raw_manifest(registry: RegistryProcess, repository: str, tag: str, manifest: dict[str, object]) -> str:
    """PUT a manifest exactly as given (bypassing ingot's own checks) after uploading its config blob."""
    body = json.dumps(manifest).encode()
    reply = requests.put(f"{registry.url}/v2/{repository}/manifests/{tag}", data=body,
                         headers={"Content-Type": str(manifest["mediaType"])}, timeout=10)
    assert reply.status_code == 201, reply.text
    return digest_bytes(body)


def _upload(registry: RegistryProcess, repository: str, data: bytes) -> dict[str, object]:
    start = requests.post(f"{registry.url}/v2/{repository}/blobs/uploads/", timeout=10)
    assert start.status_code == 202
    location = start.headers["Location"]
    sep = "&" if "?" in location else "?"
    done = requests.put(f"{location}{sep}digest={digest_bytes(data)}", data=data, timeout=10)
    assert done.status_code == 201, done.text
    return {"digest": digest_bytes(data), "size": len(data)}


class _BigManifestServer:
    """A tiny registry impostor whose manifest is 5 MiB (real registries refuse to store one)."""

    def __init__(self, size: int) -> None:
        filler = "x" * size
        body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "annotations": {"pad": filler}}).encode()
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                del args

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", mt.OCI_MANIFEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        serve.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def big_manifest_server() -> Iterator[_BigManifestServer]:
    server = _BigManifestServer(5 * 1024 * 1024)
    yield server
    server.close()


def test_manifest_over_4_mib_is_refused(big_manifest_server: _BigManifestServer, store: Store) -> None:
    with pytest.raises(ManifestRejectedError, match="over the 4194304 byte limit"):
        pull(store, f"{big_manifest_server.host}/big/manifest:1")
    assert big_manifest_server.requests == ["/v2/big/manifest/manifests/1"]
    _assert_nothing_stored(store)


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "weights/../../escape.gguf", "a\\..\\b"])
def test_layer_path_escaping_the_package_is_refused(registry: RegistryProcess, store: Store, path: str) -> None:
    repository = "hostile/escape"
    config = _upload(registry, repository, b'{"descriptor":{},"config":{"format":"gguf"},"modelfs":{}}')
    weights = _upload(registry, repository, b"GGUF not really")
    manifest = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": mt.MODEL_ARTIFACT,
        "config": {"mediaType": mt.MODEL_CONFIG, **config},
        "layers": [{"mediaType": mt.MODEL_WEIGHT_RAW, **weights, "annotations": {mt.ANNOTATION_FILEPATH: path}}],
    }
    _put_raw_manifest(registry, repository, "1", manifest)
    with pytest.raises(ManifestRejectedError, match="layer path"):
        pull(store, f"{registry.host}/{repository}:1")
    _assert_nothing_stored(store)


def test_push_refuses_an_escaping_path_too(registry: RegistryProcess, store: Store) -> None:
    ref = Reference.parse(f"{registry.host}/hostile/local:1")
    raw_package(store, ref, config_media_type=mt.MODEL_CONFIG, config={"descriptor": {}},
                layers=[Layer(mt.MODEL_WEIGHT_RAW, b"w", {mt.ANNOTATION_FILEPATH: "../w.gguf"})],
                artifact_type=mt.MODEL_ARTIFACT)
    with pytest.raises(ManifestRejectedError, match="climbs out"):
        push(store, ref)
    reply = requests.get(f"{registry.url}/v2/hostile/local/tags/list", timeout=10)
    assert reply.status_code == 404


def test_manifest_naming_blobs_the_registry_lacks_is_refused_before_downloading(
    registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path, tmp_path: Path
) -> None:
    ref = Reference.parse(f"{registry.host}/broken/missing:1")
    ingot_package(store, ref, tiny_gguf, tmp_path)
    push(store, ref)
    manifest = store.read_json(store.resolve(ref).digest)  # type: ignore[union-attr]
    weights = manifest["layers"][0]["digest"]
    deleted = requests.delete(f"{registry.url}/v2/broken/missing/blobs/{weights}", timeout=10)
    assert deleted.status_code == 202
    with pytest.raises(ManifestRejectedError, match=f"does not have: {weights}"):
        pull(other_store, ref)
    _assert_nothing_stored(other_store)


def test_unknown_format_names_the_media_types_found(registry: RegistryProcess, store: Store,
                                                    other_store: Store) -> None:
    ref = Reference.parse(f"{registry.host}/strange/thing:1")
    raw_package(store, ref, config_media_type="application/vnd.example.widget.config.v1+json", config={"a": 1},
                layers=[Layer("application/vnd.example.widget.part.v1", b"part")])
    push(store, ref)
    with pytest.raises(UnsupportedFormatError) as caught:
        pull(other_store, ref)
    message = str(caught.value)
    assert "application/vnd.example.widget.config.v1+json" in message
    assert "application/vnd.example.widget.part.v1" in message
    _assert_nothing_stored(other_store)


def test_image_index_is_refused_with_a_hint(registry: RegistryProcess, store: Store, tiny_gguf: Path,
                                            tmp_path: Path, other_store: Store) -> None:
    ref = Reference.parse(f"{registry.host}/multi/arch:1")
    descriptor = ingot_package(store, ref, tiny_gguf, tmp_path)
    push(store, ref)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
             "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": descriptor.digest, "size": descriptor.size}]}
    _put_raw_manifest(registry, "multi/arch", "index", index)
    with pytest.raises(ManifestRejectedError, match="image index"):
        pull(other_store, f"{registry.host}/multi/arch:index")
    _assert_nothing_stored(other_store)


def test_malformed_ingot_runtime_layer_moves_no_tag(registry: RegistryProcess, store: Store,
                                                     other_store: Store) -> None:
    ref = Reference.parse(f"{registry.host}/broken/runtime:1")
    raw_package(store, ref, config_media_type=mt.MODEL_CONFIG, config={"descriptor": {}},
                layers=[Layer(mt.MODEL_WEIGHT_RAW, b"weights", {mt.ANNOTATION_FILEPATH: "model.gguf"}),
                        Layer(mt.INGOT_MODELFILE, b"[1, 2, 3]", {mt.ANNOTATION_FILEPATH: "ingot-modelfile.json"})],
                artifact_type=mt.MODEL_ARTIFACT)
    push(store, ref)
    with pytest.raises(ManifestRejectedError, match="malformed"):
        pull(other_store, ref)
    assert other_store.list_tags() == []


def _modelpack_manifest(config: dict[str, object], weights: dict[str, object]) -> dict[str, object]:
    return {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": mt.MODEL_ARTIFACT,
        "config": {"mediaType": mt.MODEL_CONFIG, **config},
        "layers": [{"mediaType": mt.MODEL_WEIGHT_RAW, **weights,
                    "annotations": {mt.ANNOTATION_FILEPATH: "model.gguf"}}],
    }


_MODELPACK_CONFIG = b'{"descriptor":{},"config":{"format":"gguf"},"modelfs":{"type":"layers","diffIds":[]}}'


@pytest.mark.timeout(60)  # before the fix this pull never ended
def test_descriptor_larger_than_its_blob_fails_at_once(
    registry: RegistryProcess, fault_proxy: FaultProxy, store: Store, tiny_gguf: Path
) -> None:
    repository = "hostile/oversized"
    data = tiny_gguf.read_bytes()
    config = _upload(registry, repository, _MODELPACK_CONFIG)
    weights = _upload(registry, repository, data)
    declared = len(data) + 4096
    _put_raw_manifest(registry, repository, "1", _modelpack_manifest(config, {**weights, "size": declared}))
    with pytest.raises(ManifestRejectedError, match=f"is {len(data)} bytes, but the manifest declares {declared}"):
        pull(store, f"{fault_proxy.host}/{repository}:1",
             options=ClientOptions(retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)))
    # Refused on the answer's headers, after one GET (what the proxy forwarded may fill socket buffers,
    # never a second copy); the unfixed pull downloaded it again and again.
    assert fault_proxy.bytes_down < 2 * len(data)
    assert store.list_tags() == []
    assert not store.has_blob(str(weights["digest"]))


_CHUNK = 64 * 1024


class _RestartingBlobServer:
    """A registry impostor that states no sizes, the kind that made a pull start over and over.

    A blob's body has no Content-Length: it ends where the connection closes (`chunked=False`) or its
    chunked encoding breaks off two thirds in (`chunked=True`, a cut the client sees); any Range request gets
    a bare 416.
    """

    def __init__(self, manifest: bytes, blobs: dict[str, bytes], *, chunked: bool) -> None:
        self.blob_gets = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if chunked else "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                del args

            def _answer(self, body: bool) -> None:
                if self.path.endswith("/manifests/1"):
                    self.send_response(200)
                    self.send_header("Content-Type", mt.OCI_MANIFEST)
                    self.send_header("Content-Length", str(len(manifest)))
                    self.end_headers()
                    if body:
                        self.wfile.write(manifest)
                    return
                digest = self.path.rsplit("/", 1)[-1]
                if digest not in blobs or self.headers.get("Range"):
                    self.send_response(404 if digest not in blobs else 416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if not body:
                    return
                outer.blob_gets += 1
                data = blobs[digest]
                if not chunked:
                    self.wfile.write(data)
                    return
                cut = len(data) * 2 // 3 if len(data) > _CHUNK else len(data)
                for at in range(0, cut, _CHUNK):
                    piece = data[at : min(at + _CHUNK, cut)]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                if cut == len(data):
                    self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True  # a cut body simply stops: no last chunk

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _restarting_server(tiny_gguf: Path, *, chunked: bool) -> tuple[_RestartingBlobServer, int]:
    # Over 2 MiB, so a cut body still delivers whole 1 MiB read blocks: progress, then a restart.
    data = gguf_weights(tiny_gguf, 3 * 1024 * 1024)
    config_digest, weights_digest = digest_bytes(_MODELPACK_CONFIG), digest_bytes(data)
    manifest = json.dumps(_modelpack_manifest({"digest": config_digest, "size": len(_MODELPACK_CONFIG)},
                                              {"digest": weights_digest, "size": len(data) + 4096})).encode()
    blobs = {config_digest: _MODELPACK_CONFIG, weights_digest: data}
    return _RestartingBlobServer(manifest, blobs, chunked=chunked), len(data)


_FAST_FOUR = ClientOptions(retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05), parallel=1)


@pytest.mark.timeout(60)  # before the fix this pull never ended
def test_a_blob_that_ends_early_and_cannot_resume_is_reported_by_its_size(store: Store, tiny_gguf: Path) -> None:
    server, size = _restarting_server(tiny_gguf, chunked=False)
    try:
        with pytest.raises(ManifestRejectedError, match=f"is {size} bytes, but the manifest declares {size + 4096}"):
            pull(store, f"{server.host}/hostile/short:1", options=_FAST_FOUR)
    finally:
        server.close()
    assert server.blob_gets == 2  # the config, and the weights once
    assert store.list_tags() == []


@pytest.mark.timeout(60)  # before the fix this pull never ended
def test_restarts_do_not_refill_the_retry_budget(store: Store, tiny_gguf: Path) -> None:
    server, _ = _restarting_server(tiny_gguf, chunked=True)
    try:
        with pytest.raises(RegistryConnectionError, match="IncompleteRead|refused to resume"):
            pull(store, f"{server.host}/hostile/restarting:1", options=_FAST_FOUR)
    finally:
        server.close()
    # Each restart re-reads the same first half: no new bytes, so no fresh retries. The config, then the
    # weights at most once per attempt.
    assert server.blob_gets <= 1 + 4
    assert store.list_tags() == []


def test_a_tar_in_a_modelpack_weight_layer_is_refused_on_pull(
    registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "weights.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tiny_gguf, arcname="model.gguf")
    ref = Reference.parse(f"{registry.host}/hostile/tarred:1")
    raw_package(store, ref, config_media_type=mt.MODEL_CONFIG, config=json.loads(_MODELPACK_CONFIG),
                layers=[Layer(mt.MODEL_WEIGHT_RAW, archive, {mt.ANNOTATION_FILEPATH: "model.gguf"})],
                artifact_type=mt.MODEL_ARTIFACT)
    push(store, ref)
    with pytest.raises(ManifestRejectedError, match="is not a usable GGUF file: not a GGUF file") as caught:
        pull(other_store, ref)
    assert "nothing was tagged" in str(caught.value.hint)
    assert other_store.list_tags() == []


def test_an_ollama_model_layer_that_is_not_gguf_is_refused_on_pull(
    registry: RegistryProcess, store: Store, other_store: Store, tmp_path: Path
) -> None:
    fake = tmp_path / "model.bin"
    fake.write_bytes(b"PK\x03\x04 a zip, not a GGUF")
    ref = Reference.parse(f"{registry.host}/hostile/ollama-zip:1")
    ollama_package(store, ref, fake, params={})
    push(store, ref)
    with pytest.raises(ManifestRejectedError, match="is not a usable GGUF file"):
        pull(other_store, ref)
    assert other_store.list_tags() == []
