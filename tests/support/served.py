"""`Served`: an in-process daemon with its HTTP front door, as the HTTP and tools tests start it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingot.daemon.http import HttpServer
from ingot.daemon.server import Daemon
from ingot.registry.home import IngotHome


@dataclass(frozen=True)
class Served:
    daemon: Daemon
    http: HttpServer
    home: IngotHome
    gguf: Path  # the model file the packages were built from

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def socket_path(self) -> Path:
        return self.daemon.config.socket_path
