"""Priorities in the engine: interactive requests take slots first and pause batch ones; batch work ages.

Every test holds the engine thread inside a chunk sink (between two steps)
while it queues more requests, so the state each step starts from is exact;
what happened is read back from the engine's own queue counters (stats) and
from the order chunks were delivered in, never from timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import WAIT_S, collect, counting_text

from ingot.daemon.engine import (
    Chunk,
    DoneReason,
    Engine,
    GenerateRequest,
    LoadOptions,
    Priority,
    QueueFullError,
    SamplingOptions,
)
from ingot.daemon.engine.admission import WaitQueue
from ingot.daemon.engine.protocol import decode_request, encode_request

BATCH = Priority.BATCH


def greedy(n: int) -> SamplingOptions:
    return SamplingOptions(temperature=0.0, num_predict=n)


class Recorder:
    """Sinks that log (name, chunk) in delivery order; one of them can hold the engine on a chosen chunk."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Chunk]] = []
        self.done: dict[str, threading.Event] = {}
        self.held = threading.Event()
        self.release = threading.Event()

    def sink(self, name: str, *, hold_at: int | None = None) -> Callable[[Chunk], None]:
        self.done[name] = threading.Event()
        seen = 0

        def record(chunk: Chunk) -> None:  # on the engine thread
            nonlocal seen
            self.events.append((name, chunk))
            seen += 1
            if chunk.done:
                self.done[name].set()
            if hold_at is not None and seen == hold_at:
                self.held.set()
                assert self.release.wait(WAIT_S)

        return record

    def wait_all(self) -> None:
        for name, event in self.done.items():
            assert event.wait(WAIT_S), f"{name} never finished"

    def order_done(self) -> list[str]:
        return [name for name, chunk in self.events if chunk.done]

    def text(self, name: str) -> str:
        return "".join(chunk.text for n, chunk in self.events if n == name)

    def final(self, name: str) -> Chunk:
        return next(chunk for n, chunk in self.events if n == name and chunk.done)


class FirstChunkHold:
    """A sink that records into `record` and holds the engine thread on its first chunk, apart from a Recorder's hold."""

    def __init__(self, record: Callable[[Chunk], None]) -> None:
        self.record = record
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, chunk: Chunk) -> None:  # on the engine thread
        self.record(chunk)
        if not self.held.is_set():
            self.held.set()
            assert self.release.wait(WAIT_S)


def one_slot(model: Path, **engine_args: int) -> Engine:
    return Engine(LoadOptions(model_path=str(model), n_ctx=256, n_parallel=1), **engine_args)


def test_an_interactive_request_pauses_a_batch_sequence_and_the_batch_output_is_unchanged(
    counting_model: Path,
) -> None:
    with one_slot(counting_model) as engine:
        log = Recorder()
        engine.submit(GenerateRequest("the war", greedy(12), priority=BATCH), log.sink("batch", hold_at=3))
        assert log.held.wait(WAIT_S)
        try:
            engine.submit(GenerateRequest("the light", greedy(4)), log.sink("interactive"))
            stats = engine.stats()
            assert (stats.running_batch, stats.waiting_interactive, stats.preemptions) == (1, 1, 0)
        finally:
            log.release.set()
        log.wait_all()
        names = [name for name, _ in log.events]
        first = names.index("interactive")
        # The next step after the arrival ran the interactive request alone, start to end.
        assert names[first:first + names.count("interactive")] == ["interactive"] * names.count("interactive")
        assert names[:first] == ["batch"] * 3
        assert log.order_done() == ["interactive", "batch"]
        assert log.text("interactive") == counting_text(engine, "the light", 4)
        assert log.text("batch") == counting_text(engine, "the war", 12)
        metrics = log.final("batch").metrics
        assert metrics is not None
        assert (metrics.prompt_tokens, metrics.completion_tokens) == (len(engine.tokenize("the war")), 12)
        stats = engine.stats()
        assert stats.preemptions == 1
        assert (stats.running_batch, stats.waiting_batch, stats.running_interactive) == (0, 0, 0)


