"""/metrics: Prometheus names and units, gRPC and HTTP requests counted alike, and the device gauges of a
daemon whose probes read an injected GPU machine (a recorded nvidia-smi, a recorded sysfs/proc tree)."""

from __future__ import annotations

import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingot.daemon.http import start_http_server
from ingot.proto.ingot.v1 import common_pb2, inference_pb2, inference_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from ingot.registry.home import IngotHome

from http_helpers import MODEL, WAIT_S, Served, grpc_chat, metric, start_daemon

HARDWARE_DATA = Path(__file__).resolve().parent.parent / "hardware" / "data"
MIB = 2**20
NAME = re.compile(r"^ingot_[a-z][a-z0-9_]*$")
# Base units a gauge or histogram name may end in (Prometheus naming: one unit, as a plural suffix).
UNITS = ("_seconds", "_bytes", "_ratio", "_celsius", "_watts", "_info", "_per_second")
# Gauges that count things (requests, models, slots): dimensionless, no unit suffix.
COUNTS = {
    "ingot_loaded_models", "ingot_requests_active", "ingot_queue_depth", "ingot_slots", "ingot_slots_busy",
    "ingot_http_requests_in_flight",
}


def _families(http: httpx.Client) -> dict[str, object]:
    reply = http.get("/metrics")
    assert reply.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(reply.text)}


def test_names_follow_prometheus_conventions(served: Served, http: httpx.Client) -> None:
    grpc_chat(served.socket_path, MODEL, "hi", 2)  # every family has samples once a model has served
    families = _families(http)
    expected = {
        "ingot_requests": "counter", "ingot_generations": "counter", "ingot_prompt_tokens": "counter",
        "ingot_generated_tokens": "counter", "ingot_model_loads": "counter", "ingot_model_evictions": "counter",
        "ingot_runner_crashes": "counter", "ingot_http_requests": "counter",
        "ingot_time_to_first_token_seconds": "histogram", "ingot_time_per_output_token_seconds": "histogram",
        "ingot_queue_wait_seconds": "histogram", "ingot_model_load_seconds": "histogram",
        "ingot_queue_depth": "gauge", "ingot_slots_busy": "gauge", "ingot_loaded_models": "gauge",
        "ingot_device_utilization_ratio": "gauge", "ingot_device_memory_total_bytes": "gauge",
        "ingot_model_tokens_per_second": "gauge",
    }
    for name, kind in expected.items():
        assert name in families, name
        assert families[name].type == kind, name  # type: ignore[attr-defined]
    for name, family in families.items():
        if not name.startswith("ingot_") or name.endswith("_created"):
            continue  # the client library's own series: process metrics, counters' creation timestamps
        assert NAME.match(name), name
        kind = family.type  # type: ignore[attr-defined]
        samples = [s.name for s in family.samples]  # type: ignore[attr-defined]
        if kind == "counter":
            assert all(s.endswith(("_total", "_created")) for s in samples), (name, samples)
        elif kind in ("gauge", "histogram"):
            assert name in COUNTS or name.endswith(UNITS), f"{name}: a {kind} needs a base-unit suffix"
            assert not name.endswith("_total"), name  # reserved for counters
        for sample in family.samples:  # type: ignore[attr-defined]
            assert all(re.match(r"^[a-z_]+$", label) for label in sample.labels), sample


def test_grpc_and_http_requests_are_counted_alike(served: Served, http: httpx.Client) -> None:
    labels = {"model": MODEL, "rpc": "chat", "outcome": "ok"}
    grpc_before = metric(http, "ingot_requests_total", api="grpc", **labels)
    ollama_before = metric(http, "ingot_requests_total", api="ollama", **labels)
    tokens_before = metric(http, "ingot_generated_tokens_total", model=MODEL, api="grpc")
    grpc_chat(served.socket_path, MODEL, "hi", 3)
    reply = http.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                                         "stream": False, "options": {"num_predict": 3}})
    assert reply.status_code == 200
    assert metric(http, "ingot_requests_total", api="grpc", **labels) == grpc_before + 1
    assert metric(http, "ingot_requests_total", api="ollama", **labels) == ollama_before + 1
    assert metric(http, "ingot_generated_tokens_total", model=MODEL, api="grpc") == tokens_before + 3
    assert metric(http, "ingot_prompt_tokens_total", model=MODEL, api="grpc") > 0
    assert metric(http, "ingot_model_loads_total", model=MODEL, outcome="ok") >= 1
    assert metric(http, "ingot_model_tokens_per_second", model=MODEL) > 0
    assert metric(http, "ingot_slots", model=MODEL) == 2


