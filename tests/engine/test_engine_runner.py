"""The isolated runner: the engine API over a child process, and what happens when the child dies."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import WAIT_S, collect, counting_text, write_aborting_gguf

from ingot.daemon.engine import (
    ContextOverflowError,
    DoneReason,
    EngineError,
    GenerateRequest,
    InvalidRequestError,
    LoadError,
    LoadOptions,
    RunnerClient,
    RunnerDiedError,
    SamplingOptions,
)
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

GREEDY = SamplingOptions(temperature=0.0)


@pytest.fixture
def runner(counting_model: Path) -> Iterator[RunnerClient]:
    client = RunnerClient.start(LoadOptions(model_path=str(counting_model), n_ctx=512, n_parallel=4))
    try:
        yield client
    finally:
        client.close()


def test_runner_serves_the_engine_api_from_another_process(runner: RunnerClient) -> None:
    assert runner.alive() and runner.pid != os.getpid()
    prompts = ["the music", "the water", "the school"]
    streams = [runner.generate(GenerateRequest(p, SamplingOptions(temperature=0.0, num_predict=8))) for p in prompts]
    for prompt, stream in zip(prompts, streams):
        out = collect(stream)
        assert out.text == counting_text(runner, prompt, 8)
        assert out.final.done_reason is DoneReason.LENGTH
        assert out.final.metrics is not None and out.final.metrics.completion_tokens == 8
    tokens = runner.tokenize("the city")
    assert runner.detokenize(tokens).strip() == "the city"
    vectors = runner.embed(["the city", "of music"])
    assert [len(v) for v in vectors] == [64, 64]
    stats = runner.stats()
    assert stats.pid == runner.pid and stats.n_parallel == 4 and stats.active_requests == 0


def test_request_errors_cross_the_process_boundary_with_their_type(runner: RunnerClient) -> None:
    prompt = " ".join(["water"] * 600)
    n_prompt = len(runner.tokenize(prompt))
    with pytest.raises(ContextOverflowError) as info:
        runner.generate(GenerateRequest(prompt))
    assert info.value.over_by == n_prompt - 512
    with pytest.raises(InvalidRequestError, match="grammar"):
        runner.generate(GenerateRequest("hi", SamplingOptions(grammar="root ::= (")))
    with pytest.raises(InvalidRequestError):
        runner.detokenize([-5])
    # The runner is unharmed.
    assert collect(runner.generate(GenerateRequest("the", SamplingOptions(temperature=0.0, num_predict=2)))).text


def test_cancel_through_the_runner_frees_the_slot(runner: RunnerClient) -> None:
    stream = runner.generate(GenerateRequest("the", GREEDY))
    assert not stream.get(timeout=WAIT_S).done
    assert runner.stats().active_requests == 1
    stream.cancel()
    assert collect(stream).final.done_reason is DoneReason.CANCELLED
    assert runner.stats().active_requests == 0


def test_sigkill_mid_stream_fails_every_stream_promptly(runner: RunnerClient) -> None:
    streams = [runner.generate(GenerateRequest(p, GREEDY)) for p in ("the", "the war")]
    for stream in streams:
        assert not stream.get(timeout=WAIT_S).done
    os.kill(runner.pid, signal.SIGKILL)
    started = time.monotonic()
    for stream in streams:
        with pytest.raises(RunnerDiedError, match="SIGKILL"):
            while True:
                stream.get(timeout=WAIT_S)  # queue.Empty here would mean a hang
    assert time.monotonic() - started < 10
    assert not runner.alive()
    with pytest.raises(RunnerDiedError):
        runner.generate(GenerateRequest("the", GREEDY))
    with pytest.raises(RunnerDiedError):
        runner.stats()


def test_a_call_in_flight_when_the_runner_dies_raises(runner: RunnerClient) -> None:
    errors: "queue.SimpleQueue[BaseException]" = queue.SimpleQueue()
    stream = runner.generate(GenerateRequest("the", GREEDY))
    assert not stream.get(timeout=WAIT_S).done

    def embed_forever() -> None:
        try:
            while True:
                runner.embed(["the city of music"] * 8)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.put(exc)

    thread = threading.Thread(target=embed_forever)
    thread.start()
    runner.kill()
    thread.join(timeout=WAIT_S)
    assert not thread.is_alive()
    assert isinstance(errors.get_nowait(), RunnerDiedError)


def test_a_gguf_that_aborts_llama_cpp_is_a_load_error(tmp_path: Path) -> None:
    model = write_aborting_gguf(tmp_path / "aborting.gguf")
    started = time.monotonic()
    with pytest.raises(LoadError, match="SIGABRT") as info:
        RunnerClient.start(LoadOptions(model_path=str(model)), startup_timeout=60)
    assert time.monotonic() - started < 30
    assert "GGML_ASSERT" in str(info.value)  # the child's last words are in the message


def test_a_file_that_is_not_gguf_is_a_clean_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 60)
    with pytest.raises(LoadError, match="could not load"):
        RunnerClient.start(LoadOptions(model_path=str(bad)))
    with pytest.raises(LoadError, match="not found"):
        RunnerClient.start(LoadOptions(model_path=str(tmp_path / "missing.gguf")))


def test_graceful_close_ends_open_streams_and_the_process(counting_model: Path) -> None:
    client = RunnerClient.start(LoadOptions(model_path=str(counting_model), n_ctx=512, n_parallel=2))
    stream = client.generate(GenerateRequest("the", GREEDY))
    assert not stream.get(timeout=WAIT_S).done
    client.close()
    final = collect(stream).final
    assert final.done_reason is DoneReason.ERROR and final.error
    assert not client.alive()
    with pytest.raises(EngineError, match="closed"):
        client.generate(GenerateRequest("the", GREEDY))


def test_a_kv_cache_too_large_to_allocate_is_an_out_of_memory_load_error(tmp_path: Path) -> None:
    # 128 layers make a cache cell 32 KiB, so 2**23 cells ask for 256 GiB in one allocation,
    # which the kernel refuses outright. It runs in a runner all the same: on a machine that
    # overcommits memory, a child process is what gets killed, not the test run.
    deep = write_synthetic_gguf(tmp_path / "deep.gguf", SyntheticSpec(n_embd=64, n_layer=128, name="ingot-deep"))
    options = LoadOptions(model_path=str(deep), n_ctx=2**20, n_parallel=8)
    with pytest.raises(LoadError) as info:
        RunnerClient.start(options)
    assert info.value.out_of_memory
    assert "allocate" in str(info.value)