def test_an_interactive_arrival_waits_for_one_batch_prompt_not_for_every_one_admitted(counting_model: Path) -> None:
    # Prompts longer than the CPU's prompt group: each batch prompt is a llama_decode call of its own.
    long_a = " ".join(["the war"] * 12)
    long_b = " ".join(["the light"] * 12)
    with Engine(LoadOptions(model_path=str(counting_model), n_ctx=256, n_parallel=3)) as engine:
        log = Recorder()
        engine.submit(GenerateRequest("the", greedy(8)), log.sink("first", hold_at=1))
        assert log.held.wait(WAIT_S)
        # Both batch requests are admitted in the next step, as a batch run's requests are.
        hold_a = FirstChunkHold(log.sink("batch-a"))
        engine.submit(GenerateRequest(long_a, greedy(3), priority=BATCH), hold_a)
        engine.submit(GenerateRequest(long_b, greedy(3), priority=BATCH), log.sink("batch-b"))
        log.release.set()
        assert hold_a.held.wait(WAIT_S)  # batch-a's prompt is done; batch-b's is still to come this step
        try:
            engine.submit(GenerateRequest("the light", greedy(3)), log.sink("second"))
            assert engine.stats().waiting_interactive == 1
        finally:
            hold_a.release.set()
        log.wait_all()
        firsts = [name for index, (name, _) in enumerate(log.events) if name not in [n for n, _ in log.events[:index]]]
        # "second" was admitted right after batch-a's prompt: its prompt ran before batch-b's.
        assert firsts == ["first", "batch-a", "second", "batch-b"]
        assert log.text("batch-b") == counting_text(engine, long_b, 3)
        assert log.text("second") == counting_text(engine, "the light", 3)


def test_a_slot_kept_for_interactive_requests_spares_batch_work_a_pause(counting_model: Path) -> None:
    options = LoadOptions(model_path=str(counting_model), n_ctx=256, n_parallel=2, interactive_slots=1)
    with Engine(options) as engine:
        log = Recorder()
        engine.submit(GenerateRequest("the war", greedy(4), priority=BATCH), log.sink("batch-a"))
        hold_b = FirstChunkHold(log.sink("batch-b"))
        engine.submit(GenerateRequest("the light", greedy(6), priority=BATCH), hold_b)
        assert hold_b.held.wait(WAIT_S)  # both batch requests are running, or one ran and the other runs now
        try:
            running_batch = engine.stats().running_batch
            engine.submit(GenerateRequest("the", greedy(3)), log.sink("interactive"))
        finally:
            hold_b.release.set()
        log.wait_all()
        # Batch work never had the kept slot: only one batch sequence ran at a time, so batch-b started after
        # batch-a; the interactive request found the kept slot free and paused nothing.
        assert running_batch == 1
        assert engine.stats().preemptions == 0
        assert log.order_done() == ["batch-a", "interactive", "batch-b"]
        assert log.text("batch-a") == counting_text(engine, "the war", 4)
        assert log.text("batch-b") == counting_text(engine, "the light", 6)


@pytest.mark.parametrize("reserved", [2, -1])
def test_interactive_slots_must_leave_batch_work_a_slot(counting_model: Path, reserved: int) -> None:
    from ingot.daemon.engine import LoadError

    with pytest.raises(LoadError, match="interactive_slots must be 0 to n_parallel - 1"):
        Engine(LoadOptions(model_path=str(counting_model), n_ctx=256, n_parallel=2, interactive_slots=reserved))


def test_a_paused_sampled_sequence_resumes_exactly(quantized_model: Path) -> None:
    # Random weights, temperature 1, a seed: any slip in the resumed state (a token fed twice,
    # the sampler's RNG or penalty history reset) changes the text.
    sampling = SamplingOptions(temperature=1.0, seed=5, num_predict=30, repeat_penalty=1.1)
    with one_slot(quantized_model) as engine:
        alone = collect(engine.generate(GenerateRequest("Once upon a time", sampling, priority=BATCH))).text
        log = Recorder()
        engine.submit(GenerateRequest("Once upon a time", sampling, priority=BATCH), log.sink("batch", hold_at=10))
        assert log.held.wait(WAIT_S)
        try:
            engine.submit(GenerateRequest("A different prompt entirely", greedy(5)), log.sink("interactive"))
        finally:
            log.release.set()
        log.wait_all()
        assert log.order_done() == ["interactive", "batch"]
        assert engine.stats().preemptions == 1
        assert log.text("batch") == alone


