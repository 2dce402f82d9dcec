"""TLS registries: the system trust store, --ca-cert for a private CA, --insecure for self-signed or plain HTTP.

Loopback is always plain HTTP, so these registries listen on this machine's
own non-loopback address; certificates come from the `openssl` command.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingot.registry.oci import ClientOptions, RegistryConnectionError, pull, push
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from oci_packages import ingot_package
from oci_registry_server import RegistryProcess, find_registry_binary, start_registry


def _own_address() -> str | None:
    """This machine's address on its default route, if it has one that is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 9))  # no packet is sent: this only picks a route
            address = str(s.getsockname()[0])
        except OSError:
            try:
                address = socket.gethostbyname(socket.gethostname())
            except OSError:
                return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


ADDRESS = _own_address()
pytestmark = pytest.mark.skipif(
    ADDRESS is None or shutil.which("openssl") is None or find_registry_binary() is None,
    reason="needs a non-loopback address, openssl and docker-registry",
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA and a server certificate for ADDRESS signed by it."""
    folder = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=ingot test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=ingot test registry", cwd=folder)
    (folder / "ext.cnf").write_text(
        f"subjectAltName=IP:{ADDRESS}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=folder)
    return {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}


@pytest.fixture(scope="module")
def tls_registry(certificates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    assert ADDRESS is not None
    server = start_registry(find_registry_binary() or "", tmp_path_factory.mktemp("registry-tls"), address=ADDRESS,
                            tls=(certificates["cert"], certificates["key"]))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    assert ADDRESS is not None
    server = start_registry(find_registry_binary() or "", tmp_path_factory.mktemp("registry-plain"), address=ADDRESS)
    yield server
    server.stop()


def test_untrusted_certificate_is_one_error_with_a_hint(tls_registry: RegistryProcess, store: Store) -> None:
    with pytest.raises(RegistryConnectionError, match="TLS with .* failed") as caught:
        pull(store, f"{tls_registry.host}/tls/model:1")
    assert "--ca-cert" in str(caught.value) and "--insecure" in str(caught.value)


def test_private_ca_and_insecure_both_reach_a_tls_registry(
    tls_registry: RegistryProcess, certificates: dict[str, Path], store: Store, other_store: Store,
    tiny_gguf: Path, tmp_path: Path,
) -> None:
    ref = Reference.parse(f"{tls_registry.host}/tls/model:1")
    descriptor = ingot_package(store, ref, tiny_gguf, tmp_path)
    assert push(store, ref, options=ClientOptions(ca_cert=certificates["ca"])).digest == descriptor.digest
    result = pull(other_store, ref, options=ClientOptions(insecure=True))
    assert result.digest == descriptor.digest and result.bytes_transferred > 0


def test_insecure_falls_back_to_plain_http(
    plain_registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path, tmp_path: Path
) -> None:
    ref = Reference.parse(f"{plain_registry.host}/plain/model:1")
    descriptor = ingot_package(store, ref, tiny_gguf, tmp_path)
    with pytest.raises(RegistryConnectionError):
        push(store, ref)  # https by default: a plain-HTTP registry is not silently used
    assert push(store, ref, options=ClientOptions(insecure=True)).digest == descriptor.digest
    assert pull(other_store, ref, options=ClientOptions(insecure=True)).digest == descriptor.digest
