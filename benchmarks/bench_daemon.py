"""Benchmark what the daemon adds: ingot over gRPC (runner process) vs llama-cpp-python in this process.

    python benchmarks/bench_daemon.py [--model bench-data/bench-q4_k_m.gguf] [--tokens 128] [--rounds 5] [--temperature 0.8]

One `ingot serve` (a child process, its runner a grandchild) and one
`llama_cpp.Llama` in this process, same model file, n_ctx 1024, threads,
flash attention off (the engine's CPU setting), greedy sampling (or
`--temperature T` with the same top-k/top-p/min-p on both sides), repeat
penalty 1. Each round alternates the two sides (A B A B ...):

1. single-stream decode tokens/s, first token to last token as the client
   sees it: `Inference/Generate` (raw prompt, no template) through the
   generated stub vs `Llama.create_completion(stream=True)`
   (target >= 0.95x);
2. time to first token, from the call to the first chunk, with prompts of the
   same length: the daemon's minus in-process (target < 15 ms added).

Prompts are unique per request and of one token length, so neither side
profits from a cached prefix. The model is made with
benchmarks/make_bench_model.py when it is missing.

Also the helpers benchmarks/bench_peers.py uses: the daemon as a child
process (`IngotDaemon`), any server started until a log line says it serves
(`start_server`), the bench prompts.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import socket
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench_common import DEFAULT_MODEL, MODEL, N_CTX, ROOT, SEED  # noqa: E402
DECODE_TARGET = 0.95
TTFT_TARGET_MS = 15.0

_unique = itertools.count(1)


def prompt(tag: str) -> str:
    """A ~35-token prompt, different every call and always the same number of tokens (fixed-width counter)."""
    return (
        f"Story {next(_unique):06d} {tag}: once upon a time in a small city by the water there lived a family "
        "of people who made music in their house every day of the year"
    )


def ensure_model(path: Path) -> Path:
    if not path.exists():
        print(f"{path} is missing; making it with benchmarks/make_bench_model.py", file=sys.stderr)
        script = ROOT / "benchmarks" / "make_bench_model.py"
        subprocess.run([sys.executable, str(script), "--out-dir", str(path.parent)], check=True)
    return path.resolve()


def free_port() -> int:
    # Racy in theory (another process could take it before the server binds); a taken port fails loudly.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- servers as child processes -----------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A child process whose output goes to a log file; `stop()` ends it."""

    name: str
    process: subprocess.Popen[str]
    log_path: Path
    url: str = ""  # where an HTTP server answers, when it is one

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    name: str,
    argv: list[str],
    *,
    ready: str,
    log_path: Path,
    url: str = "",
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> ServerProcess:
    """Start `argv`; return once a line of its output matches the regex `ready` (or fail with its log)."""
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env, errors="replace",
    )  # fmt: skip
    assert process.stdout is not None
    seen = threading.Event()
    pattern = re.compile(ready)
    log = log_path.open("w")

    def drain(stream: IO[str]) -> None:
        # Keeps reading for the process's whole life: a full pipe would stall the server.
        with log:
            for line in stream:
                log.write(line)
                log.flush()
                if pattern.search(line):
                    seen.set()
        seen.set()  # the process ended: wake the waiter, which then sees it is gone

    threading.Thread(target=drain, args=(process.stdout,), name=f"drain-{name}", daemon=True).start()
    server = ServerProcess(name, process, log_path, url)
    if not seen.wait(timeout) or process.poll() is not None:
        server.stop()
        tail = log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{name} did not start (argv: {' '.join(argv)}); its log ends:\n{tail}")
    return server


def build_store(home: Path, model: Path, threads: int) -> None:
    """A store holding `bench`: the model with n_ctx, seed and threads as every side of the benchmarks uses them."""
    from ingot.modelfile import parse
    from ingot.registry.home import IngotHome
    from ingot.registry.package import build_package
    from ingot.registry.reference import Reference
    from ingot.registry.store import Store

    modelfile = parse(
        f"FROM {model}\nPARAMETER num_ctx {N_CTX}\nPARAMETER seed {SEED}\nPARAMETER num_thread {threads}\n"
        "PARAMETER temperature 0\nPARAMETER repeat_penalty 1\n"
    )
    # A copy, not a link: the store would make the shared bench file read-only.
    build_package(Store.open(IngotHome(home)), modelfile, model.parent, ref=Reference.parse(MODEL), link=False)


