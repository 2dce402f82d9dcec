"""Fixtures for the HTTP front door: a real daemon (scheduler, runner processes) over a real store, served over HTTP.

One daemon and one HTTP listener for the whole session, around a counting
model (greedy output is known and never ends on its own, so streams can be
cut mid-way). The daemon is `ingot.daemon.server.Daemon`, the object
`ingot serve` runs: gRPC on a unix socket plus our HTTP listener in threads.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ingot.daemon.http import HttpServer, HttpServices, start_http_server
from ingot.daemon.server import Daemon, ServeConfig
from ingot.modelfile import parse
from ingot.registry.home import IngotHome
from ingot.registry.package import build_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import CHAT_TEMPLATES, SyntheticSpec, write_synthetic_gguf

# The registry fixture code of the push/pull tests (a real docker-registry on loopback).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oci"))

MODEL = "counter"
PARALLEL = 2
MAX_QUEUE = 2
# Big enough that a counting stream nobody stops runs for seconds, not milliseconds.
NUM_CTX = 16384
# A bound on any single wait, so a bug fails a test instead of hanging it.
WAIT_S = 30.0

COUNTING_SPEC = SyntheticSpec(counting=True, n_ctx=NUM_CTX, chat_template=CHAT_TEMPLATES["chatml"], name="counter")


@dataclass(frozen=True)
class Served:
    daemon: Daemon
    http: HttpServer
    home: IngotHome
    gguf: Path

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def socket_path(self) -> Path:
        return self.daemon.config.socket_path


@pytest.fixture(scope="session")
def counting_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("gguf") / "counter.gguf", COUNTING_SPEC)


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory, counting_gguf: Path) -> IngotHome:
    root = tmp_path_factory.mktemp("home")
    home = IngotHome(root)
    modelfile = parse(f"FROM {counting_gguf}\nPARAMETER temperature 0\nPARAMETER num_ctx {NUM_CTX}\n")
    build_package(Store.open(home), modelfile, root, ref=Reference.parse(MODEL))
    return home


def start_daemon(home: IngotHome, socket_dir: Path, **limits: object) -> Daemon:
    # Unix socket paths are limited to 107 bytes: keep them out of pytest's long tmp names.
    config = ServeConfig(home=home, socket_path=socket_dir / "d.sock", **limits)  # type: ignore[arg-type]
    daemon = Daemon(config)
    daemon.start()
    return daemon


@pytest.fixture(scope="session")
def short_tmp() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ingot-http-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def served(home: IngotHome, short_tmp: Path, counting_gguf: Path) -> Iterator[Served]:
    socket_dir = short_tmp / "main"
    socket_dir.mkdir()
    daemon = start_daemon(home, socket_dir, parallel=PARALLEL, max_queue=MAX_QUEUE)
    http = start_http_server(HttpServices(daemon.catalog, daemon.scheduler), host="127.0.0.1", port=0)
    try:
        yield Served(daemon, http, home, counting_gguf)
    finally:
        http.stop(grace_seconds=1.0)
        daemon.shutdown(grace_seconds=1.0)


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as client:
        yield client


@pytest.fixture(autouse=True)
def _no_ollama_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The official clients read these; a developer's own settings must not leak into the tests.
    for name in ("OLLAMA_HOST", "OLLAMA_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    if os.environ.get("HTTPS_PROXY") or os.environ.get("HTTP_PROXY"):
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real registry (CNCF distribution) on loopback, started by the push/pull tests' helper."""
    from oci_registry_server import find_registry_binary, start_registry

    binary = find_registry_binary()
    if binary is None:
        message = "docker-registry is not installed (scripts/setup --test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = start_registry(binary, tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _private_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Push and pull read registry logins from $DOCKER_CONFIG: never the developer's own.
    folder = tmp_path / "docker-config"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
