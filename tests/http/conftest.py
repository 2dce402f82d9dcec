"""Fixtures for the HTTP front door: a real daemon (scheduler, runner processes) over a real store, served over HTTP.

One daemon and one HTTP listener for the whole session, around a counting
model (greedy output is known and never ends on its own, so streams can be
cut mid-way). The daemon is `ingot.daemon.server.Daemon`, the object
`ingot serve` runs: gRPC on a unix socket plus our HTTP listener in threads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingot.daemon.http import start_http_server
from ingot.modelfile import parse
from ingot.registry.home import IngotHome
from ingot.registry.package import build_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import write_synthetic_gguf

from http_helpers import COUNTING_SPEC, MAX_QUEUE, MODEL, NUM_CTX, PARALLEL, WAIT_S, RequestLog, Served, start_daemon
from shared_fixtures import private_environment, registry

__all__ = ["private_environment", "registry"]  # fixtures, registered by being here

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
    http = start_http_server(daemon.http_services(), host="127.0.0.1", port=0)
    try:
        yield Served(daemon, http, home, counting_gguf)
    finally:
        http.stop(grace_seconds=1.0)
        daemon.shutdown(grace_seconds=1.0)


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as client:
        yield client


@pytest.fixture
def request_log() -> Iterator[RequestLog]:
    handler = RequestLog()
    logger = logging.getLogger("ingot.requests")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