@dataclass
class IngotDaemon:
    """`ingot serve` over a fresh store holding `bench`: gRPC on `socket_path`, HTTP on `http_url` if asked."""

    server: ServerProcess
    socket_path: Path
    http_url: str | None

    @classmethod
    def start(
        cls, folder: Path, model: Path, *, threads: int, parallel: int, http: bool, serve_args: tuple[str, ...] = ()
    ) -> IngotDaemon:
        home, socket_path = folder / "home", folder / "d.sock"
        build_store(home, model, threads)
        argv = [sys.executable, "-m", "ingot.cli.main", "serve", "--socket", str(socket_path),
                "--parallel", str(parallel), "--keep-alive=-1", *serve_args]  # fmt: skip
        http_url = None
        if http:
            port = free_port()
            argv += ["--http", f"127.0.0.1:{port}"]
            http_url = f"http://127.0.0.1:{port}"
        server = start_server(
            "ingot", argv, ready=r"ingot daemon listening on", log_path=folder / "ingot.log",
            env={**os.environ, "INGOT_HOME": str(home)},
        )  # fmt: skip
        return cls(server, socket_path, http_url)

    def stop(self) -> None:
        self.server.stop()


# -- one streamed request, as a client sees it ---------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    tokens: int  # completion tokens, as the server counted them
    ttft: float  # seconds from the call to the first chunk
    decode: float  # seconds from the first chunk to the last
    counted_by: str = "usage"  # where `tokens` comes from
    server_ttft: float | None = None  # the server's own count, from the request's arrival, where it reports one

    @property
    def decode_rate(self) -> float:
        return (self.tokens - 1) / self.decode if self.decode > 0 else 0.0


def timed(chunks: Iterator[object], started: float) -> tuple[float, float, list[object]]:
    """(first chunk time, last chunk time, the chunks) of a stream; times from perf_counter."""
    first = last = 0.0
    seen: list[object] = []
    for chunk in chunks:
        last = time.perf_counter()
        if not first:
            first = last
        seen.append(chunk)
    return first or started, last or started, seen


# Both sides truncate alike (llama-cpp-python's defaults; Ollama's differ) whenever temperature > 0.
TRUNCATION = {"top_k": 40, "top_p": 0.95, "min_p": 0.05}


class GrpcGenerate:
    """`ingot.v1.Inference/Generate` through the generated stub: raw prompt, greedy unless told."""

    def __init__(self, socket_path: Path, *, temperature: float = 0.0) -> None:
        import grpc

        from ingot.proto.ingot.v1 import inference_pb2_grpc

        self._channel = grpc.insecure_channel(f"unix:{socket_path}")
        self._stub = inference_pb2_grpc.InferenceStub(self._channel)
        self._temperature = temperature

    def run(self, text: str, tokens: int) -> Stream:
        from ingot.proto.ingot.v1 import common_pb2, inference_pb2

        request = inference_pb2.GenerateRequest(
            model=MODEL, prompt=text, raw=True,
            options=common_pb2.Options(
                num_predict=tokens, temperature=self._temperature, seed=SEED, repeat_penalty=1.0, **TRUNCATION
            ),
        )  # fmt: skip
        started = time.perf_counter()
        first, last, replies = timed(iter(self._stub.Generate(request, timeout=600)), started)
        final = replies[-1]
        assert final.done, "the stream ended without its final chunk"  # type: ignore[attr-defined]
        metrics = final.metrics  # type: ignore[attr-defined]
        return Stream(metrics.eval_count, first - started, last - first, "metrics", metrics.time_to_first_token_ns / 1e9)

    def close(self) -> None:
        self._channel.close()


class InProcessLlama:
    """llama-cpp-python's `Llama` in this process, set up as the daemon's runner loads the model."""

    def __init__(self, model: Path, threads: int, *, temperature: float = 0.0) -> None:
        import llama_cpp

        self._temperature = temperature
        self._llama = llama_cpp.Llama(
            model_path=str(model), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads,
            flash_attn=False, seed=SEED, verbose=False,
        )  # fmt: skip

    def run(self, text: str, tokens: int) -> Stream:
        llama = self._llama
        started = time.perf_counter()
        chunks = llama.create_completion(
            text, max_tokens=tokens, temperature=self._temperature, repeat_penalty=1.0, seed=SEED, stream=True,
            **TRUNCATION,
        )  # fmt: skip
        first, last, _ = timed(iter(chunks), started)  # type: ignore[arg-type]
        # A streamed completion carries no usage; the context knows how many tokens it evaluated:
        # the prompt plus every generated token but the last.
        n_prompt = len(llama.tokenize(text.encode("utf-8")))
        return Stream(llama.n_tokens - n_prompt + 1, first - started, last - first, "n_tokens")

    def close(self) -> None:
        self._llama.close()


