"""The real-model tier: SmolLM2-135M-Instruct through a real `ingot serve --http`, against llama-cpp-python in-process.

One daemon for the whole tier (gRPC on its unix socket, HTTP on a loopback
port) serving the package `smollm2` built from the real GGUF, and one
in-process `llama_cpp.Llama` over the same file as the reference every
greedy answer must equal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import DaemonProcess, make_package
from oci_registry_server import free_port
from real_helpers import MODEL, NUM_CTX
from real_model import smollm2
from shared_fixtures import private_environment

__all__ = ["private_environment", "smollm2"]  # fixtures, registered by being here

class Served:
    def __init__(self, daemon: DaemonProcess, port: int) -> None:
        self.daemon = daemon
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def real_home(tmp_path_factory: pytest.TempPathFactory, smollm2: Path) -> Path:
    home = tmp_path_factory.mktemp("real")
    # A copy, not a hardlink: the GGUF belongs to the venv's site-packages.
    make_package(home, MODEL, smollm2, f"PARAMETER num_ctx {NUM_CTX}\n", link=False)
    return home


@pytest.fixture(scope="session")
def served(real_home: Path) -> Iterator[Served]:
    port = free_port()
    daemon = DaemonProcess.start(real_home, "--http", f"127.0.0.1:{port}", "--parallel", "2", "--grace", "2")
    try:
        yield Served(daemon, port)
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def reference(smollm2: Path) -> Iterator[object]:
    """llama-cpp-python's own `Llama` over the same file, in this process."""
    from llama_cpp import Llama

    llm = Llama(str(smollm2), n_ctx=NUM_CTX, n_threads=2, verbose=False)
    try:
        yield llm
    finally:
        llm.close()
