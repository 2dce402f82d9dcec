"""How the engine schedules prompts: oldest first, each streaming as soon as its own prompt is done."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from engine_helpers import WAIT_S, counting_text

from ingot.daemon.engine import Chunk, DoneReason, Engine, GenerateRequest, LoadOptions, SamplingOptions
from ingot.daemon.engine.engine import plan_prompt_calls, prompt_group_tokens
from ingot.daemon.engine.slots import Slot, choose_slot


def greedy(n: int) -> SamplingOptions:
    return SamplingOptions(temperature=0.0, num_predict=n)


def test_prompts_are_evaluated_oldest_first_each_in_a_call_of_its_own() -> None:
    # Long prompts: one llama_decode each, oldest first, all within the step's budget.
    assert plan_prompt_calls([60, 60], budget=512, group_tokens=16) == [[60], [60]]
    # The budget is shared; the prompt at its boundary is chunked, younger ones wait.
    assert plan_prompt_calls([300, 300, 5], budget=512, group_tokens=16) == [[300], [212]]
    assert plan_prompt_calls([900, 5], budget=512, group_tokens=16) == [[512]]
    # Short prompts share a call while it stays within the group size, in order.
    assert plan_prompt_calls([5, 5, 5, 5], budget=512, group_tokens=16) == [[5, 5, 5], [5]]
    assert plan_prompt_calls([5, 30, 2], budget=512, group_tokens=16) == [[5], [30], [2]]
    # Decoding tokens took most of the batch: the oldest prompt gets what is left.
    assert plan_prompt_calls([60, 4], budget=20, group_tokens=16) == [[20]]
    assert plan_prompt_calls([], budget=512, group_tokens=16) == []
    assert plan_prompt_calls([5], budget=0, group_tokens=16) == []
    # A group as large as the batch puts every waiting prompt in one call (a GPU's setting).
    assert plan_prompt_calls([60, 60, 600], budget=512, group_tokens=512) == [[60, 60, 392]]


def test_prompts_are_grouped_on_the_cpu_and_fill_the_batch_on_a_gpu() -> None:
    cpu = prompt_group_tokens(LoadOptions(model_path="m.gguf"), 512)
    assert 1 < cpu < 512
    assert prompt_group_tokens(LoadOptions(model_path="m.gguf", n_gpu_layers=99), 512) == 512


def test_a_new_request_takes_a_free_slot_next_to_busy_ones() -> None:
    # llama.cpp evaluates runs of consecutive sequence ids together: keep the busy ones together.
    slots = [Slot(i) for i in range(6)]
    for i in (0, 1, 3):
        slots[i].request = object()
    assert choose_slot(slots, [1, 2, 3]) == (slots[2], 0)
    slots[2].request = object()
    assert choose_slot(slots, [1, 2, 3]) == (slots[4], 0)
    # A reusable prefix still wins over adjacency.
    slots[5].cached = [1, 9, 9, 9, 9, 9]
    assert choose_slot(slots, [1, 9, 9, 9, 9, 9, 7]) == (slots[5], 6)


def _recorder(
    events: list[tuple[str, Chunk]], stamps: list[int], name: str, done: threading.Event
) -> Callable[[Chunk], None]:
    def sink(chunk: Chunk) -> None:  # runs on the engine thread, so `events` is in delivery order
        events.append((name, chunk))
        stamps.append(time.perf_counter_ns())  # the engine's clock for metrics, too
        if chunk.done:
            done.set()

    return sink


def test_simultaneous_long_prompts_stream_oldest_first(counting_model: Path) -> None:
    with Engine(LoadOptions(model_path=str(counting_model), n_ctx=256, n_parallel=3)) as engine:
        events: list[tuple[str, Chunk]] = []
        stamps: list[int] = []
        paused, resume = threading.Event(), threading.Event()
        done = {name: threading.Event() for name in "CAB"}
        record_c = _recorder(events, stamps, "C", done["C"])

        def hold_the_engine(chunk: Chunk) -> None:
            # The first chunk of C holds the engine thread between two steps while A and B
            # queue up, so both are admitted together: a burst, without any sleep.
            record_c(chunk)
            if not paused.is_set():
                paused.set()
                assert resume.wait(WAIT_S)

        engine.submit(GenerateRequest("the", greedy(40)), hold_the_engine)
        try:
            assert paused.wait(WAIT_S)
            prompt_a = "the team " + " ".join(["water"] * 12)
            prompt_b = "the game " + " ".join(["music"] * 12)
            group = prompt_group_tokens(engine.options, 512)
            assert all(group < len(engine.tokenize(p)) < 128 for p in (prompt_a, prompt_b))
            engine.submit(GenerateRequest(prompt_a, greedy(4)), _recorder(events, stamps, "A", done["A"]))
            engine.submit(GenerateRequest(prompt_b, greedy(4)), _recorder(events, stamps, "B", done["B"]))
        finally:
            resume.set()
        for event in done.values():
            assert event.wait(WAIT_S)

        order = [name for name, _ in events]
        first_a, first_b = order.index("A"), order.index("B")
        assert first_a < first_b
        # B's prompt was evaluated after A's first token was delivered and before B's own: it
        # did not share A's llama_decode (then B's whole evaluation would predate A's token).
        metrics_b = events[-1 - order[::-1].index("B")][1].metrics
        assert metrics_b is not None and metrics_b.prompt_eval_ns > 0
        assert stamps[first_b] - stamps[first_a] >= metrics_b.prompt_eval_ns
        # Both prompts were evaluated in the first step after the pause, before C's token of
        # that step: new prompts do not wait for the running streams' pass.
        assert order[:first_b].count("C") == 1
        texts = {name: "".join(chunk.text for n, chunk in events if n == name) for name in "AB"}
        assert texts["A"] == counting_text(engine, prompt_a, 4)
        assert texts["B"] == counting_text(engine, prompt_b, 4)
        finals = {name: chunk for name, chunk in events if chunk.done}
        assert {name: finals[name].done_reason for name in "CAB"} == dict.fromkeys("CAB", DoneReason.LENGTH)

