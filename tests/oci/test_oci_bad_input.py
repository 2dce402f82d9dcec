"""Hostile or broken packages on a registry: refused with one clear error, nothing stored, no tag moved."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from ingot.registry import mediatypes as mt
from ingot.registry.digest import digest_bytes
from ingot.registry.oci import ManifestRejectedError, UnsupportedFormatError, pull, push
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from oci_packages import Layer, ingot_package, raw_package
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
