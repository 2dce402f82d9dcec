"""Fixtures for the watcher tests: temp trees and homes, watchers that are always stopped, a real
registry and a real daemon.

The registry, environment and daemon helpers are shared with other test
folders (tests/support).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingot.daemon.watch import WatchConfig, Watcher, start_watcher
from ingot.daemon.watch.reload import Reloader
from ingot.registry.home import IngotHome
from ingot.registry.store import Store
from ingot.registry.synthetic import write_synthetic_gguf

from daemon_helpers import COUNTING, DaemonProcess
from shared_fixtures import private_environment, registry
from watch_helpers import WatcherFactory

__all__ = ["private_environment", "registry"]  # fixtures, registered by being here

# Short enough to keep the suite quick, long enough that a loop writing 20
# files lands in one batch even on a loaded machine.
TEST_DEBOUNCE = 0.3


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


@pytest.fixture
def daemon(home: IngotHome) -> Iterator[DaemonProcess]:
    """A real `ingot serve` on the same home the watcher builds into."""
    process = DaemonProcess.start(home.root, "--parallel", "2", "--grace", "5")
    try:
        yield process
    finally:
        process.stop()
