"""The in-process engine on real llama.cpp: batching, sampling, stops, context, cancellation, prefix reuse."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from engine_helpers import collect, counting_pieces, counting_text

from ingot.daemon.engine import (
    ContextOverflowError,
    DoneReason,
    Engine,
    EngineError,
    GenerateRequest,
    InvalidRequestError,
    LoadError,
    LoadOptions,
    QueueFullError,
    SamplingOptions,
)

GREEDY = SamplingOptions(temperature=0.0)


def greedy(n: int, **kwargs: object) -> SamplingOptions:
    return SamplingOptions(temperature=0.0, num_predict=n, **kwargs)  # type: ignore[arg-type]


def test_counting_model_continues_from_the_last_prompt_token(counting_engine: Engine) -> None:
    prompt = "the city of music"
    out = collect(counting_engine.generate(GenerateRequest(prompt, greedy(12))))
    assert out.text == counting_text(counting_engine, prompt, 12)
    metrics = out.final.metrics
    assert out.final.done_reason is DoneReason.LENGTH
    assert metrics is not None
    assert metrics.prompt_tokens == len(counting_engine.tokenize(prompt))
    assert metrics.completion_tokens == 12
    assert 0 < metrics.time_to_first_token_ns <= metrics.total_ns
    assert metrics.prompt_eval_ns > 0 and metrics.eval_ns > 0


def test_concurrent_streams_never_mix(counting_engine: Engine) -> None:
    # More requests than slots, different lengths: requests join and leave the batch mid-flight.
    words = ["school", "music", "water", "team", "family", "people", "house", "game", "light", "war"]
    prompts = [f"the {word}" for word in words]
    lengths = [5 + 3 * i for i in range(len(prompts))]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = collect(counting_engine.generate(GenerateRequest(prompts[i], greedy(lengths[i])))).text
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for i, prompt in enumerate(prompts):
        assert results[i] == counting_text(counting_engine, prompt, lengths[i]), prompt


def test_same_seed_gives_the_same_text_alone_and_under_concurrency(quantized_model: Path) -> None:
    with Engine(LoadOptions(model_path=str(quantized_model), n_ctx=256, n_parallel=4)) as engine:

        def run(seed: int, prompt: str = "Once upon a time") -> str:
            sampling = SamplingOptions(temperature=1.0, seed=seed, num_predict=40)
            return collect(engine.generate(GenerateRequest(prompt, sampling))).text

        alone = run(42)
        assert len(alone) > 20
        assert run(42) == alone  # the second run reuses the cached prompt
        assert run(43) != alone
        for _ in range(3):
            results: dict[int, str] = {}

            def worker(i: int) -> None:
                results[i] = run(42) if i % 2 == 0 else run(1000 + i, f"another prompt number {i}")

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert [results[i] for i in range(0, 8, 2)] == [alone] * 4


def test_stop_string_across_a_token_boundary_is_cut_and_never_streamed(counting_engine: Engine) -> None:
    prompt = "the light"
    pieces = counting_pieces(counting_engine, prompt, 12)
    full = "".join(pieces)
    # The last character of token 5 and the first two of token 6: no single token holds it.
    stop = pieces[4][-1:] + pieces[5][:2]
    assert len(pieces[5]) > 2
    cut = full.index(stop)
    stream = counting_engine.generate(GenerateRequest(prompt, greedy(12, stop=("never appears", stop))))
    out = collect(stream)
    assert out.final.done_reason is DoneReason.STOP
    # The chunks concatenate to exactly the text before the stop: no chunk carried any part of it.
    assert out.text == full[:cut]


def test_text_held_for_a_possible_stop_is_released_when_it_is_not_one(counting_engine: Engine) -> None:
    prompt = "the light"
    full = counting_text(counting_engine, prompt, 8)
    # Starts like the output's end, then diverges: held back until generation ends, then released.
    stop = full[-2:] + "\u2603"
    out = collect(counting_engine.generate(GenerateRequest(prompt, greedy(8, stop=(stop,)))))
    assert out.text == full
    assert out.final.done_reason is DoneReason.LENGTH


def test_generation_that_fills_the_context_ends_with_length(counting_model: Path) -> None:
    with Engine(LoadOptions(model_path=str(counting_model), n_ctx=64, n_parallel=2)) as engine:
        prompt = "the water of the world"
        n_prompt = len(engine.tokenize(prompt))
        out = collect(engine.generate(GenerateRequest(prompt, GREEDY)))
        assert out.final.done_reason is DoneReason.LENGTH
        assert out.final.metrics is not None
        # Every cell is used; the token sampled from the last one is still delivered.
        assert out.final.metrics.completion_tokens == engine.n_ctx_seq - n_prompt + 1
        assert out.text == counting_text(engine, prompt, engine.n_ctx_seq - n_prompt + 1)


def test_prompt_longer_than_the_window_is_an_error_that_says_by_how_much(counting_model: Path) -> None:
    with Engine(LoadOptions(model_path=str(counting_model), n_ctx=32, n_parallel=1)) as engine:
        prompt = " ".join(["water"] * 40)
        n_prompt = len(engine.tokenize(prompt))
        with pytest.raises(ContextOverflowError) as info:
            engine.generate(GenerateRequest(prompt, greedy(4)))
        assert info.value.over_by == n_prompt - engine.n_ctx_seq
        assert f"over by {n_prompt - engine.n_ctx_seq} tokens" in str(info.value)


def test_truncation_keeps_the_prefix_and_the_end_and_reports_what_it_dropped(counting_model: Path) -> None:
    with Engine(LoadOptions(model_path=str(counting_model), n_ctx=32, n_parallel=1)) as engine:
        prompt = " ".join(["water"] * 40) + " the"
        n_prompt = len(engine.tokenize(prompt))
        out = collect(engine.generate(GenerateRequest(prompt, greedy(4), truncatable_after=3)))
        metrics = out.final.metrics
        assert metrics is not None
        assert metrics.truncated_tokens == n_prompt - metrics.prompt_tokens > 0
        assert metrics.prompt_tokens + 4 <= engine.n_ctx_seq
        # The end of the prompt survived: the model still counts on from its last token.
        assert out.text == counting_text(engine, prompt, 4)


def test_second_turn_reuses_the_cached_prefix(counting_engine: Engine) -> None:
    turn1 = "the school of music"
    first = collect(counting_engine.generate(GenerateRequest(turn1, greedy(6))))
    assert first.final.metrics is not None and first.final.metrics.cached_prompt_tokens == 0
    # Another conversation in between takes a different slot and leaves the first one's cache alone.
    collect(counting_engine.generate(GenerateRequest("people of the city", greedy(6))))
    turn2 = turn1 + first.text + " and the team"
    second = collect(counting_engine.generate(GenerateRequest(turn2, greedy(6))))
    metrics = second.final.metrics
    assert metrics is not None
    assert metrics.cached_prompt_tokens >= len(counting_engine.tokenize(turn1))
    assert metrics.cached_prompt_tokens < metrics.prompt_tokens
    assert second.text == counting_text(counting_engine, turn2, 6)


def test_cancel_frees_the_slot(counting_model: Path) -> None:
    with Engine(LoadOptions(model_path=str(counting_model), n_ctx=4096, n_parallel=1)) as engine:
        endless = engine.generate(GenerateRequest("the", GREEDY))
        queued = engine.generate(GenerateRequest("the war", greedy(3)))
        for _ in range(3):
            assert not endless.get(timeout=30).done
        assert engine.stats().active_requests == 1
        endless.cancel()
        final = collect(endless).final
        assert final.done_reason is DoneReason.CANCELLED
        # The one slot went to the queued request, which runs to completion.
        out = collect(queued)
        assert out.final.done_reason is DoneReason.LENGTH
        assert out.text == counting_text(engine, "the war", 3)
        stats = engine.stats()
        assert (stats.active_requests, stats.queued_requests) == (0, 0)


def test_cancel_while_queued_and_the_queue_bound(counting_model: Path) -> None:
    options = LoadOptions(model_path=str(counting_model), n_ctx=4096, n_parallel=1)
    with Engine(options, max_queue=1) as engine:
        running = engine.generate(GenerateRequest("the", GREEDY))
        assert not running.get(timeout=30).done  # it holds the only slot now
        waiting = engine.generate(GenerateRequest("the war", greedy(3)))
        with pytest.raises(QueueFullError):
            engine.generate(GenerateRequest("the team", greedy(3)))
        assert engine.stats().queued_requests == 1
        waiting.cancel()
        final = collect(waiting).final
        assert final.done_reason is DoneReason.CANCELLED
        assert final.metrics is not None and final.metrics.completion_tokens == 0
        running.cancel()
        assert collect(running).final.done_reason is DoneReason.CANCELLED
        assert engine.stats().active_requests == 0


def test_json_output_parses(quantized_model: Path) -> None:
    # Random weights under the JSON grammar: every reply that ends by itself must be valid JSON.
    finished: list[str] = []
    with Engine(LoadOptions(model_path=str(quantized_model), n_ctx=1024, n_parallel=2)) as engine:
        for seed in range(8):
            sampling = SamplingOptions(temperature=1.0, json_output=True, seed=seed, num_predict=600)
            out = collect(engine.generate(GenerateRequest("Answer in JSON:", sampling)))
            if out.final.done_reason is DoneReason.STOP:
                assert isinstance(json.loads(out.text), dict)
                finished.append(out.text)
            else:
                assert out.final.done_reason is DoneReason.LENGTH
    assert len(finished) >= 3
    assert max(len(text) for text in finished) > 20  # not only "{}"


def test_a_custom_grammar_shapes_the_reply(random_engine: Engine) -> None:
    grammar = 'root ::= "{\\"answer\\": " [1-9] [0-9]{0,4} "}"'
    sampling = SamplingOptions(temperature=1.0, seed=5, num_predict=50, grammar=grammar)
    out = collect(random_engine.generate(GenerateRequest("Pick a number:", sampling)))
    assert out.final.done_reason is DoneReason.STOP
    assert set(json.loads(out.text)) == {"answer"}


def test_a_grammar_that_does_not_parse_is_refused_up_front(random_engine: Engine) -> None:
    with pytest.raises(InvalidRequestError, match="grammar"):
        random_engine.generate(GenerateRequest("hi", SamplingOptions(grammar="root ::= ( unclosed")))


@pytest.mark.parametrize(
    "sampling",
    [SamplingOptions(top_p=1.5), SamplingOptions(temperature=float("nan")), SamplingOptions(stop=("",))],
)
def test_bad_sampling_options_are_refused(random_engine: Engine, sampling: SamplingOptions) -> None:
    with pytest.raises(InvalidRequestError):
        random_engine.generate(GenerateRequest("hi", sampling))


def test_penalties_and_truncating_samplers_still_generate(random_engine: Engine) -> None:
    sampling = SamplingOptions(
        temperature=0.7, top_k=20, top_p=0.8, min_p=0.05, typical_p=0.9, repeat_penalty=1.3,
        presence_penalty=0.5, frequency_penalty=0.5, repeat_last_n=-1, seed=3, num_predict=20,
    )  # fmt: skip
    out = collect(random_engine.generate(GenerateRequest("Once upon a time", sampling)))
    assert out.final.metrics is not None and out.final.metrics.completion_tokens > 0


def test_embeddings_are_batched_normalized_and_deterministic(random_engine: Engine) -> None:
    texts = ["the city of water", "music and light", "the city of water"]
    vectors = random_engine.embed(texts)
    assert len(vectors) == 3 and all(len(v) == 64 for v in vectors)
    for vector in vectors:
        assert sum(x * x for x in vector) == pytest.approx(1.0, rel=1e-5)
    assert vectors[0] == pytest.approx(vectors[2], abs=1e-5)
    assert vectors[0] != pytest.approx(vectors[1], abs=1e-3)
    alone = random_engine.embed(["music and light"])[0]
    assert alone == pytest.approx(vectors[1], abs=1e-4)
    raw = random_engine.embed(["music and light"], normalize=False)[0]
    assert sum(x * x for x in raw) != pytest.approx(1.0, rel=1e-3)


def test_tokenize_and_detokenize_round_trip(random_engine: Engine) -> None:
    tokens = random_engine.tokenize("the city of music")
    assert tokens[0] == 1  # BOS
    assert random_engine.tokenize("the city of music", add_bos=False) == tokens[1:]
    assert random_engine.detokenize(tokens).strip() == "the city of music"
    with pytest.raises(InvalidRequestError):
        random_engine.detokenize([10**6])


def test_stats_describe_the_runner(random_engine: Engine) -> None:
    stats = random_engine.stats()
    assert (stats.n_ctx, stats.n_parallel, stats.active_requests, stats.queued_requests) == (256, 4, 0, 0)
    assert stats.kv_cache_bytes > 0 and stats.model_bytes > 0 and stats.rss_bytes > 0


def test_closing_ends_open_streams_and_refuses_new_work(counting_model: Path) -> None:
    engine = Engine(LoadOptions(model_path=str(counting_model), n_ctx=4096, n_parallel=1))
    stream = engine.generate(GenerateRequest("the", GREEDY))
    assert not stream.get(timeout=30).done
    engine.close()
    final = collect(stream).final
    assert final.done_reason is DoneReason.ERROR and final.error
    with pytest.raises(EngineError, match="closed"):
        engine.generate(GenerateRequest("the", GREEDY))
    engine.close()  # idempotent


def test_load_errors_are_load_errors(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="not found"):
        Engine(LoadOptions(model_path=str(tmp_path / "missing.gguf")))
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("this is not a model\n")
    with pytest.raises(LoadError, match="magic"):
        Engine(LoadOptions(model_path=str(not_gguf)))
    with pytest.raises(LoadError, match="n_parallel"):
        Engine(LoadOptions(model_path=str(not_gguf), n_parallel=0))


def test_flush_follows_every_decode_and_batches_the_streams_of_one_pass(counting_model: Path) -> None:
    # The runner's wire sends one frame per flush: chunks must never wait past the pass that made them,
    # and streams decoded together must share a flush.
    events: list[tuple[str, int]] = []
    done = threading.Event()
    finished: set[int] = set()

    def sink_for(request: int):  # noqa: ANN202 - a local factory
        def sink(chunk: object) -> None:
            events.append(("chunk", request))
            if getattr(chunk, "done", False):
                finished.add(request)
                if len(finished) == 2:
                    done.set()

        return sink

    options = LoadOptions(model_path=str(counting_model), n_ctx=128, n_parallel=2)
    with Engine(options, flush=lambda: events.append(("flush", 0))) as engine:
        for request in (1, 2):
            engine.submit(GenerateRequest(f"the team {request}", greedy(20)), sink_for(request))
        assert done.wait(30)
        engine.close()
    assert events[-1] == ("flush", 0)
    between: list[set[int]] = [set()]
    for kind, request in events:
        if kind == "flush":
            between.append(set())
        else:
            between[-1].add(request)
    assert {1, 2} in between  # both streams' tokens of one pass went out in one flush
