"""Fixtures for the daemon tests: synthetic GGUFs, temp homes with packages, real `ingot serve` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import COUNTING, OTHER, DaemonProcess, make_package, start_daemon

from ingot.registry.synthetic import write_synthetic_gguf


@pytest.fixture(scope="session")
def counting_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("gguf") / "counting.gguf", COUNTING)


@pytest.fixture(scope="session")
def other_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("gguf") / "other.gguf", OTHER)


def _short_home(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    # Unix socket paths are limited to 107 bytes; pytest's temp folders are short enough.
    return tmp_path_factory.mktemp(name)


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory, counting_gguf: Path, other_gguf: Path) -> Path:
    home = _short_home(tmp_path_factory, "home")
    make_package(home, "counter", counting_gguf, "PARAMETER temperature 0\n")
    make_package(home, "other", other_gguf, "PARAMETER temperature 0\n")
    return home


@pytest.fixture(scope="module")
def daemon(shared_home: Path) -> Iterator[DaemonProcess]:
    """One daemon per test module (queue bound 16, 4 slots), on a home holding 'counter' and 'other'."""
    process = DaemonProcess.start(shared_home, "--max-queue", "16", "--parallel", "4", "--grace", "2")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def fresh_home(tmp_path_factory: pytest.TempPathFactory, counting_gguf: Path) -> Path:
    home = _short_home(tmp_path_factory, "fresh")
    make_package(home, "counter", counting_gguf, "PARAMETER temperature 0\n")
    return home

__all__ = ["start_daemon"]  # a fixture, registered by being imported here
