"""Where each microsecond of a generated token goes: the engine's stages, the runner wire, the daemon.

    python benchmarks/bench_overhead.py --model PATH [--tokens 64] [--streams 1,8] [--rounds 3]

Two parts, both on the same model and thread count, per generated token:

1. **Engine stages** (in this process): an `Engine` whose chunks go through the
   runner's wire exactly as in a runner (`encode_chunk` + `FrameChannel.send`
   on a socketpair, read back by a thread with `FrameChannel.receive` +
   `decode_chunk` into a `RequestStream`). Each stage of the engine thread is
   timed with a wrapper: `llama_decode` (prompt passes and token passes apart),
   native sampling, detokenizing, stop checks, delivering a chunk (the wire's
   send side), and the rest of the loop; plus the CPU of the reader thread (the
   wire's receive side, as in the daemon) and of the consuming threads.
2. **Through the daemon** (`ingot serve` as a child, its runner a grandchild):
   CPU seconds of the daemon and of the runner per token, from /proc, for
   gRPC (`Inference/Generate`, raw) and HTTP (`/v1/completions`, SSE, the
   `openai` client), at each stream count. With `perf` available, a
   `perf record -e cpu-clock` of both processes splits that CPU by shared
   object: llama.cpp's decode (ggml, libgomp, libllama outside its sampler),
   the native sampler, the Python interpreter, the kernel, gRPC core, ...;
   "outside llama_decode" is everything but the first.

Timers cost ~0.1 µs per call; the machine's other load inflates wall times
(not CPU counts) -- state it with the numbers. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench_common import DEFAULT_MODEL, N_CTX, SEED, process_cpu_seconds, released_together

TEMPERATURE = 0.8
STOPS = ("<|im_end|>", "\nUser:")  # realistic stop strings: the check runs on every token


def _prompt(counter: Iterator[int]) -> str:
    return (
        f"Story {next(counter):06d}: once upon a time in a small city by the water there lived a family "
        "of people who made music in their house every day of the year"
    )


# -- part 1: the engine's stages ------------------------------------------------------------------


@dataclass
class Stages:
    """Nanoseconds per stage on the engine thread: wall clock and the thread's own CPU time.

    CPU time leaves out what a noisy machine adds (preemption, waiting for the
    GIL); each timer costs ~1 µs of it (two clock reads).
    """

    wall: collections.Counter[str] = field(default_factory=collections.Counter)
    cpu: collections.Counter[str] = field(default_factory=collections.Counter)
    prompt_pass: bool = False

    def clear(self) -> None:
        self.wall.clear()
        self.cpu.clear()

    def add(self, stage: str, wall: int, cpu: int) -> None:
        self.wall[stage] += wall
        self.cpu[stage] += cpu

    def wrap(self, owner: type, name: str, stage: str | Callable[[], str]) -> Callable[[], None]:
        original = getattr(owner, name)
        clock, thread_clock = time.perf_counter_ns, time.thread_time_ns

        def timed(*args: object, **kwargs: object) -> object:
            wall, cpu = clock(), thread_clock()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(stage() if callable(stage) else stage, clock() - wall, thread_clock() - cpu)

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, original)


def _thread_cpu_ns(ident: int | None) -> int:
    assert ident is not None
    return time.clock_gettime_ns(time.pthread_getcpuclockid(ident))


class WireReader:
    """The daemon's side of the runner wire: frames in, chunks pushed to their streams (runner_client's loop)."""

    def __init__(self, sock: socket.socket) -> None:
        from ingot.daemon.engine.protocol import FrameChannel

        self.channel = FrameChannel(sock)
        self.streams: dict[int, object] = {}
        self.lock = threading.Lock()
        self.cpu_ns = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from ingot.daemon.engine.protocol import decode_chunk

        started = time.thread_time_ns()
        while (message := self.channel.receive()) is not None:
            for request_id, data in _chunks_of(message):
                chunk = decode_chunk(data)
                with self.lock:
                    stream = self.streams.get(request_id)
                    if chunk.done:
                        self.streams.pop(request_id, None)
                if stream is not None:
                    stream.push(chunk)  # type: ignore[attr-defined]
            self.cpu_ns = time.thread_time_ns() - started

    def close(self) -> None:
        self.channel.close()
        self._thread.join()


def _chunks_of(message: dict[str, object]) -> list[tuple[int, object]]:
    """(id, chunk data) pairs of a frame: one `chunk`, or the several of a `chunks` frame where the wire has one."""
    if message["op"] == "chunk":
        return [(message["id"], message["chunk"])]  # type: ignore[list-item]
    return [(int(item[0]), item[1]) for item in message["items"]]  # type: ignore[union-attr,index]


def engine_stages(model: Path, threads: int, streams: int, tokens: int, rounds: int) -> dict[str, float]:
    """µs per generated token in each stage, medians over `rounds` bursts of `streams` requests."""
    from ingot.daemon.engine import engine as engine_module
    from ingot.daemon.engine.detokenizer import IncrementalDetokenizer
    from ingot.daemon.engine.native import NativeContext
    from ingot.daemon.engine.protocol import FrameChannel
    from ingot.daemon.engine.sampling import SamplerChain
    from ingot.daemon.engine.stops import StopFilter
    from ingot.daemon.engine.stream import RequestStream
    from ingot.daemon.engine.types import GenerateRequest, LoadOptions, SamplingOptions

    import itertools

    counter = itertools.count(1)
    stages = Stages()
    Engine = engine_module.Engine
    undo = [
        stages.wrap(NativeContext, "decode", lambda: "decode: prompt passes" if stages.prompt_pass else "decode: token passes"),
        stages.wrap(SamplerChain, "sample", "sample (native chain)"),
        stages.wrap(IncrementalDetokenizer, "feed", "detokenize"),
        stages.wrap(StopFilter, "feed", "stop strings"),
        stages.wrap(Engine, "_deliver", "deliver (sink)"),
    ]
    original_evaluate, original_step = Engine._evaluate, Engine._step
    idle = threading.Event()  # set when a step leaves nothing running: the engine thread is done with a burst

    def step(self: object) -> None:
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        original_step(self)  # type: ignore[arg-type]
        stages.add("step (all)", time.perf_counter_ns() - wall, time.thread_time_ns() - cpu)
        if not self._running:  # type: ignore[attr-defined]
            idle.set()

    def evaluate(self: object, decoding: list[object], prompting: list[object]) -> bool:
        stages.prompt_pass = not decoding
        return original_evaluate(self, decoding, prompting)  # type: ignore[arg-type]

    Engine._evaluate, Engine._step = evaluate, step  # type: ignore[method-assign]
    undo.append(lambda: (setattr(Engine, "_evaluate", original_evaluate), setattr(Engine, "_step", original_step)))
    try:  # the runner's own sink: chunks of one llama_decode in one frame
        from ingot.daemon.engine.runner_main import Outbox
    except ImportError:  # before it existed: one frame per chunk
        Outbox = None
    if Outbox is not None:
        undo.append(stages.wrap(Outbox, "flush", "wire send (flush)"))

    options = LoadOptions(model_path=str(model), n_ctx=N_CTX, n_parallel=max(streams, 1), n_threads=threads)
    sampling = SamplingOptions(temperature=TEMPERATURE, seed=SEED, num_predict=tokens, stop=STOPS)
    runner_end, daemon_end = socket.socketpair()
    reader = WireReader(daemon_end)
    sender = FrameChannel(runner_end)
    outbox = Outbox(sender) if Outbox is not None else None
    ids = itertools.count(1)
    results: list[dict[str, float]] = []
    try:
        with Engine(options, **({"flush": outbox.flush} if outbox else {})) as engine:

            def one(text: str) -> tuple[int, int]:
                request_id = next(ids)
                stream = RequestStream(cancel=lambda: None)
                with reader.lock:
                    reader.streams[request_id] = stream
                if outbox is not None:
                    sink = functools.partial(outbox.add, request_id)
                else:
                    def sink(chunk: object, request_id: int = request_id) -> None:
                        from ingot.daemon.engine.protocol import encode_chunk

                        sender.send({"op": "chunk", "id": request_id, "chunk": encode_chunk(chunk)})  # type: ignore[arg-type]

                started = time.thread_time_ns()
                engine.submit(GenerateRequest(text, sampling), sink)
                final = None
                for chunk in stream:
                    final = chunk
                assert final is not None and final.metrics is not None
                return final.metrics.completion_tokens, time.thread_time_ns() - started

            for _ in range(2):  # warm: weights paged in, graphs for 1 and for `streams` sequences
                released_together([lambda: one(_prompt(counter)) for _ in range(streams)])
            for _ in range(rounds):
                idle.wait()
                idle.clear()
                stages.clear()
                engine_cpu = _thread_cpu_ns(engine._thread.ident)
                reader_cpu = reader.cpu_ns
                outcome, _elapsed = released_together([lambda: one(_prompt(counter)) for _ in range(streams)])
                idle.wait()
                engine_cpu = _thread_cpu_ns(engine._thread.ident) - engine_cpu
                generated = sum(n for n, _ in outcome)
                row: dict[str, float] = {}
                for kind, totals in (("wall", stages.wall), ("CPU", stages.cpu)):
                    part = {stage: ns / 1e3 / generated for stage, ns in totals.items()}
                    whole = part.pop("step (all)")
                    part["engine loop, rest"] = whole - sum(part.values())
                    row.update({f"{stage} ({kind})": value for stage, value in part.items()})
                row["wire receive (reader thread CPU)"] = (reader.cpu_ns - reader_cpu) / 1e3 / generated
                row["consumers (CPU)"] = sum(ns for _, ns in outcome) / 1e3 / generated
                row["engine thread CPU"] = engine_cpu / 1e3 / generated
                row["tokens"] = generated
                results.append(row)
    finally:
        for revert in undo:
            revert()
        sender.close()
        reader.close()
    return {key: statistics.median(row.get(key, 0.0) for row in results) for key in results[0]}


# -- part 2: through the daemon -------------------------------------------------------------------

# Shared objects by what their CPU is spent on; the first match wins.
_DSO_CLASSES = (
    ("llama_decode", ("libggml", "libgomp")),
    ("gRPC core", ("cygrpc", "libgrpc")),
    ("protobuf", ("_message", "upb", "protobuf")),
    ("HTTP (uvicorn, httptools, uvloop)", ("httptools", "uvloop", "uvicorn")),
    ("Python (interpreter, json, stdlib)", ("python", "_json", "_queue", "_socket", "_struct", ".cpython-")),
    ("kernel", ("[kernel",)),
    ("libc", ("libc.so", "libm.so", "libstdc++", "ld-linux")),
)


def _class_of(dso: str, symbol: str) -> str:
    if "libllama" in dso:
        return "native sampler" if ("sampler" in symbol or "llama_token_data" in symbol) else "llama_decode"
    for name, needles in _DSO_CLASSES:
        if any(needle in dso for needle in needles):
            return name
    return "other"


def _perf_shares(data: Path, pids: dict[int, str]) -> dict[str, collections.Counter[str]]:
    """Per process (by label): the share of its CPU samples in each class."""
    out = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "pid,ip,sym,dso"], capture_output=True, text=True, check=False
    ).stdout
    samples: dict[str, collections.Counter[str]] = {label: collections.Counter() for label in pids.values()}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        label = pids.get(int(parts[0]))
        if label is None:
            continue
        rest = parts[1] + (" " + parts[2] if len(parts) > 2 else "")
        # "<addr> <symbol> (<dso>)"
        dso = rest[rest.rfind("(") + 1 : rest.rfind(")")] if "(" in rest else rest
        samples[label][_class_of(dso, rest)] += 1
    shares = {}
    for label, counter in samples.items():
        total = sum(counter.values()) or 1
        shares[label] = collections.Counter({k: v / total for k, v in counter.items()})
    return shares


def _runner_pid(daemon_pid: int) -> int:
    for _ in range(100):
        for task in Path(f"/proc/{daemon_pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"runner_main" in cmdline:
                    return int(child)
        time.sleep(0.1)
    raise SystemExit("the daemon started no runner")


def _thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of `pid`."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _thread_names(pid: int) -> dict[int, str]:
    """Thread id -> name: Python's names through `py-spy dump` where it is installed, else the kernel's comm."""
    names = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names[int(task.name)] = (task / "comm").read_text().strip()
        except OSError:
            pass
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if Path(spy).exists():
        dump = subprocess.run([spy, "dump", "--pid", str(pid), "--nonblocking"], capture_output=True, text=True).stdout
        names.update({int(m.group(1)): m.group(2) for m in re.finditer(r'Thread (\d+) \(\w+\): "([^"]+)"', dump)})
    return names


def _role(name: str) -> str:
    """What a daemon thread does, from its name."""
    for needle, role in (
        ("ingot-runner-read", "runner wire receive"),
        ("ingot-rpc", "gRPC servicer threads"),
        ("_serve", "gRPC server poll loop"),
        ("ingot-http-call", "HTTP servicer threads"),
        ("ingot-http", "HTTP event loop"),
    ):
        if needle in name:
            return role
    if name in ("event_engine", "grpc_global_tim", "default-executo", "resolver-execu", "timer_manager"):
        return "gRPC core threads"
    return "other threads"


@dataclass
class DaemonRun:
    tokens: int
    cpu: dict[str, float]  # µs per token, per process label
    shares: dict[str, collections.Counter[str]]
    threads: dict[str, float]  # µs per token, per daemon thread role


def daemon_profile(
    model: Path, threads: int, streams_list: list[int], tokens: int, rounds: int, use_perf: bool
) -> dict[tuple[str, int], list[DaemonRun]]:
    import itertools

    from bench_daemon import GrpcGenerate, IngotDaemon
    from bench_peers import OpenAICompletions

    counter = itertools.count(1)
    runs: dict[tuple[str, int], list[DaemonRun]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="ingot-bench-overhead-") as folder:
        daemon = IngotDaemon.start(Path(folder), model, threads=threads, parallel=max(streams_list), http=True)
        assert daemon.http_url is not None
        clients: dict[str, Callable[[str, int], object]] = {}
        grpc_side = GrpcGenerate(daemon.socket_path, temperature=TEMPERATURE)
        http_side = OpenAICompletions(daemon.http_url, {}, temperature=TEMPERATURE)
        clients = {"gRPC": grpc_side.run, "HTTP": http_side.run}
        try:
            for run in clients.values():  # warm; the first request loads the model
                for streams in streams_list:
                    released_together([lambda run=run: run(_prompt(counter), 8) for _ in range(streams)])
            daemon_pid = daemon.server.process.pid
            runner_pid = _runner_pid(daemon_pid)
            pids = {daemon_pid: "daemon", runner_pid: "runner", os.getpid(): "client"}
            for index in range(rounds):
                for name, run in clients.items():
                    for streams in streams_list:
                        before = {label: process_cpu_seconds(pid) for pid, label in pids.items()}
                        threads_before = _thread_cpu(daemon_pid)
                        perf = None
                        data = Path(folder) / f"perf-{index}-{name}-{streams}.data"
                        if use_perf:
                            perf = subprocess.Popen(
                                ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1000", "-o", str(data),
                                 "-p", f"{daemon_pid},{runner_pid}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            )  # fmt: skip
                            time.sleep(0.3)  # perf attaches
                        outcome = []
                        for _ in range(max(1, 8 // streams)):  # ~8 x tokens each: CPU times tick in 10 ms
                            outcome += released_together(
                                [lambda run=run: run(_prompt(counter), tokens) for _ in range(streams)]
                            )[0]
                        if perf is not None:
                            perf.send_signal(signal.SIGINT)
                            perf.wait()
                        after = {label: process_cpu_seconds(pid) for pid, label in pids.items()}
                        threads_after = _thread_cpu(daemon_pid)
                        names = _thread_names(daemon_pid)
                        generated = sum(stream.tokens for stream in outcome)  # type: ignore[attr-defined]
                        cpu = {label: (after[label] - before[label]) * 1e6 / generated for label in after}
                        roles: collections.Counter[str] = collections.Counter()
                        for tid, seconds in threads_after.items():
                            roles[_role(names.get(tid, ""))] += (seconds - threads_before.get(tid, 0.0)) * 1e6 / generated
                        # A process's CPU counts its ended threads too: HTTP calls run on a thread each.
                        roles["ended threads (HTTP calls)"] += cpu["daemon"] - sum(roles.values())
                        shares = _perf_shares(data, {daemon_pid: "daemon", runner_pid: "runner"}) if perf else {}
                        runs[(name, streams)].append(DaemonRun(generated, cpu, shares, dict(roles)))
                        print(f"  round {index + 1} {name} {streams} streams: {generated} tokens, CPU µs/token "
                              + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()), flush=True)  # fmt: skip
        finally:
            grpc_side.close()
            http_side.close()
            daemon.stop()
    return runs


# -- main -----------------------------------------------------------------------------------------


def _table(title: str, columns: list[str], rows: dict[str, list[float]], fmt: str = "{:.0f}") -> None:
    print(f"\n{title}")
    width = max(len(name) for name in rows) + 2
    print(" " * width + "".join(f"{c:>14}" for c in columns))
    for name, values in rows.items():
        print(f"{name:<{width}}" + "".join(f"{fmt.format(v):>14}" for v in values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"GGUF to profile (default {DEFAULT_MODEL})")
    parser.add_argument("--tokens", type=int, default=64, help="max tokens per request (default 64)")
    parser.add_argument("--streams", default="1,8", help="comma-separated stream counts (default 1,8)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per setting; medians (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    parser.add_argument("--parts", default="engine,daemon", help="engine, daemon or both (default both)")
    parser.add_argument("--no-perf", action="store_true", help="skip the perf breakdown of the daemon part")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if not args.model.exists():
        raise SystemExit(f"{args.model} is missing (benchmarks/make_bench_model.py or scripts/real-model)")
    streams_list = [int(s) for s in args.streams.split(",")]
    parts = set(args.parts.split(","))
    load = os.getloadavg()
    print(f"model {args.model.name}, {args.threads} threads, {args.tokens} tokens, temperature {TEMPERATURE}, "
          f"stops {STOPS!r}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip

    if "engine" in parts:
        results = {n: engine_stages(args.model, args.threads, n, args.tokens, args.rounds) for n in streams_list}
        keys = list(next(iter(results.values())))
        _table(
            "engine stages, µs per generated token (wall on the engine thread unless CPU; medians)",
            [f"{n} stream{'s' if n > 1 else ''}" for n in streams_list],
            {key: [results[n][key] for n in streams_list] for key in keys},
            "{:.1f}",
        )
    if "daemon" in parts:
        use_perf = not args.no_perf and shutil.which("perf") is not None
        runs = daemon_profile(args.model, args.threads, streams_list, args.tokens, args.rounds, use_perf)
        columns = [f"{name} {n}" for name, n in runs]
        rows: dict[str, list[float]] = {}
        for label in ("runner", "daemon", "client"):
            rows[f"{label} CPU"] = [statistics.median(r.cpu[label] for r in rs) for rs in runs.values()]
        roles = sorted({role for rs in runs.values() for r in rs for role in r.threads})
        for role in roles:
            values = [statistics.median(r.threads.get(role, 0.0) for r in rs) for rs in runs.values()]
            if max(abs(v) for v in values) >= 0.5:
                rows[f"  daemon: {role}"] = values
        if use_perf:
            classes = sorted({c for rs in runs.values() for r in rs for s in r.shares.values() for c in s})
            for label in ("runner", "daemon"):
                for cls in classes:
                    values = [statistics.median(r.cpu[label] * r.shares[label][cls] for r in rs) for rs in runs.values()]
                    if max(values) >= 0.5:
                        rows[f"  {label}: {cls}"] = values
            rows["daemon+runner outside llama_decode"] = [
                statistics.median(
                    r.cpu["daemon"] * (1 - r.shares["daemon"]["llama_decode"])
                    + r.cpu["runner"] * (1 - r.shares["runner"]["llama_decode"])
                    for r in rs
                )
                for rs in runs.values()
            ]
        _table("through the daemon, CPU µs per generated token (medians)", columns, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