# -- main ------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--tokens", type=int, default=128, help="tokens generated per decode run (default 128)")
    parser.add_argument("--rounds", type=int, default=5, help="A B rounds (default 5)")
    parser.add_argument("--ttft-samples", type=int, default=4, help="TTFT A B pairs per round (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help=f"sampling temperature for both sides (default 0: greedy), with {TRUNCATION}")
    parser.add_argument("--parallel", type=int, default=4, help="the daemon's slots (default 4, as `ingot serve`)")
    args = parser.parse_args(argv)
    # `timeout` and Ctrl-C alike: unwind, so the servers started below are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # rows as they come, also into a file
    model = ensure_model(args.model)

    with tempfile.TemporaryDirectory(prefix="ingot-bench-daemon-") as folder:
        daemon = IngotDaemon.start(Path(folder), model, threads=args.threads, parallel=args.parallel, http=False)
        grpc_side = GrpcGenerate(daemon.socket_path, temperature=args.temperature)
        llama = InProcessLlama(model, args.threads, temperature=args.temperature)
        try:
            # Warm both: the daemon loads the model in its runner, both page in weights and build graphs.
            for _ in range(2):
                grpc_side.run(prompt("warm"), 8)
                llama.run(prompt("warm"), 8)
            rows = []
            ttft_pairs: list[tuple[Stream, Stream]] = []
            print(f"model {model.name}, {args.threads} threads, n_ctx {N_CTX}, {args.tokens} tokens per decode run, "
                  f"{args.rounds} rounds A (daemon, gRPC) B (in-process Llama)\n")  # fmt: skip
            print(f"{'round':>5}  {'daemon tok/s':>12}  {'Llama tok/s':>11}  {'ratio':>6}  {'tokens':>7}  "
                  f"{'daemon TTFT ms':>14}  {'(daemon-side)':>13}  {'Llama TTFT ms':>13}")  # fmt: skip
            for index in range(args.rounds):
                a = grpc_side.run(prompt("decode"), args.tokens)
                b = llama.run(prompt("decode"), args.tokens)
                pairs = [(grpc_side.run(prompt("ttft"), 2), llama.run(prompt("ttft"), 2)) for _ in range(args.ttft_samples)]
                ttft_pairs += pairs
                rows.append((a, b))
                print(f"{index + 1:>5}  {a.decode_rate:>12.1f}  {b.decode_rate:>11.1f}  "
                      f"{a.decode_rate / b.decode_rate:>6.3f}  {a.tokens:>3}/{b.tokens:<3}  "
                      f"{median([d.ttft for d, _ in pairs]) * 1e3:>14.1f}  "
                      f"{median([d.server_ttft or 0.0 for d, _ in pairs]) * 1e3:>13.1f}  "
                      f"{median([local.ttft for _, local in pairs]) * 1e3:>13.1f}")  # fmt: skip
        finally:
            llama.close()
            grpc_side.close()
            daemon.stop()

    ratio = median([a.decode_rate / b.decode_rate for a, b in rows])
    # Each pair ran back to back: the median of the pair differences is the headline.
    added_ms = median([d.ttft - local.ttft for d, local in ttft_pairs]) * 1e3
    short = [(a.tokens, b.tokens) for a, b in rows if a.tokens != args.tokens or b.tokens != args.tokens]
    print(f"{'median':>5}  {median([a.decode_rate for a, _ in rows]):>12.1f}  "
          f"{median([b.decode_rate for _, b in rows]):>11.1f}  {ratio:>6.3f}  {'':>7}  "
          f"{median([d.ttft for d, _ in ttft_pairs]) * 1e3:>14.1f}  "
          f"{median([d.server_ttft or 0.0 for d, _ in ttft_pairs]) * 1e3:>13.1f}  "
          f"{median([local.ttft for _, local in ttft_pairs]) * 1e3:>13.1f}\n")  # fmt: skip
    if short:
        print(f"note: some runs stopped early (EOS) -- (daemon, Llama) tokens: {short}")
    verdict = "ok" if ratio >= DECODE_TARGET else "BELOW TARGET"
    print(f"decode tokens/s, daemon / in-process: {ratio:.3f} (median of the round ratios; "
          f"target >= {DECODE_TARGET}: {verdict})")  # fmt: skip
    verdict = "ok" if added_ms < TTFT_TARGET_MS else "ABOVE TARGET"
    print(f"added time to first token: {added_ms:+.1f} ms (median of daemon - in-process over "
          f"{len(ttft_pairs)} back-to-back pairs; target < {TTFT_TARGET_MS:.0f} ms: {verdict})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
