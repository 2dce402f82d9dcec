"""Fixtures for push/pull tests: real registries on loopback, a fault-injection proxy, clean stores.

Two `docker-registry` processes per test session: an open one, and one behind
htpasswd (bcrypt) auth. Tests never see the user's docker config: every test
gets `$DOCKER_CONFIG` pointing at its own empty folder (tests/support/shared_fixtures.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingot.registry.store import Store
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

from oci_fault_proxy import FaultProxy
from oci_registry_server import RegistryProcess, start_registry
from shared_fixtures import docker_config, private_environment, registry, registry_binary

__all__ = ["docker_config", "private_environment", "registry"]  # fixtures, registered by being here

AUTH_USER = "ingot-tester"


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """A registry that wants HTTP Basic auth (htpasswd, bcrypt)."""
    password = secrets.token_urlsafe(12)
    server = start_registry(
        registry_binary(), tmp_path_factory.mktemp("registry-auth"), username=AUTH_USER, password=password
    )
    yield server
    server.stop()


@pytest.fixture
def fault_proxy(registry: RegistryProcess) -> Iterator[FaultProxy]:
    """A loopback proxy in front of the open registry that cuts or corrupts on demand."""
    host, port = registry.host.rsplit(":", 1)
    proxy = FaultProxy(host, int(port))
    yield proxy
    proxy.close()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def other_store(tmp_path: Path) -> Store:
    """A second, independent local store (another machine pulling what the first pushed)."""
    return Store(tmp_path / "other-store")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic llama GGUF with a Jinja chat template (read-only: never modify it)."""
    spec = SyntheticSpec(chat_template="{% for m in messages %}{{ m.content }}{% endfor %}")
    return write_synthetic_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", spec)


@pytest.fixture
def ingot_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$INGOT_HOME for CLI tests: `Store.open()` in the commands lands here."""
    home = tmp_path / "ingot-home"
    monkeypatch.setenv("INGOT_HOME", str(home))
    monkeypatch.delenv("INGOT_REGISTRY", raising=False)
    return home
