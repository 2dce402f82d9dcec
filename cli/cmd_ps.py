"""`ingot ps`: the models the daemon has loaded, their memory, CPU/GPU split and when they unload."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from ingot.cli.output import human_size, print_json, print_table, user_errors

if TYPE_CHECKING:
    from ingot.proto.ingot.v1 import runtime_pb2

__all__ = ["processor", "queued", "register", "split", "until"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ps",
        help="list the models the daemon has loaded",
        description="List the models the running daemon has loaded: memory, where the layers run "
        "(PROCESSOR) and where the memory is per device (DEVICES), requests in flight (ACTIVE) and waiting "
        "for a slot (QUEUED), tokens generated per second over the last minute, and when each unloads "
        "if it stays idle.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def processor(model: runtime_pb2.RunningModel) -> str:
    """Ollama's PROCESSOR column: `100% CPU`, `100% GPU` or `35%/65% CPU/GPU` (by memory)."""
    total = model.size_bytes
    if total <= 0 or model.vram_bytes <= 0:
        return "100% CPU"
    gpu = round(100 * model.vram_bytes / total)
    if gpu >= 100:
        return "100% GPU"
    return f"{100 - gpu}%/{gpu}% CPU/GPU"


def until(model: runtime_pb2.RunningModel, *, now: float | None = None) -> str:
    from ingot.proto.ingot.v1 import runtime_pb2

    if model.state == runtime_pb2.MODEL_STATE_WAITING:
        return "Waiting for room..."
    if model.state == runtime_pb2.MODEL_STATE_LOADING:
        return "Loading..."
    if model.state == runtime_pb2.MODEL_STATE_UNLOADING:
        return "Stopping..."
    if model.keep_forever:
        return "Forever"
    if not model.HasField("expires_at"):
        return "In use"
    seconds = model.expires_at.ToNanoseconds() / 1e9 - (time.time() if now is None else now)
    if seconds < 1:
        return "Now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} from now"
    return f"{int(seconds)} seconds from now"


def queued(model: runtime_pb2.RunningModel) -> dict[str, int]:
    """Requests admitted and not in a slot yet (loading, or waiting for one), by priority."""
    q = model.queue
    return {
        "interactive": max(0, q.admitted_interactive - q.running_interactive),
        "batch": max(0, q.admitted_batch - q.running_batch),
    }


def split(model: runtime_pb2.RunningModel) -> str:
    """Where the memory is, per device: `cpu 40% cuda:0 60%` (as planned)."""
    total = sum(d.bytes for d in model.devices)
    if total <= 0:
        return "-"
    return " ".join(f"{d.device} {round(100 * d.bytes / total)}%" for d in model.devices if d.bytes > 0)


def _as_json(model: runtime_pb2.RunningModel) -> dict[str, Any]:
    from ingot.proto.ingot.v1 import runtime_pb2

    return {
        "name": model.name,
        "digest": model.digest,
        "state": runtime_pb2.ModelState.Name(model.state).removeprefix("MODEL_STATE_").lower(),
        "size_bytes": model.size_bytes,
        "vram_bytes": model.vram_bytes,
        "gpu_layers": model.gpu_layers,
        "total_layers": model.total_layers,
        "processor": processor(model),
        "context_length": model.context_length,
        "parallel": model.parallel,
        "active_requests": model.active_requests,
        "slots_busy": model.slots_busy,
        "queued": queued(model),
        "tokens_per_second": round(model.tokens_per_second, 2),
        "devices": [{"device": d.device, "bytes": d.bytes} for d in model.devices],
        "expires_at": model.expires_at.ToJsonString() if model.HasField("expires_at") else None,
        "keep_forever": model.keep_forever,
        "pid": model.pid,
        "load_count": model.load_count,
        "loaded_at": model.loaded_at.ToJsonString() if model.HasField("loaded_at") else None,
    }


@user_errors("ingot.cli.client:ClientError")
def run(args: argparse.Namespace) -> int:
    # gRPC and the generated messages load only when the command runs, not for `ingot --help`.
    import grpc

    from ingot.cli.client import connect, rpc_error
    from ingot.proto.ingot.v1 import runtime_pb2

    with connect() as client:
        client.check()
        try:
            reply = client.runtime.ListRunning(runtime_pb2.ListRunningRequest(), timeout=30)
        except grpc.RpcError as exc:
            raise rpc_error(exc) from None
    if args.json:
        print_json([_as_json(m) for m in reply.models])
        return 0
    rows = [
        (
            m.name,
            m.digest.removeprefix("sha256:")[:12],
            human_size(m.size_bytes),
            processor(m),
            split(m),
            m.context_length,
            m.active_requests,
            sum(queued(m).values()),
            f"{m.tokens_per_second:.1f}",
            until(m),
        )
        for m in reply.models
    ]
    print_table(("NAME", "ID", "SIZE", "PROCESSOR", "DEVICES", "CONTEXT", "ACTIVE", "QUEUED", "TOKENS/S", "UNTIL"), rows)
    return 0