def test_interactive_work_never_preempts_interactive_work_and_batch_waits_its_turn(counting_model: Path) -> None:
    with one_slot(counting_model) as engine:
        log = Recorder()
        engine.submit(GenerateRequest("the", greedy(6)), log.sink("first", hold_at=2))
        assert log.held.wait(WAIT_S)
        try:
            engine.submit(GenerateRequest("the war", greedy(3), priority=BATCH), log.sink("batch"))
            engine.submit(GenerateRequest("the light", greedy(3)), log.sink("second"))
            stats = engine.stats()
            assert (stats.running_interactive, stats.waiting_interactive, stats.waiting_batch) == (1, 1, 1)
        finally:
            log.release.set()
        log.wait_all()
        # The batch request came before "second" but waits behind it.
        assert log.order_done() == ["first", "second", "batch"]
        assert engine.stats().preemptions == 0


def test_a_batch_request_passed_over_patience_times_goes_next_and_is_not_preempted(counting_model: Path) -> None:
    with one_slot(counting_model, patience=2) as engine:
        log = Recorder()
        engine.submit(GenerateRequest("the", greedy(3)), log.sink("i0", hold_at=1))
        assert log.held.wait(WAIT_S)
        try:
            engine.submit(GenerateRequest("the war", greedy(8), priority=BATCH), log.sink("batch"))
            for name in ("i1", "i2", "i3"):
                engine.submit(GenerateRequest("the light", greedy(3)), log.sink(name))
        finally:
            log.release.set()
        log.wait_all()
        # i1 and i2 passed it over; then it was aged: ahead of i3, and i3 could not pause it.
        assert log.order_done() == ["i0", "i1", "i2", "batch", "i3"]
        assert engine.stats().preemptions == 0
        assert log.text("batch") == counting_text(engine, "the war", 8)


def test_batch_requests_never_fill_the_queue_for_interactive_ones(counting_model: Path) -> None:
    with one_slot(counting_model, max_queue=1) as engine:
        running = engine.generate(GenerateRequest("the", greedy(200), priority=BATCH))
        assert not running.get(timeout=WAIT_S).done
        waiting = engine.generate(GenerateRequest("the war", greedy(3), priority=BATCH))
        with pytest.raises(QueueFullError):
            engine.generate(GenerateRequest("the team", greedy(3), priority=BATCH))
        urgent = collect(engine.generate(GenerateRequest("the light", greedy(3))))
        assert urgent.final.done_reason is DoneReason.LENGTH
        assert urgent.text == counting_text(engine, "the light", 3)
        running.cancel()
        assert collect(running).final.done_reason is DoneReason.CANCELLED
        assert collect(waiting).text == counting_text(engine, "the war", 3)


def test_the_priority_crosses_the_runner_wire() -> None:
    request = GenerateRequest("hi", greedy(2), priority=BATCH)
    assert decode_request(encode_request(request)) == request
    assert decode_request({"prompt": "hi"}).priority is Priority.INTERACTIVE


def test_the_wait_queue_orders_aged_then_interactive_then_batch() -> None:
    class Req:
        def __init__(self, name: str, priority: Priority) -> None:
            self.name, self.priority, self.cancelled, self.passed_over = name, priority, False, 0

    queue = WaitQueue(patience=1)
    b1, i1, b2 = Req("b1", BATCH), Req("i1", Priority.INTERACTIVE), Req("b2", BATCH)
    for req in (b1, i1, b2):
        queue.append(req)  # type: ignore[arg-type]
    assert [r.name for r in queue.in_order()] == ["i1", "b1", "b2"]  # type: ignore[attr-defined]
    queue.remove(i1)  # type: ignore[arg-type]
    queue.pass_over(1)
    assert queue.aged(b1) and queue.aged(b2)  # type: ignore[arg-type]
    i2 = Req("i2", Priority.INTERACTIVE)
    queue.append(i2)  # type: ignore[arg-type]
    assert [r.name for r in queue.in_order()] == ["b1", "b2", "i2"]  # type: ignore[attr-defined]
    b2.cancelled = True
    assert queue.drop_cancelled() == [b2]
    assert queue.counts() == (1, 1)
