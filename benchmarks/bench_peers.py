"""Benchmark ingot against its peers: 8 concurrent streaming clients and one, same model, same load.

    python benchmarks/bench_peers.py [--model bench-data/bench-q4_k_m.gguf] [--clients 8] [--tokens 64] [--rounds 4]

Four sides serve the same GGUF, all up at once, each driven in turn (A B C D,
A B C D, ...) so a noisy, shared machine hurts all alike:

  ingot-http   `ingot serve --http --parallel 8`, the official `openai` client;
  ingot-grpc   the same daemon, `Inference/Generate` through the generated stub;
  llama_cpp    `python -m llama_cpp.server` (llama-cpp-python's own server,
               one sequence at a time) with `--interrupt_requests False`, so
               every client gets its whole answer, the `openai` client;
  llama_cpp-stock  the same server with its defaults, as users start it: a
               request that arrives while another streams ends that stream
               (its client gets a short answer and `[DONE]`);
  llama-server llama.cpp's C++ server, `-np 8 -kvu`, built from the llama.cpp
               that llama-cpp-python 0.3.36 vendors (benchmarks/build_llama_server.py),
               the `openai` client.

Every side: threads as --threads, flash attention off (the engine's CPU
setting), 1024 context cells per sequence (llama_cpp: 1024, one sequence;
ingot: 8 slots x 1024; llama-server: 8192 unified for 8 slots), greedy
sampling with repeat penalty 1, the same raw prompt (`/v1/completions`; for
gRPC `raw: true`) and max_tokens. llama-server also gets `ignore_eos`; the
others have no such switch, so the table reports every side's completion
tokens (from `usage` / the final metrics; chunks only where a side sends
neither, as llama_cpp-stock's cut-off streams) and flags a side whose requests
stopped short.

Each round measures, per side, `--clients` simultaneous requests (aggregate
completion tokens/s, from the release of all clients to the last finished
stream, and the median time to first token among them, against the lone
request's) and one request alone (tokens/s end to end, and its time to first
token). Prompts are unique per request and of one token length, so no side
profits from a cached prefix. The headline ratios are medians of the per-round
ratios: ingot-http / llama_cpp and / llama_cpp-stock (target >= 2.5x) and
ingot-http / llama-server (target >= 0.9x), 8 clients.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_common import released_together
from bench_daemon import (
    DEFAULT_MODEL,
    MODEL,
    N_CTX,
    SEED,
    GrpcGenerate,
    IngotDaemon,
    ServerProcess,
    Stream,
    ensure_model,
    free_port,
    prompt,
    start_server,
    timed,
)
from build_llama_server import BINARY as LLAMA_SERVER

SIDES = ("ingot-http", "ingot-grpc", "llama_cpp", "llama_cpp-stock", "llama-server")
TARGETS = {"llama_cpp": 2.5, "llama_cpp-stock": 2.5, "llama-server": 0.9}  # ingot-http / peer, aggregate tokens/s with 8 clients


# -- the sides --------------------------------------------------------------------------------------


class OpenAICompletions:
    """Streaming `/v1/completions` through the official openai client; tokens from the final usage chunk."""

    def __init__(self, base_url: str, extra_body: dict[str, object], *, temperature: float = 0.0) -> None:
        import openai

        self._client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=600)
        self._extra_body = extra_body
        self._temperature = temperature

    def run(self, text: str, tokens: int) -> Stream:
        started = time.perf_counter()
        chunks = self._client.completions.create(
            model=MODEL, prompt=text, max_tokens=tokens, temperature=self._temperature, seed=SEED, stream=True,
            stream_options={"include_usage": True}, extra_body={"repeat_penalty": 1.0, **self._extra_body},
        )  # fmt: skip
        # The usage chunk comes last and carries no text: the first chunk is the first token.
        first, last, seen = timed(iter(chunks), started)
        usage = next((chunk.usage for chunk in reversed(seen) if getattr(chunk, "usage", None)), None)
        if usage is not None:
            return Stream(usage.completion_tokens, first - started, last - first, "usage")
        # llama_cpp.server ignores stream_options: no usage. Its finish_reason "length", with the
        # prompt far inside the context, means exactly max_tokens were generated.
        reasons = [choice.finish_reason for chunk in seen for choice in chunk.choices if choice.finish_reason]
        if reasons and reasons[-1] == "length":
            return Stream(tokens, first - started, last - first, "finish_reason")
        # Stopped early (EOS) and no usage: one chunk per token is the best left (flagged in the table).
        texts = sum(1 for chunk in seen for choice in chunk.choices if choice.text)
        return Stream(texts, first - started, last - first, "chunks")

    def close(self) -> None:
        self._client.close()


@dataclass
class Side:
    name: str
    run: Callable[[str, int], Stream]
    close: Callable[[], None]
    server: ServerProcess | None = None  # None: served by another side's process


def start_llama_cpp_server(folder: Path, model: Path, threads: int, *, stock: bool) -> ServerProcess:
    """`stock`: keep the server's default of cutting off the stream in progress when a request arrives."""
    port = free_port()
    name = "llama_cpp-stock" if stock else "llama_cpp"
    argv = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", str(threads),
        "--n_threads_batch", str(threads), "--flash_attn", "False", "--seed", str(SEED),
        *([] if stock else ["--interrupt_requests", "False"]),
    ]  # fmt: skip
    return start_server(
        name, argv, ready=r"Uvicorn running on", log_path=folder / f"{name}.log",
        url=f"http://127.0.0.1:{port}",
    )  # fmt: skip


