"""Fixtures for the watcher tests: temp trees and homes, watchers that are always stopped, a real
registry and a real daemon.

The registry and daemon helpers belong to the OCI and daemon test suites
(tests/oci/oci_registry_server.py, tests/daemon/daemon_helpers.py); their
folders are put on sys.path here so this suite reuses them, also when it
runs on its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent.parent
for _folder in (_TESTS / "oci", _TESTS / "daemon"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from daemon_helpers import COUNTING, DaemonProcess  # noqa: E402
from oci_registry_server import RegistryProcess, find_registry_binary, start_registry  # noqa: E402

from watch_helpers import WatcherFactory  # noqa: E402

from ingot.daemon.watch import Watcher, WatchConfig, start_watcher  # noqa: E402
from ingot.daemon.watch.reload import Reloader  # noqa: E402
from ingot.registry.home import IngotHome  # noqa: E402
from ingot.registry.store import Store  # noqa: E402
from ingot.registry.synthetic import write_synthetic_gguf  # noqa: E402

# Short enough to keep the suite quick, long enough that a loop writing 20
# files lands in one batch even on a loaded machine.
TEST_DEBOUNCE = 0.3


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's docker logins, ingot home or daemon."""
    docker = tmp_path / "docker-config"
    docker.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    for name in ("INGOT_HOST", "INGOT_REGISTRY", "INGOT_TOKEN", "INGOT_TLS_CA", "SOURCE_DATE_EPOCH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def counting_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("gguf") / "counting.gguf", COUNTING)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> IngotHome:
    # A short path: the daemon's unix socket lives here (107-byte limit).
    root = tmp_path_factory.mktemp("wh")
    monkeypatch.setenv("INGOT_HOME", str(root))
    return IngotHome(root)


@pytest.fixture
def store(home: IngotHome) -> Store:
    return Store.open(home)


@pytest.fixture
def watch(home: IngotHome) -> Iterator[WatcherFactory]:
    """Start watchers on `home` (WatchConfig fields as keywords); all are stopped after the test."""
    started: list[Watcher] = []

    def start(root: Path, *, reloader: Reloader | None = None, **fields: object) -> Watcher:
        fields.setdefault("debounce", TEST_DEBOUNCE)
        watcher = start_watcher(WatchConfig(root=root, **fields), home=home, reloader=reloader)  # type: ignore[arg-type]
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def _registry_binary() -> str:
    binary = find_registry_binary()
    if binary is None:
        message = "docker-registry is not installed (scripts/setup --test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    server = start_registry(_registry_binary(), tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture
def daemon(home: IngotHome) -> Iterator[DaemonProcess]:
    """A real `ingot serve` on the same home the watcher builds into."""
    process = DaemonProcess.start(home.root, "--parallel", "2", "--grace", "5")
    try:
        yield process
    finally:
        process.stop()
