"""Benchmark priorities: interactive first-token time while a big batch runs, and what that costs the batch.

    python benchmarks/bench_priority.py [--model bench-data/bench-q4_k_m.gguf] [--requests 1000] [--rounds 2]

One `ingot serve` (4 slots) over the bench model. Each round runs, in turn
(A B A B ...):

* idle: `--probes` single interactive requests one after another on an idle
  daemon; time to first token as the client sees it (call -> first chunk);
* batch alone: `--requests` completions through `BatchRun` (what `ingot batch`
  runs) at batch priority, concurrency = the slots; requests per second;
* batch + interactive: the same batch again, and for as long as it runs
  interactive probes like those, one every `--gap` seconds; their first-token
  time, and the batch's requests per second.

Targets: median TTFT under the batch <= 1.5x idle; batch throughput with the
probes >= 0.9x alone. Ratios are per round, against the baseline of the same
round; the table shows every round. Probe prompts are unique (no cached
prefix); batch prompts are unique too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_common import DEFAULT_MODEL, MODEL
from bench_daemon import GrpcGenerate, IngotDaemon, ensure_model, prompt

TTFT_TARGET = 1.5
THROUGHPUT_TARGET = 0.9
SLOTS = 4


def run_batch(socket_path: Path, folder: Path, requests: int, tokens: int, tag: str) -> float:
    """Requests per second of one batch through BatchRun over gRPC."""
    import grpc

    from ingot.daemon.batch.execute import check_body
    from ingot.daemon.batch.grpc_calls import GrpcCalls
    from ingot.daemon.batch.lines import BatchRequest, ParsedInput
    from ingot.daemon.batch.results import ResultFile
    from ingot.daemon.batch.runner import BatchRun
    from ingot.proto.ingot.v1 import inference_pb2_grpc

    items = []
    for i in range(requests):
        body = {"model": MODEL, "prompt": prompt(f"{tag}-{i}"), "max_tokens": tokens, "temperature": 0}
        check_body("/v1/completions", body)
        items.append(BatchRequest(i + 1, f"{tag}-{i}", "/v1/completions", body))
    with grpc.insecure_channel(f"unix:{socket_path}") as channel:
        calls = GrpcCalls(inference_pb2_grpc.InferenceStub(channel), timeout=600)
        with ResultFile.open(folder / f"{tag}.out") as output, ResultFile.open(folder / f"{tag}.err") as errors:
            run = BatchRun(ParsedInput(items, []), calls, output=output, errors=errors, concurrency=SLOTS)
            started = time.perf_counter()
            progress = run.run()
            elapsed = time.perf_counter() - started
    if progress.failed:
        raise SystemExit(f"batch {tag}: {progress.failed} requests failed; see {folder / (tag + '.err')}")
    return requests / elapsed


def probe(client: GrpcGenerate, n: int | None, tokens: int, gap: float, tag: str,
          stop: threading.Event | None = None) -> list[float]:
    """First-token times of `n` single requests (None: until `stop`), `gap` seconds apart."""
    ttfts: list[float] = []
    while n is None or len(ttfts) < n:
        if stop is not None and stop.is_set():
            break
        ttfts.append(client.run(prompt(f"{tag}-{len(ttfts)}"), tokens).ttft)
        time.sleep(gap)
    return ttfts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--requests", type=int, default=1000, help="requests in the batch")
    parser.add_argument("--tokens", type=int, default=8, help="completion tokens per batch request")
    parser.add_argument("--probes", type=int, default=12, help="interactive requests on the idle daemon")
    parser.add_argument("--probe-tokens", type=int, default=8)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between interactive requests")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--interactive-slots", type=int, default=0,
                        help="`ingot serve --interactive-slots`: slots batch work leaves to interactive requests (0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="engine threads (1: on a shared 2-core machine, 2 threads spin against other load)")
    args = parser.parse_args(argv)
    model = ensure_model(args.model)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ingot-bench-prio-") as raw:
        folder = Path(raw)
        serve_args = ("--interactive-slots", str(args.interactive_slots))
        daemon = IngotDaemon.start(
            folder, model, threads=args.threads, parallel=SLOTS, http=False, serve_args=serve_args
        )
        client = GrpcGenerate(daemon.socket_path)
        try:
            client.run(prompt("warm"), 4)
            run_batch(daemon.socket_path, folder, SLOTS * 4, args.tokens, "warm")
            for round_ in range(1, args.rounds + 1):
                idle = probe(client, args.probes, args.probe_tokens, args.gap, f"idle{round_}")
                alone = run_batch(daemon.socket_path, folder, args.requests, args.tokens, f"alone{round_}")
                busy: list[float] = []
                stop = threading.Event()
                prober = threading.Thread(
                    target=lambda: busy.extend(probe(client, None, args.probe_tokens, args.gap, f"busy{round_}", stop))
                )
                rate: list[float] = []
                batch = threading.Thread(
                    target=lambda: rate.append(run_batch(daemon.socket_path, folder, args.requests, args.tokens,
                                                         f"mixed{round_}"))
                )
                batch.start()
                time.sleep(args.gap)  # let the batch fill the slots first
                prober.start()
                batch.join()
                stop.set()
                prober.join()
                rows.append((round_, statistics.median(idle), statistics.median(busy), len(busy), alone, rate[0]))
                print(f"round {round_} done", file=sys.stderr)
        finally:
            client.close()
            daemon.stop()
    print(f"model {model.name}, {SLOTS} slots, batch {args.requests} x {args.tokens} tokens, "
          f"probes of {args.probe_tokens} tokens every {args.gap:.1f} s, {args.threads} engine thread(s), "
          f"{args.interactive_slots} slot(s) kept for interactive requests")
    print(f"{'round':>5}  {'ttft idle ms':>12}  {'ttft batch ms':>13}  {'ratio':>5}  {'n':>3}  "
          f"{'batch alone r/s':>15}  {'with probes r/s':>15}  {'ratio':>5}")
    for round_, idle_t, busy_t, n, alone, mixed in rows:
        print(f"{round_:>5}  {idle_t * 1000:>12.1f}  {busy_t * 1000:>13.1f}  {busy_t / idle_t:>5.2f}  {n:>3}  "
              f"{alone:>15.2f}  {mixed:>15.2f}  {mixed / alone:>5.2f}")
    ttft = statistics.median(b / i for _, i, b, _, _, _ in rows)
    throughput = statistics.median(m / a for *_, a, m in rows)
    print(f"median ratios: TTFT {ttft:.2f}x idle (target <= {TTFT_TARGET}x), "
          f"batch throughput {throughput:.2f}x alone (target >= {THROUGHPUT_TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
