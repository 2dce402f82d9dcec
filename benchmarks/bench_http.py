"""Benchmark the HTTP front door against gRPC: aggregate tokens/s of concurrent streaming clients.

    python benchmarks/bench_http.py [--model bench-data/bench-q4_k_m.gguf] [--clients 8] [--tokens 32] [--rounds 6]

One daemon (a child process: the daemon's scheduler and runner, gRPC on a unix
socket and HTTP on loopback, as `ingot serve --http` runs them) serves both
sides. Each round sends `--clients` simultaneous streaming chat requests:

  A. gRPC: `ingot.v1.Inference/Chat` through the generated stub;
  B. HTTP: the official `openai` client, `chat.completions.create(stream=True)`
     with `stream_options.include_usage`.

Rounds alternate A B A B ..., so a noisy, shared machine hurts both alike; the
table shows each round and the median of the per-round ratios B/A (target >= 0.90).
Prompts are unique per request, so no side profits from a cached prefix.
The model is made with benchmarks/make_bench_model.py when it is missing.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench_common import DEFAULT_MODEL, MODEL, N_CTX, ROOT, SEED, process_cpu_seconds, released_together  # noqa: E402
TARGET = 0.90
READY = "READY"

_unique = itertools.count(1)


def prompt(tag: str) -> str:
    """A ~30-token prompt, different every call."""
    return (
        f"Story {next(_unique)} {tag}: once upon a time in a small city by the water there lived a family "
        "of people who made music in their house every day of the year"
    )


# -- the daemon (child process) ------------------------------------------------------------------


def serve(home: Path, socket_path: Path, parallel: int) -> None:
    """Run a daemon with gRPC and HTTP until stdin closes; print READY <http port> once serving."""
    from ingot.daemon.http import HttpServices, start_http_server
    from ingot.daemon.server import Daemon, ServeConfig
    from ingot.registry.home import IngotHome

    daemon = Daemon(ServeConfig(home=IngotHome(home), socket_path=socket_path, parallel=parallel))
    daemon.start()
    http = start_http_server(HttpServices(daemon.catalog, daemon.scheduler), host="127.0.0.1", port=0)
    print(f"{READY} {http.port}", flush=True)
    sys.stdin.read()  # the parent closes our stdin to stop us
    http.stop(grace_seconds=1.0)
    daemon.shutdown(grace_seconds=1.0)


def build_store(home: Path, model: Path, threads: int) -> None:
    from ingot.modelfile import parse
    from ingot.registry.home import IngotHome
    from ingot.registry.package import build_package
    from ingot.registry.reference import Reference
    from ingot.registry.store import Store

    modelfile = parse(
        f"FROM {model}\nPARAMETER num_ctx {N_CTX}\nPARAMETER seed {SEED}\nPARAMETER num_thread {threads}\n"
    )
    # A copy, not a link: the store would make the shared bench file read-only.
    build_package(Store.open(IngotHome(home)), modelfile, model.parent, ref=Reference.parse(MODEL), link=False)


# -- the two contestants --------------------------------------------------------------------------


def grpc_round(socket_path: Path, clients: int, tokens: int) -> float:
    import grpc

    from ingot.proto.ingot.v1 import common_pb2, inference_pb2, inference_pb2_grpc

    channel = grpc.insecure_channel(f"unix:{socket_path}")
    stub = inference_pb2_grpc.InferenceStub(channel)

    def one() -> int:
        request = inference_pb2.ChatRequest(
            model=MODEL,
            messages=[common_pb2.ChatMessage(role="user", content=prompt("grpc"))],
            options=common_pb2.Options(num_predict=tokens),
        )
        count = 0
        for reply in stub.Chat(request, timeout=600):
            if reply.done:
                count = reply.metrics.eval_count
        return count

    try:
        return _concurrently(clients, one)
    finally:
        channel.close()


def openai_round(url: str, clients: int, tokens: int) -> float:
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600)

    def one() -> int:
        messages = [{"role": "user", "content": prompt("openai")}]
        stream = client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=tokens, stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        )
        count = 0
        for chunk in stream:
            if chunk.usage is not None:
                count = chunk.usage.completion_tokens
        return count

    try:
        return _concurrently(clients, one)
    finally:
        client.close()


def _concurrently(clients: int, one: Callable[[], int]) -> float:
    """Run `one` in `clients` threads released together; aggregate completion tokens per second."""
    counts, elapsed = released_together([one] * clients)
    return sum(counts) / elapsed


# -- main ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32, help="tokens generated per request")
    parser.add_argument("--rounds", type=int, default=6, help="A B pairs")
    parser.add_argument("--threads", type=int, default=0, help="runner threads (num_thread; 0: the engine decides)")
    parser.add_argument("--serve", nargs=3, metavar=("HOME", "SOCKET", "PARALLEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), Path(args.serve[1]), int(args.serve[2]))
        return 0

    model = args.model.resolve()
    if not model.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_bench_model.py")], check=True)
    with tempfile.TemporaryDirectory(prefix="ingot-bench-http-") as folder:
        home, socket_path = Path(folder) / "home", Path(folder) / "d.sock"
        build_store(home, model, args.threads)
        daemon = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(home), str(socket_path), str(args.clients)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "INGOT_HOME": str(home)},
        )
        try:
            assert daemon.stdout is not None
            line = daemon.stdout.readline().split()
            if not line or line[0] != READY:
                raise SystemExit("the daemon did not start")
            url = f"http://127.0.0.1:{line[1]}"
            print(f"model {model.name}, {args.clients} concurrent streams x {args.tokens} tokens, "
                  f"{args.rounds} rounds of A (gRPC) B (HTTP, openai client)\n")
            # Warm-up: load the model and touch both paths once.
            grpc_round(socket_path, 1, 4)
            openai_round(url, 1, 4)
            grpc_rates, http_rates, ratios = [], [], []
            cpu: dict[str, list[float]] = {"grpc": [], "http": []}

            def measured(side: str, run: Callable[[], float]) -> float:
                # The daemon's own CPU (not the runner's) per generated token: what serving costs.
                before = process_cpu_seconds(daemon.pid)
                rate = run()
                cpu[side].append((process_cpu_seconds(daemon.pid) - before) / (args.clients * args.tokens) * 1e3)
                return rate

            print(f"{'round':>6}  {'gRPC tok/s':>11}  {'HTTP tok/s':>11}  {'HTTP/gRPC':>9}  "
                  f"{'daemon CPU ms/token gRPC':>24}  {'HTTP':>6}")
            for index in range(args.rounds):
                a = measured("grpc", lambda: grpc_round(socket_path, args.clients, args.tokens))
                b = measured("http", lambda: openai_round(url, args.clients, args.tokens))
                grpc_rates.append(a)
                http_rates.append(b)
                ratios.append(b / a)
                print(f"{index + 1:>6}  {a:>11.1f}  {b:>11.1f}  {b / a:>9.3f}  "
                      f"{cpu['grpc'][-1]:>24.2f}  {cpu['http'][-1]:>6.2f}")
            # Each A B pair ran in the same minute: the median of the pair ratios is the headline.
            ratio = statistics.median(ratios)
            verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
            print(f"{'median':>6}  {statistics.median(grpc_rates):>11.1f}  {statistics.median(http_rates):>11.1f}  "
                  f"{ratio:>9.3f}  {statistics.median(cpu['grpc']):>24.2f}  {statistics.median(cpu['http']):>6.2f}")
            print(f"\nHTTP/gRPC aggregate tokens/s: {ratio:.3f} (median of the pair ratios; "
                  f"target >= {TARGET:.2f}: {verdict})")
        finally:
            if daemon.stdin is not None:
                daemon.stdin.close()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
