"""The web page at `/` (for browsers) and the one JSON document it polls, `/ui/state`.

The page is three static files from the `web` folder, shipped as package data
and served as they are: no build step, nothing fetched from elsewhere, so it
works offline. The files hold no data and are open like `/health`; everything
the page shows comes from `/ui/state` and the Ollama-compatible `/api/chat`,
which want the daemon's token like the rest of the HTTP API (the page asks for
it once and keeps it in the tab's sessionStorage).

`/ui/state` gathers what `ingot ps`, `ingot list`, `ingot hw --watch` and
`ingot watch --status` show: the store's models, the loaded ones (memory,
processor, keep-alive left, queue by priority, tokens/s), every device's
readings with the models holding memory there, tokens/s over the last ten
minutes per model, and the GitOps watchers' status.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from google.protobuf.json_format import MessageToDict

from ingot.daemon.monitoring import Monitoring, models_on_devices, placements
from ingot.proto.ingot.v1 import models_pb2, runtime_pb2

from .calls import ServicerCall
from .services import Servicers
from .streams import collect, peer_of

__all__ = ["STATIC_PATHS", "web_router"]

_FILES = {"/ui/app.js": ("app.js", "text/javascript"), "/ui/style.css": ("style.css", "text/css")}
# Served without a token: the page's code and styles, never data.
STATIC_PATHS = frozenset({"/", *_FILES})
_GREETING = "ingot is running"  # what Ollama clients probing `/` expect to read
# The browser itself refuses any script, style or connection not from this daemon.
_PAGE_HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"}
_CHART_STEP_S = 10
_CHART_SPAN_S = 600


def _asset(name: str) -> bytes:
    return resources.files("ingot.daemon.http.web").joinpath(name).read_bytes()


def _dict(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def web_router(servicers: Servicers, monitoring: Monitoring) -> APIRouter:
    router = APIRouter(tags=["ingot"])

    @router.get(
        "/",
        response_class=PlainTextResponse,
        summary="The web page for browsers (Accept: text/html); a plain-text greeting for everyone else",
    )
    async def root(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return Response(_asset("index.html"), media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)
        return PlainTextResponse(_GREETING)

    @router.head("/", include_in_schema=False)
    async def root_head() -> Response:
        return PlainTextResponse(_GREETING)

    for path, (name, media_type) in _FILES.items():
        router.add_api_route(path, _static(name, media_type), methods=["GET"], include_in_schema=False)

    @router.get("/ui/state", summary="Everything the web page shows, as one JSON document")
    async def state(request: Request) -> JSONResponse:
        peer = peer_of(request)
        (listed,) = await collect(request, ServicerCall(servicers.models.List, models_pb2.ListRequest(), peer=peer))
        (running,) = await collect(
            request, ServicerCall(servicers.runtime.ListRunning, runtime_pb2.ListRunningRequest(), peer=peer)
        )
        (watch,) = await collect(
            request, ServicerCall(servicers.runtime.WatchStatus, runtime_pb2.WatchStatusRequest(), peer=peer)
        )
        devices: list[dict[str, Any]] = []
        if monitoring.devices is not None:
            report = monitoring.devices.read()
            held = models_on_devices(report, placements(servicers.scheduler.running()))
            for device in report.to_dict()["devices"]:
                device["models"] = [
                    {"model": m.model, "bytes": m.bytes, "measured": m.measured} for m in held.get(device["key"], ())
                ]
                devices.append(device)
        return JSONResponse({
            "time": time.time(),
            "models": [_dict(m) for m in listed.models],
            "loaded": [_dict(m) for m in running.models],
            "devices": devices,
            "tokens_per_second": {
                "step_seconds": _CHART_STEP_S,
                "series": monitoring.rates.series(step_s=_CHART_STEP_S, span_s=_CHART_SPAN_S),
            },
            "watch": [_dict(f) for f in watch.folders],
        })

    return router


def _static(name: str, media_type: str) -> Any:
    async def serve() -> Response:
        return Response(_asset(name), media_type=media_type, headers={"Cache-Control": "no-cache"})

    return serve
