"""Benchmark the engine against llama-cpp-python's `Llama` on the synthetic bench model.

    python benchmarks/bench_engine.py [--model bench-data/bench-q4_k_m.gguf] [--tokens 128] [--rounds 3]

Every comparison alternates its two sides (A B A B ...) in one process, so a
noisy, shared machine hurts both alike; the table shows medians and ratios.

1. single-stream decode tokens/s: `Engine` vs `Llama.create_completion(stream=True)`,
   same model, threads, context, flash attention and sampling (target >= 0.97x);
2. 8 concurrent streams, aggregate tokens/s: an 8-slot engine vs a 1-slot engine
   serving the same 8 requests (target >= 1.5x);
3. time to first token: 8 simultaneous arrivals (p50), and one arrival while 7
   streams are decoding, each against one request on an idle engine (target <= 2x);
4. resident memory across many sequential requests (should stay flat).

Prompts are made unique per run so no side profits from a cached prefix.
The model is made with benchmarks/make_bench_model.py when it is missing.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingot.daemon.engine import Engine, GenerateRequest, LoadOptions, SamplingOptions
from ingot.daemon.engine.process_memory import rss_bytes

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "bench-data" / "bench-q4_k_m.gguf"
N_CTX = 1024
SEED = 1234
TEMPERATURE, TOP_K, TOP_P, MIN_P = 0.8, 40, 0.95, 0.05

_unique = itertools.count(1)


def prompt(tag: str = "") -> str:
    """A ~30-token prompt, different every call (no prefix cache hits on either side)."""
    n = next(_unique)
    return (
        f"Story {n}{tag}: once upon a time in a small city by the water there lived a family "
        "of people who made music in their house every day of the year"
    )


def sampling(tokens: int) -> SamplingOptions:
    return SamplingOptions(
        temperature=TEMPERATURE, top_k=TOP_K, top_p=TOP_P, min_p=MIN_P, seed=SEED, num_predict=tokens
    )


@dataclass(frozen=True)
class Run:
    tokens: int
    seconds: float  # first token to last token
    ttft: float

    @property
    def rate(self) -> float:
        return (self.tokens - 1) / self.seconds if self.seconds > 0 else 0.0


# -- the two single-stream contestants ------------------------------------------------------------


def engine_run(engine: Engine, tokens: int) -> Run:
    started = time.perf_counter()
    first = 0.0
    final = None
    for chunk in engine.generate(GenerateRequest(prompt(), sampling(tokens))):
        if not first:
            first = time.perf_counter()
        final = chunk
    end = time.perf_counter()
    assert final is not None and final.metrics is not None
    return Run(final.metrics.completion_tokens, end - first, first - started)


def llama_run(llama: object, tokens: int) -> Run:
    text = prompt()
    started = time.perf_counter()
    first = 0.0
    stream = llama.create_completion(  # type: ignore[attr-defined]
        text, max_tokens=tokens, temperature=TEMPERATURE, top_k=TOP_K, top_p=TOP_P, min_p=MIN_P,
        repeat_penalty=1.0, seed=SEED, stream=True,
    )  # fmt: skip
    for _chunk in stream:
        if not first:
            first = time.perf_counter()
    end = time.perf_counter()
    # Chunks are not tokens (Llama holds bytes back); the context knows how many it evaluated:
    # the prompt plus every generated token but the last.
    n_prompt = len(llama.tokenize(text.encode("utf-8")))  # type: ignore[attr-defined]
    return Run(llama.n_tokens - n_prompt + 1, end - first, first - started)  # type: ignore[attr-defined]


# -- scenarios ------------------------------------------------------------------------------------


def alternate(rounds: int, a: Callable[[], float], b: Callable[[], float]) -> tuple[list[float], list[float]]:
    results_a: list[float] = []
    results_b: list[float] = []
    for _ in range(rounds):
        results_a.append(a())
        results_b.append(b())
    return results_a, results_b


def concurrent(engine: Engine, n: int, tokens: int) -> tuple[float, list[float]]:
    """n requests at once; returns (aggregate tokens/s, each request's TTFT in seconds)."""
    results: list[tuple[int, float]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def one() -> None:
        text = prompt(" (concurrent)")
        barrier.wait()
        final = None
        for chunk in engine.generate(GenerateRequest(text, sampling(tokens))):
            final = chunk
        assert final is not None and final.metrics is not None
        with lock:
            results.append((final.metrics.completion_tokens, final.metrics.time_to_first_token_ns / 1e9))

    threads = [threading.Thread(target=one) for _ in range(n)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return sum(t for t, _ in results) / elapsed, [ttft for _, ttft in results]


def ttft_while_busy(engine: Engine, busy: int, tokens: int) -> float:
    """TTFT of one request that arrives while `busy` others are decoding."""
    streams = [engine.generate(GenerateRequest(prompt(" (background)"), sampling(10 * tokens))) for _ in range(busy)]
    for stream in streams:
        next(stream)  # every background stream is decoding now
    ttft = engine_run(engine, 4).ttft
    for stream in streams:
        stream.cancel()
        for _ in stream:
            pass
    return ttft


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ensure_model(path: Path) -> Path:
    if path.exists():
        return path
    print(f"{path} is missing; making it with benchmarks/make_bench_model.py", file=sys.stderr)
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_bench_model.py"), "--out-dir", str(path.parent)], check=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"GGUF to run (default {DEFAULT_MODEL})")
    parser.add_argument("--tokens", type=int, default=128, help="tokens generated per request (default 128)")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds per comparison (default 3)")
    parser.add_argument("--streams", type=int, default=8, help="concurrent streams (default 8)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both sides (default: all cores)")
    parser.add_argument("--memory-requests", type=int, default=40, help="sequential requests for the memory check")
    args = parser.parse_args(argv)
    model = ensure_model(args.model)

    import llama_cpp  # only the baseline needs the high-level class

    options = LoadOptions(model_path=str(model), n_ctx=N_CTX, n_parallel=args.streams, n_threads=args.threads)
    rows: list[tuple[str, str, str, str, str]] = []
    with Engine(options) as engine, Engine(
        LoadOptions(model_path=str(model), n_ctx=N_CTX, n_parallel=1, n_threads=args.threads)
    ) as one_slot:
        llama = llama_cpp.Llama(
            model_path=str(model), n_ctx=N_CTX, n_threads=args.threads, n_threads_batch=args.threads,
            flash_attn=False, verbose=False, seed=SEED,  # the engine's CPU setting (docs/engine.md)
        )  # fmt: skip
        try:
            # Warm both (page in the weights, build graphs) before timing.
            engine_run(engine, 8)
            engine_run(one_slot, 8)
            llama_run(llama, 8)

            ours, theirs = alternate(
                args.rounds, lambda: engine_run(engine, args.tokens).rate, lambda: llama_run(llama, args.tokens).rate
            )
            ratio = median(ours) / median(theirs)
            rows.append(("single-stream decode tok/s", f"{median(ours):.1f}", f"Llama {median(theirs):.1f}", f"{ratio:.2f}x", ">= 0.97x"))

            many, single = alternate(
                args.rounds,
                lambda: concurrent(engine, args.streams, args.tokens)[0],
                lambda: concurrent(one_slot, args.streams, args.tokens)[0],
            )
            ratio = median(many) / median(single)
            rows.append((f"{args.streams} streams aggregate tok/s", f"{median(many):.1f}", f"1 slot {median(single):.1f}", f"{ratio:.2f}x", ">= 1.5x"))

            burst_p50: list[float] = []
            idle: list[float] = []
            busy: list[float] = []
            for _ in range(args.rounds):
                idle.append(engine_run(engine, 4).ttft)
                burst_p50.append(median(concurrent(engine, args.streams, 4)[1]))
                busy.append(ttft_while_busy(engine, args.streams - 1, args.tokens))
            base = median(idle)
            rows.append((f"TTFT p50, {args.streams} arrive at once (ms)", f"{median(burst_p50) * 1e3:.0f}", f"idle {base * 1e3:.0f}", f"{median(burst_p50) / base:.2f}x", "<= 2x"))
            rows.append((f"TTFT, 1 arrives while {args.streams - 1} decode (ms)", f"{median(busy) * 1e3:.0f}", f"idle {base * 1e3:.0f}", f"{median(busy) / base:.2f}x", "<= 2x"))
        finally:
            llama.close()

        gc.collect()
        engine_run(engine, 16)
        before = rss_bytes()
        for _ in range(args.memory_requests):
            engine_run(engine, 16)
        gc.collect()
        after = rss_bytes()
        rows.append((f"RSS over {args.memory_requests} sequential requests (MB)", f"{after / 1e6:.1f}", f"before {before / 1e6:.1f}", f"{(after - before) / 1e6:+.1f} MB", "flat"))

    header = ("measure", "engine", "baseline", "ratio", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    print(f"model {model.name}, {args.threads} threads, {args.tokens} tokens/request, {args.rounds} A/B rounds")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
