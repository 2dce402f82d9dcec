"""What one `llama_decode` costs on this machine, and the ceilings that follow for batching.

    python benchmarks/bench_batch_cost.py [--model bench-data/bench-q4_k_m.gguf] [--prompt 30] [--reps 5]

Uses the engine's own native layer (the context shape a runner makes: one KV
stream per slot, flash attention off on the CPU) and times bare passes, no
sampling, no Python around them:

1. decode: one token for each of k sequences in one pass (k = 1 ... 8),
   every sequence holding --prompt tokens already, as in steady decoding;
   and, in the same rounds, 8 such tokens in one pass against two passes of 4;
2. prompt: n prompt tokens of one sequence in one pass (n = 1 ... 8 x --prompt).

From those it prints the two ceilings the engine's targets meet on this
machine: the most tokens/s 8 streams can give over one (8 x cost(1) /
cost(8)), and the lowest median time to first token for 8 prompts of --prompt
tokens arriving together, over every way of evaluating them in order (groups
of consecutive prompts, each group one pass), against one prompt alone.
Medians of --reps runs, alternating the sizes. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from pathlib import Path

from ingot.daemon.engine.engine import generation_shape
from ingot.daemon.engine.native import Batch, NativeContext, NativeModel
from ingot.daemon.engine.types import LoadOptions

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "bench-data" / "bench-q4_k_m.gguf"
STREAMS = 8


def _tokens(count: int, rng: random.Random) -> list[int]:
    return [rng.randrange(100, 30000) for _ in range(count)]


def _time_pass(ctx: NativeContext, batch: Batch) -> float:
    started = time.perf_counter()
    if ctx.decode(batch) != 0:
        raise SystemExit("llama_decode failed: is the context too small for the pass?")
    return time.perf_counter() - started


def decode_cost(ctx: NativeContext, batch: Batch, streams: int, prompt: int, rng: random.Random) -> float:
    """Seconds for one pass of one new token in each of `streams` sequences holding `prompt` tokens."""
    ctx.clear()
    for seq in range(streams):
        batch.clear()
        batch.add_run(_tokens(prompt, rng), 0, seq, logits_last=False)
        _time_pass(ctx, batch)
    batch.clear()
    for seq in range(streams):
        batch.add(rng.randrange(100, 30000), prompt, seq, True)
    return _time_pass(ctx, batch)


def split_decode_cost(ctx: NativeContext, batch: Batch, streams: int, group: int, prompt: int,
                      rng: random.Random) -> float:
    """Seconds for one new token in each of `streams` sequences, decoded in passes of `group` sequences."""
    ctx.clear()
    for seq in range(streams):
        batch.clear()
        batch.add_run(_tokens(prompt, rng), 0, seq, logits_last=False)
        _time_pass(ctx, batch)
    seconds = 0.0
    for start in range(0, streams, group):
        batch.clear()
        for seq in range(start, min(start + group, streams)):
            batch.add(rng.randrange(100, 30000), prompt, seq, True)
        seconds += _time_pass(ctx, batch)
    return seconds


def prompt_cost(ctx: NativeContext, batch: Batch, count: int, rng: random.Random) -> float:
    """Seconds for one pass over `count` prompt tokens of one empty sequence (logits for the last)."""
    ctx.clear()
    batch.clear()
    batch.add_run(_tokens(count, rng), 0, 0, logits_last=True)
    return _time_pass(ctx, batch)


def best_median_ttft(cost: dict[int, float], streams: int, prompt: int) -> tuple[float, tuple[int, ...]]:
    """Lowest median first-token time over the ways to split `streams` prompts into consecutive passes."""
    best: tuple[float, tuple[int, ...]] = (float("inf"), ())
    for cuts in itertools.product((False, True), repeat=streams - 1):
        groups, size = [], 1
        for cut in cuts:
            if cut:
                groups.append(size)
                size = 1
            else:
                size += 1
        groups.append(size)
        finish, clock = [], 0.0
        for group in groups:
            clock += cost[group * prompt]
            finish += [clock] * group
        median = statistics.median(finish)
        if median < best[0]:
            best = (median, tuple(groups))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--prompt", type=int, default=30, help="tokens per prompt (default 30)")
    parser.add_argument("--reps", type=int, default=5, help="runs per size (default 5)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.model.exists():
        raise SystemExit(f"{args.model} is missing: run benchmarks/make_bench_model.py first")

    options = LoadOptions(model_path=str(args.model), n_ctx=1024, n_parallel=STREAMS,
                          n_batch=max(512, STREAMS * args.prompt), n_threads=args.threads)
    model = NativeModel(options)
    ctx = NativeContext(model, generation_shape(options))
    batch = Batch(ctx.n_batch)
    rng = random.Random(1)
    decode_sizes = tuple(range(1, STREAMS + 1))
    half = STREAMS // 2
    split: list[tuple[float, float]] = []  # (one pass of STREAMS, two passes of half), same round
    prompt_sizes = sorted({1, 8, 16, *(k * args.prompt for k in range(1, STREAMS + 1))})
    decode: dict[int, list[float]] = {k: [] for k in decode_sizes}
    prompts: dict[int, list[float]] = {n: [] for n in prompt_sizes}
    try:
        for _ in range(args.reps + 1):  # the first round warms caches and graphs; dropped below
            for k in decode_sizes:
                decode[k].append(decode_cost(ctx, batch, k, args.prompt, rng))
            for n in prompt_sizes:
                prompts[n].append(prompt_cost(ctx, batch, n, rng))
            split.append((decode_cost(ctx, batch, STREAMS, args.prompt, rng),
                          split_decode_cost(ctx, batch, STREAMS, half, args.prompt, rng)))
    finally:
        batch.close()
        ctx.close()
        model.close()

    d = {k: statistics.median(v[1:]) for k, v in decode.items()}
    p = {n: statistics.median(v[1:]) for n, v in prompts.items()}
    print(f"model {args.model.name}, {args.threads} threads, medians of {args.reps} runs\n")
    print("decode: one token per sequence, k sequences in one pass")
    for k, seconds in d.items():
        print(f"  k={k}: {seconds * 1e3:7.1f} ms  ({seconds / d[1]:.2f}x one sequence's pass)")
    print("prompt: n tokens of one sequence in one pass")
    for n, seconds in p.items():
        print(f"  n={n:>4}: {seconds * 1e3:7.1f} ms  ({seconds / n * 1e3:.2f} ms/token)")

    ratios = [whole / halves for whole, halves in split[1:]]
    print(f"\n{STREAMS} decode tokens: one pass / two passes of {half}: median {statistics.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}; above 1: two passes are faster)")

    ceiling = STREAMS * d[1] / d[STREAMS]
    alone = p[args.prompt]
    median, groups = best_median_ttft(p, STREAMS, args.prompt)
    one_by_one = statistics.median([alone * (i + 1) for i in range(STREAMS)])
    print(f"\n{STREAMS} streams over 1, steady decoding, at most: {ceiling:.2f}x")
    print(f"median TTFT of {STREAMS} simultaneous {args.prompt}-token prompts / one alone: "
          f"one pass each {one_by_one / alone:.2f}x, all in one pass {p[STREAMS * args.prompt] / alone:.2f}x, "
          f"best split {median / alone:.2f}x (passes of {'+'.join(map(str, groups))} prompts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
