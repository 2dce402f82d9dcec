"""The daemon's HTTP front door: OpenAI- and Ollama-compatible APIs over the same scheduler as gRPC.

    from ingot.daemon.http import HttpServices, start_http_server

    http = start_http_server(HttpServices(daemon.catalog, daemon.scheduler), host="127.0.0.1", port=11435)
    ...
    http.stop()

Handlers call the daemon's servicers in-process (`calls.py`), so HTTP and
gRPC requests share one code path: options, prompts, scheduling, runners,
logging and error mapping. See docs/http.md.
"""

from __future__ import annotations

from .app import create_app
from .server import HttpConfigError, HttpServer, TLSPaths, check_http_listen, start_http_server
from .services import HttpServices

__all__ = [
    "HttpConfigError",
    "HttpServer",
    "HttpServices",
    "TLSPaths",
    "check_http_listen",
    "create_app",
    "start_http_server",
]