def test_grpc_cancel_is_counted(served: Served, http: httpx.Client) -> None:
    before = metric(http, "ingot_requests_total", model=MODEL, api="grpc", rpc="generate", outcome="cancelled")
    with grpc.insecure_channel(f"unix:{served.socket_path}") as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        stream = stub.Generate(
            inference_pb2.GenerateRequest(model=MODEL, prompt="go", options=common_pb2.Options(num_predict=100000)),
            timeout=WAIT_S,
        )
        assert next(stream).response is not None
        stream.cancel()
    assert served.daemon.scheduler.drain(WAIT_S)
    after = metric(http, "ingot_requests_total", model=MODEL, api="grpc", rpc="generate", outcome="cancelled")
    assert after == before + 1


def test_unknown_models_do_not_become_labels(http: httpx.Client) -> None:
    reply = http.post("/api/generate", json={"model": "no-such-model-4711", "prompt": "x"})
    assert reply.status_code == 404
    assert "no-such-model-4711" not in http.get("/metrics").text
    assert metric(http, "ingot_requests_total", model="unknown", outcome="not_found") >= 1


# --- a daemon on an injected two-GPU machine ---------------------------------------------------------------


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture(scope="module")
def gpu_box(home: IngotHome, short_tmp: Path) -> Iterator[tuple[Served, Path]]:
    """A daemon whose probes see the recorded 2x RTX 3090 box; `pids` lists compute processes on GPU 0."""
    folder = short_tmp / "gpu-box"
    root, bin_dir = folder / "root", folder / "bin"
    shutil.copytree(HARDWARE_DATA / "cpu-only-cgroup-v2", root)
    bin_dir.mkdir()
    pids = folder / "pids"
    pids.write_text("")
    telemetry = HARDWARE_DATA / "telemetry"
    uuid = "GPU-0b6c3f2e-7d41-1a9e-5c22-8e6b0f3a9d17"
    _script(
        bin_dir / "nvidia-smi",
        'case "$1" in\n'
        f"  --query-gpu=index,*) cat '{HARDWARE_DATA / 'nvidia-smi' / '2x-rtx3090.csv'}';;\n"
        f"  --query-gpu=uuid,*) cat '{telemetry / '2x-rtx3090-query-gpu.csv'}';;\n"
        f"  --query-compute-apps=*) while read pid; do echo \"$pid, {uuid}, 1234\"; done < '{pids}';;\n"
        "  *) exit 2;;\n"
        "esac\n",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
        patch.setenv("INGOT_SYSFS_ROOT", str(root))
        patch.setenv("INGOT_NVML", "0")
        socket_dir = folder / "d"
        socket_dir.mkdir()
        daemon = start_daemon(home, socket_dir)
    server = start_http_server(daemon.http_services(), host="127.0.0.1", port=0)
    try:
        yield Served(daemon, server, home, Path()), pids
    finally:
        server.stop(grace_seconds=0.5)
        daemon.shutdown(grace_seconds=0.5)


def test_device_gauges_and_model_memory_on_an_injected_gpu_box(gpu_box: tuple[Served, Path]) -> None:
    served, pids = gpu_box
    with grpc.insecure_channel(f"unix:{served.socket_path}") as channel:
        stub = runtime_pb2_grpc.RuntimeStub(channel)
        loaded = stub.Load(runtime_pb2.LoadRequest(model=MODEL), timeout=WAIT_S).model
    assert loaded.pid > 0
    pids.write_text(f"{loaded.pid}\n")  # nvidia-smi now lists the runner on GPU 0, as a CUDA build would be
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as http:
        assert metric(http, "ingot_device_utilization_ratio", device="cuda:0") == 0.93
        assert metric(http, "ingot_device_temperature_celsius", device="cuda:0") == 74.0
        assert metric(http, "ingot_device_power_watts", device="cuda:0") == 331.62
        assert metric(http, "ingot_device_power_limit_watts", device="cuda:1") == 350.0
        assert metric(http, "ingot_device_memory_used_bytes", device="cuda:0") == 18734 * MIB
        assert metric(http, "ingot_device_memory_total_bytes", device="cpu") == 8 * 2**30  # the cgroup limit
        assert metric(http, "ingot_device_info", device="cuda:1", backend="cuda") == 1
        # Measured on the GPU (the driver lists the runner's pid), planned in host RAM.
        assert metric(http, "ingot_model_memory_bytes", model=MODEL, device="cuda:0") == 1234 * MIB
        assert metric(http, "ingot_model_memory_bytes", model=MODEL, device="cpu") == loaded.size_bytes
        assert metric(http, "ingot_model_memory_bytes", model=MODEL, device="cuda:1") == 0


def test_grafana_dashboard_uses_only_exported_names(gpu_box: tuple[Served, Path]) -> None:
    import json

    served, _ = gpu_box
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "ingot-dashboard.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in expressions for name in re.findall(r"\bingot_[a-z_]+", e)}
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as http:
        grpc_chat(served.socket_path, MODEL, "hi", 2)
        text = http.get("/metrics").text
    exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    families = list(text_string_to_metric_families(text))
    exported |= {f.name for f in families} | {f.name + "_total" for f in families if f.type == "counter"}
    assert used and used <= exported, sorted(used - exported)