def start_llama_server(folder: Path, model: Path, threads: int, clients: int, extra: list[str]) -> ServerProcess:
    port = free_port()
    argv = [
        str(LLAMA_SERVER), "-m", str(model), "-a", MODEL, "--host", "127.0.0.1", "--port", str(port),
        "-c", str(N_CTX * clients), "-np", str(clients), "-kvu", "-t", str(threads), "-tb", str(threads),
        "-fa", "off", "--seed", str(SEED), *extra,
    ]  # fmt: skip
    return start_server(
        "llama-server", argv, ready=r"listening on",
        log_path=folder / "llama-server.log", url=f"http://127.0.0.1:{port}",
    )  # fmt: skip


def open_sides(
    names: list[str], folder: Path, model: Path, threads: int, clients: int, llama_server_args: list[str]
) -> list[Side]:
    sides: list[Side] = []
    try:
        if "ingot-http" in names or "ingot-grpc" in names:
            daemon = IngotDaemon.start(folder, model, threads=threads, parallel=clients, http=True)
            owner: ServerProcess | None = daemon.server
            if "ingot-http" in names:
                assert daemon.http_url is not None
                client = OpenAICompletions(daemon.http_url, {})
                sides.append(Side("ingot-http", client.run, client.close, owner))
                owner = None
            if "ingot-grpc" in names:
                stub = GrpcGenerate(daemon.socket_path)
                sides.append(Side("ingot-grpc", stub.run, stub.close, owner))
        for name in ("llama_cpp", "llama_cpp-stock"):
            if name in names:
                server = start_llama_cpp_server(folder, model, threads, stock=name.endswith("-stock"))
                client = OpenAICompletions(server.url, {})
                sides.append(Side(name, client.run, client.close, server))
        if "llama-server" in names:
            server = start_llama_server(folder, model, threads, clients, llama_server_args)
            client = OpenAICompletions(server.url, {"ignore_eos": True})
            sides.append(Side("llama-server", client.run, client.close, server))
    except BaseException:
        close_sides(sides)
        raise
    order = {name: index for index, name in enumerate(SIDES)}
    return sorted(sides, key=lambda side: order[side.name])


def close_sides(sides: list[Side]) -> None:
    for side in sides:
        side.close()
        if side.server is not None:
            side.server.stop()


# -- one measurement ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    streams: list[Stream]
    seconds: float  # from releasing every client to the last stream's end

    @property
    def rate(self) -> float:
        return sum(stream.tokens for stream in self.streams) / self.seconds

    @property
    def ttft_p50(self) -> float:
        return statistics.median(stream.ttft for stream in self.streams)


def burst(side: Side, clients: int, tokens: int) -> Burst:
    """`clients` streams released together; every one must finish."""
    texts = [prompt(side.name) for _ in range(clients)]
    results, elapsed = released_together(
        [functools.partial(side.run, text, tokens) for text in texts], what=f"{side.name} requests"
    )
    return Burst(results, elapsed)


