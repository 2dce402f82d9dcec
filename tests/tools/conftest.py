"""A real daemon with SmolLM2-135M-Instruct packaged for tool calling, served over HTTP.

SmolLM2's own (Jinja) chat template never shows tools, so `smollm2-tools`
gets a Modelfile TEMPLATE in the Hermes style (ChatML with ``<tool_call>``
blocks and ``<tool_response>`` results); `smollm2-json-tools` writes calls
as bare JSON, the way Llama 3.x templates do; `smollm2` keeps the GGUF's
template and so has no tool support.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingot.daemon.http import HttpServices, start_http_server
from ingot.daemon.server import Daemon, ServeConfig
from ingot.modelfile import parse
from ingot.registry.home import IngotHome
from ingot.registry.package import build_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store

from real_model import smollm2
from served import Served
from tools_helpers import HERMES_TEMPLATE, JSON_TEMPLATE

__all__ = ["smollm2"]  # a fixture, registered by being here


def _package(store: Store, gguf: Path, name: str, template: str | None) -> None:
    body = f"FROM {gguf}\nPARAMETER temperature 0\nPARAMETER num_ctx 2048\n"
    if template is not None:
        body += f'TEMPLATE """{template}"""\n'
    build_package(store, parse(body, filename=f"<{name}>"), gguf.parent, ref=Reference.parse(name), link=True)


@pytest.fixture(scope="session")
def served(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = IngotHome(tmp_path_factory.mktemp("home"))
    store = Store.open(home)
    _package(store, smollm2, "smollm2-tools", HERMES_TEMPLATE)
    _package(store, smollm2, "smollm2-json-tools", JSON_TEMPLATE)
    _package(store, smollm2, "smollm2", None)
    # Unix socket paths are limited to 107 bytes: keep them out of pytest's long tmp names.
    with tempfile.TemporaryDirectory(prefix="ingot-tools-") as folder:
        daemon = Daemon(ServeConfig(home=home, socket_path=Path(folder) / "d.sock", parallel=2))
        daemon.start()
        http = start_http_server(HttpServices(daemon.catalog, daemon.scheduler), host="127.0.0.1", port=0)
        try:
            yield Served(daemon, http, home, smollm2)
        finally:
            http.stop(grace_seconds=1.0)
            daemon.shutdown(grace_seconds=1.0)
