"""Faults and limits: dead runners, shutdown mid-stream, corrupt files, memory caps, restarts."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from daemon_helpers import COUNTING, DaemonProcess, expected_text, make_package, pid_alive, wait_until

from ingot.daemon.hardware import detect_hardware
from ingot.daemon.planner import ModelShape, plan_offload
from ingot.proto.ingot.v1 import common_pb2, inference_pb2, models_pb2, runtime_pb2
from ingot.registry.gguf_info import inspect_gguf
from ingot.registry.home import IngotHome
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

LONG = common_pb2.Options(num_predict=-1)
StartDaemon = Callable[..., DaemonProcess]


def _long_stream(daemon: DaemonProcess) -> grpc.Future:
    return daemon.inference.Generate(inference_pb2.GenerateRequest(model="counter", prompt="the", options=LONG))


def test_a_killed_runner_fails_its_streams_as_unavailable_then_recovers(
    fresh_home: Path, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(fresh_home)
    stream = _long_stream(daemon)
    first = next(stream)
    assert first.response and not first.done
    victim = daemon.running_model("counter")
    assert victim is not None
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(grpc.RpcError) as died:
        for _ in stream:
            pass
    assert died.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry" in died.value.details()

    last = daemon.last_token("counter", "the")
    text, _ = daemon.generate("counter", "the", num_predict=5)
    assert text == expected_text(COUNTING, last, 5)
    replacement = daemon.running_model("counter")
    assert replacement is not None and replacement.pid != victim.pid
    assert daemon.process.poll() is None


def test_sigterm_mid_stream_ends_the_stream_cleanly_and_cleans_up(
    fresh_home: Path, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(fresh_home, "--grace", "0.5")
    stream = _long_stream(daemon)
    assert not next(stream).done
    runner = daemon.running_model("counter")
    assert runner is not None
    daemon.process.send_signal(signal.SIGTERM)
    chunks = list(stream)  # no RpcError: the stream ends with a final chunk
    assert chunks[-1].done and chunks[-1].done_reason == "cancelled"
    assert daemon.process.wait(timeout=30) == 0
    assert not daemon.socket.exists()
    wait_until(lambda: not pid_alive(runner.pid), what="the runner to exit")


def test_shutdown_lets_short_requests_finish_within_the_grace_period(
    fresh_home: Path, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(fresh_home, "--grace", "30")
    daemon.generate("counter", "the", num_predict=1)
    stream = daemon.inference.Generate(inference_pb2.GenerateRequest(
        model="counter", prompt="the", options=common_pb2.Options(num_predict=200)))
    assert not next(stream).done
    daemon.process.send_signal(signal.SIGTERM)
    chunks = list(stream)
    assert chunks[-1].done_reason == "length" and chunks[-1].metrics.eval_count == 200
    assert daemon.process.wait(timeout=30) == 0


def _corrupt_blob(home: Path, name: str, mutate: Callable[[bytearray], bytes]) -> None:
    store = Store.open(IngotHome(home))
    from ingot.registry.package import load_package

    path = load_package(store, Reference.parse(name)).weights
    data = bytearray(path.read_bytes())
    path.chmod(0o644)
    path.write_bytes(mutate(data))


def test_corrupt_gguf_in_the_store_is_a_clean_error_and_the_daemon_stays_up(
    fresh_home: Path, tmp_path: Path, start_daemon: StartDaemon
) -> None:
    # Their own weights (other seeds): corrupting a blob must not touch the one 'counter' uses.
    for name, seed in (("garbled", 7), ("truncated", 8)):
        gguf = write_synthetic_gguf(tmp_path / f"{name}.gguf", SyntheticSpec(counting=True, seed=seed))
        make_package(fresh_home, name, gguf, link=False)

    def garble(data: bytearray) -> bytes:
        data[:64] = b"\xff" * 64  # magic and header
        return bytes(data)

    _corrupt_blob(fresh_home, "garbled", garble)
    _corrupt_blob(fresh_home, "truncated", lambda data: bytes(data[: len(data) // 2]))
    daemon = start_daemon(fresh_home)

    for name, code in (("garbled", grpc.StatusCode.FAILED_PRECONDITION), ("truncated", grpc.StatusCode.DATA_LOSS)):
        with pytest.raises(grpc.RpcError) as failed:
            daemon.generate(name, "the", num_predict=2)
        assert failed.value.code() == code, failed.value.details()
        assert "\n" not in failed.value.details() and "Traceback" not in failed.value.details()
    assert daemon.running_model("garbled") is None
    text, _ = daemon.generate("counter", "the", num_predict=2)
    assert text
    assert daemon.process.poll() is None


def test_memory_cap_evicts_the_idle_model_and_refuses_what_never_fits(
    fresh_home: Path, counting_gguf: Path, other_gguf: Path, start_daemon: StartDaemon
) -> None:
    make_package(fresh_home, "other", other_gguf)
    make_package(fresh_home, "huge", counting_gguf, "PARAMETER num_ctx 65536\n")
    shape = ModelShape.from_gguf_info(inspect_gguf(counting_gguf))
    estimate = plan_offload(shape, detect_hardware(probe_engine_support=False), n_ctx=4096, n_parallel=4).ram_bytes
    daemon = start_daemon(fresh_home, "--max-memory", str(int(estimate * 1.5)))

    daemon.generate("counter", "the", num_predict=1)
    assert [m.name for m in daemon.running()] == ["counter"]
    daemon.generate("other", "the", num_predict=1)
    assert [m.name for m in daemon.running()] == ["other"]

    with pytest.raises(grpc.RpcError) as too_big:
        daemon.generate("huge", "the", num_predict=1)
    assert too_big.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "needs about" in too_big.value.details()
    assert [m.name for m in daemon.running()] == ["other"]  # nothing evicted for a model that cannot fit


def test_max_loaded_evicts_the_least_recently_used_idle_model(
    fresh_home: Path, other_gguf: Path, counting_gguf: Path, start_daemon: StartDaemon
) -> None:
    make_package(fresh_home, "other", other_gguf)
    make_package(fresh_home, "third", counting_gguf, "PARAMETER num_ctx 1024\n")
    daemon = start_daemon(fresh_home, "--max-loaded", "2")
    daemon.generate("counter", "the", num_predict=1)
    daemon.generate("other", "the", num_predict=1)
    daemon.generate("counter", "the", num_predict=1)  # 'other' is now the least recently used
    daemon.generate("third", "the", num_predict=1)
    assert sorted(m.name for m in daemon.running()) == ["counter", "third"]


def test_a_busy_model_is_never_evicted(fresh_home: Path, other_gguf: Path, start_daemon: StartDaemon) -> None:
    make_package(fresh_home, "other", other_gguf)
    daemon = start_daemon(fresh_home, "--max-loaded", "1")
    stream = _long_stream(daemon)
    assert not next(stream).done
    waiting: list[object] = []
    thread = threading.Thread(target=lambda: waiting.append(daemon.generate("other", "the", num_predict=2)))
    thread.start()
    waiter = wait_until(lambda: daemon.running_model("other"), what="the request for 'other' to be admitted")
    assert waiter.state == runtime_pb2.MODEL_STATE_WAITING and waiter.active_requests == 1 and waiter.pid == 0
    busy = daemon.running_model("counter")
    assert busy is not None and busy.active_requests == 1  # still loaded, still streaming
    assert not next(stream).done
    stream.cancel()
    thread.join(timeout=60)
    assert waiting and [m.name for m in daemon.running()] == ["other"]


def test_fifty_simultaneous_requests_cause_one_load(fresh_home: Path, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(fresh_home)  # the default queue bound, 512
    last = daemon.last_token("counter", "the")
    daemon.runtime.Unload(runtime_pb2.UnloadRequest(model="counter"), timeout=30)
    with ThreadPoolExecutor(50) as pool:
        texts = list(pool.map(lambda _: daemon.generate("counter", "the", num_predict=3)[0], range(50)))
    assert set(texts) == {expected_text(COUNTING, last, 3)}
    model = daemon.running_model("counter")
    assert model is not None and model.load_count == 2  # the Tokenize above, then one for all fifty


def test_a_restart_loses_nothing_in_the_store(
    fresh_home: Path, counting_gguf: Path, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(fresh_home)
    events = list(daemon.models.Create(models_pb2.CreateRequest(
        model="made-here", modelfile=f"FROM {counting_gguf}\nSYSTEM kept\n"), timeout=60))
    assert events[-1].status == "success"
    before = {m.name: m.digest for m in daemon.models.List(models_pb2.ListRequest(), timeout=10).models}
    daemon.generate("made-here", "the", num_predict=1)
    orphan = daemon.running_model("made-here")
    assert orphan is not None
    # The harshest restart: no shutdown at all. The socket file stays behind.
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    assert daemon.socket.exists()
    wait_until(lambda: not pid_alive(orphan.pid), what="the runner to exit with its daemon")
    again = start_daemon(fresh_home)
    after = {m.name: m.digest for m in again.models.List(models_pb2.ListRequest(), timeout=10).models}
    assert after == before and "made-here" in after
    assert again.models.Show(models_pb2.ShowRequest(model="made-here"), timeout=10).system == "kept"


def test_json_logs_have_one_line_per_request(fresh_home: Path, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(fresh_home, "--log-format", "json")
    daemon.generate("counter", "the", num_predict=3)
    with pytest.raises(grpc.RpcError):
        daemon.generate("missing", "the")
    assert daemon.stop() == 0
    records = [json.loads(line) for line in daemon.log().splitlines() if line.strip()]
    requests = [r for r in records if r.get("message") == "request"]
    ok = next(r for r in requests if r["model"] == "counter")
    assert ok["rpc"] == "Generate" and ok["outcome"] == "ok"
    assert ok["completion_tokens"] == 3 and ok["prompt_tokens"] == 2 and ok["total_ms"] > 0
    failed = next(r for r in requests if r["model"] == "missing")
    assert failed["outcome"] == "not_found"


# 8 layers x 512 wide: 16 KiB of f16 KV cache per token, so 196k tokens of context want 3 GiB.
WIDE = SyntheticSpec(n_embd=512, n_layer=8, n_head=8, n_ctx=262144, counting=True, name="ingot-wide")
RUNNER_ADDRESS_SPACE = 3 * 1024**3


def test_a_load_that_runs_out_of_memory_walks_the_retry_ladder_then_says_what_it_tried(
    fresh_home: Path, tmp_path: Path, start_daemon: StartDaemon
) -> None:
    # The planner sees 20+ GiB free and approves; an address-space limit on the daemon (which its
    # runners inherit) makes llama.cpp's real allocation of the KV cache fail, as a full GPU would.
    make_package(fresh_home, "wide", write_synthetic_gguf(tmp_path / "wide.gguf", WIDE), "PARAMETER num_ctx 196608\n")
    daemon = start_daemon(fresh_home, "--parallel", "1", address_space_limit=RUNNER_ADDRESS_SPACE)

    with pytest.raises(grpc.RpcError) as failed:
        daemon.generate("wide", "1 2 3", num_predict=2)
    assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = failed.value.details()
    assert "ran out of memory while loading" in details
    # Every rung was tried: on a CPU there are no GPU layers to shed, so the batch halves down to 64.
    for batch in (512, 256, 128, 64):
        assert f"batch {batch}" in details
    assert "num_ctx" in details
    assert daemon.running_model("wide") is None

    # The daemon is unharmed, and a model that fits still serves under the same limit.
    last = daemon.last_token("counter", "the")
    text, _ = daemon.generate("counter", "the", num_predict=3)
    assert text == expected_text(COUNTING, last, 3)