@dataclass
class Record:
    many: list[Burst] = field(default_factory=list)
    one: list[Burst] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--clients", type=int, default=8, help="concurrent streams (default 8)")
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens per request (default 64)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds over every side (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every side (default 2)")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {','.join(SIDES)}")
    parser.add_argument("--llama-server-args", default="", help="more llama-server arguments, e.g. '-cram 0'")
    args = parser.parse_args(argv)
    # `timeout` and Ctrl-C alike: unwind, so the servers started below are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # rows as they come, also into a file
    names = [name.strip() for name in args.sides.split(",") if name.strip()]
    if unknown := sorted(set(names) - set(SIDES)):
        parser.error(f"unknown sides {unknown}; pick from {', '.join(SIDES)}")
    if "llama-server" in names and not LLAMA_SERVER.exists():
        raise SystemExit(f"{LLAMA_SERVER} is missing: run benchmarks/build_llama_server.py first")
    model = ensure_model(args.model)

    records = {name: Record() for name in names}
    with tempfile.TemporaryDirectory(prefix="ingot-bench-peers-") as folder:
        sides = open_sides(
            names, Path(folder), model, args.threads, args.clients, shlex.split(args.llama_server_args)
        )
        try:
            # Warm every side (load, page in weights, build graphs for one and for many sequences).
            for side in sides:
                burst(side, 1, 4)
                burst(side, args.clients, 4)
            print(f"model {model.name}, {args.threads} threads, {args.clients} clients and 1, "
                  f"max_tokens {args.tokens}, {args.rounds} rounds over {', '.join(s.name for s in sides)}\n")  # fmt: skip
            print(f"{'round':>5}  {'side':<15}  {f'{args.clients} clients tok/s':>17}  {'tokens':>7}  "
                  f"{'1 client tok/s':>14}  {'TTFT ms':>7}  {'TTFT p50 ms, many':>17}")  # fmt: skip
            for index in range(args.rounds):
                for side in sides:
                    many = burst(side, args.clients, args.tokens)
                    one = burst(side, 1, args.tokens)
                    records[side.name].many.append(many)
                    records[side.name].one.append(one)
                    total = sum(stream.tokens for stream in many.streams)
                    print(f"{index + 1:>5}  {side.name:<15}  {many.rate:>17.1f}  {total:>7}  "
                          f"{one.rate:>14.1f}  {one.streams[0].ttft * 1e3:>7.1f}  {many.ttft_p50 * 1e3:>17.1f}")  # fmt: skip
        finally:
            close_sides(sides)

    print(f"\nmedians over {args.rounds} rounds")
    print(f"{'side':<15}  {f'{args.clients} clients tok/s':>17}  {'1 client tok/s':>14}  {'1 client decode tok/s':>21}  "
          f"{'TTFT ms':>7}  {f'{args.clients} clients TTFT p50 / 1 client':>31}  {'short requests':>14}")  # fmt: skip
    counted: dict[str, set[str]] = {}
    for name, record in records.items():
        streams = [stream for b in record.many + record.one for stream in b.streams]
        counted[name] = {stream.counted_by for stream in streams}
        short = sum(1 for stream in streams if stream.tokens != args.tokens)
        print(f"{name:<15}  {median([b.rate for b in record.many]):>17.1f}  {median([b.rate for b in record.one]):>14.1f}  "
              f"{median([b.streams[0].decode_rate for b in record.one]):>21.1f}  "
              f"{median([b.streams[0].ttft for b in record.one]) * 1e3:>7.1f}  "
              f"{median([m.ttft_p50 / o.streams[0].ttft for m, o in zip(record.many, record.one)]):>30.2f}x  "
              f"{short:>7}/{len(streams):<6}")  # fmt: skip
    print("tokens counted from: " + "; ".join(f"{name} {', '.join(sorted(how))}" for name, how in counted.items()))

    print()
    for ours in ("ingot-http", "ingot-grpc"):
        for peer, target in TARGETS.items():
            if ours not in records or peer not in records:
                continue
            many = median([a.rate / b.rate for a, b in zip(records[ours].many, records[peer].many, strict=True)])
            one = median([a.rate / b.rate for a, b in zip(records[ours].one, records[peer].one, strict=True)])
            verdict = "ok" if many >= target else "BELOW TARGET"
            label = f"target >= {target}x: {verdict}" if ours == "ingot-http" else "for reference"
            print(f"{ours} / {peer}: {args.clients} clients {many:.2f}x ({label}); 1 client {one:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
