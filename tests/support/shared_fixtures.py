"""Fixtures more than one test folder needs: a private environment and a real registry.

A folder's conftest imports the ones it wants (`from shared_fixtures import
...`); pytest registers an imported fixture as if the conftest defined it,
autouse included. `tests/support` is on sys.path through pyproject's
`[tool.pytest.ini_options] pythonpath`, so any folder runs on its own too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from oci_registry_server import RegistryProcess, find_registry_binary, start_registry
from prerequisites import unavailable

# Settings of the developer's shell that would point a test at their own daemon, registry or logins.
_FOREIGN_SETTINGS = (
    "INGOT_HOST", "INGOT_HOME", "INGOT_SOCKET", "INGOT_REGISTRY", "INGOT_TOKEN", "INGOT_TLS_CA", "SOURCE_DATE_EPOCH",
    "INGOT_LISTEN", "INGOT_HTTP", "INGOT_HEALTH", "INGOT_TLS_CERT", "INGOT_TLS_KEY", "INGOT_TOKEN_FILE",
    "INGOT_MODEL_DIRS", "INGOT_READ_ONLY",
    "OLLAMA_HOST", "OLLAMA_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL",
)  # fmt: skip


@pytest.fixture(autouse=True)
def private_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's docker logins, home folder or ingot/client settings."""
    (tmp_path / "docker-config").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in _FOREIGN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    if os.environ.get("HTTPS_PROXY") or os.environ.get("HTTP_PROXY"):
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def docker_config(tmp_path: Path, private_environment: None) -> Path:
    """The test's own, empty $DOCKER_CONFIG folder (where `ingot login` saves)."""
    return tmp_path / "docker-config"


def registry_binary() -> str:
    """The `docker-registry` executable; skips the test where it is missing (fails it under CI)."""
    binary = find_registry_binary()
    if binary is None:
        message = "docker-registry is not installed (scripts/setup --test installs it)"
        unavailable(message)
    return binary


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """An open CNCF distribution registry (no auth) on 127.0.0.1:<free port>, one per session."""
    server = start_registry(registry_binary(), tmp_path_factory.mktemp("registry-open"))
    yield server
    server.stop()
