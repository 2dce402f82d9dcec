"""Fixtures for the batch tests: a chat-capable counting model in a temp home, real `ingot serve` daemons."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_helpers import COUNTER
from daemon_helpers import make_package, start_daemon

from ingot.registry.synthetic import write_synthetic_gguf


@pytest.fixture(scope="session")
def counter_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("gguf") / "counter.gguf", COUNTER)


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, counter_gguf: Path) -> Path:
    root = tmp_path_factory.mktemp("home")
    make_package(root, "counter", counter_gguf, "PARAMETER temperature 0\n")
    return root

__all__ = ["start_daemon"]  # a fixture, registered by being imported here
