"""Helpers for the daemon tests: a real `ingot serve` process, packages in a temp store, exact expectations.

`DaemonProcess.start()` runs `python -m ingot.cli.main serve` with
INGOT_HOME set to a temp folder and returns once the standard health service
answers SERVING (the call waits for the socket with wait_for_ready: no
sleeps). Counting models (`SyntheticSpec(counting=True)`) have a known
greedy continuation, so tests compare streamed text exactly.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ingot.modelfile import parse
from ingot.proto.ingot.v1 import (
    common_pb2,
    inference_pb2,
    inference_pb2_grpc,
    models_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from ingot.registry.home import IngotHome
from ingot.registry.package import build_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import SyntheticSpec, build_vocab, counting_sequence

T = TypeVar("T")

COUNTING = SyntheticSpec(counting=True)
# A second, different model (another seed and name) for eviction and multi-model tests.
OTHER = SyntheticSpec(counting=True, seed=1, name="ingot-other")
STARTUP_TIMEOUT = 60.0


def expected_text(spec: SyntheticSpec, last_prompt_token: int, n: int) -> str:
    """What a counting model streams for `n` tokens after a prompt ending in `last_prompt_token`."""
    vocab = build_vocab(spec.n_vocab)
    return "".join(vocab.tokens[t] for t in counting_sequence(spec, last_prompt_token, n)).replace("\u2581", " ")


def make_package(home: Path, name: str, gguf: Path, modelfile_body: str = "", *, link: bool = False) -> str:
    """Build `name` into home's store from `gguf` plus extra Modelfile lines; returns the manifest digest."""
    store = Store.open(IngotHome(home))
    modelfile = parse(f"FROM {gguf}\n{modelfile_body}", filename=f"<{name}>")
    descriptor = build_package(store, modelfile, gguf.parent, ref=Reference.parse(name), link=link)
    return descriptor.digest


def wait_until(predicate: Callable[[], T], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `predicate` (an RPC or a process check) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


@dataclass
class DaemonProcess:
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    channel: grpc.Channel
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.home / "ingot.sock"

    @property
    def inference(self) -> inference_pb2_grpc.InferenceStub:
        return inference_pb2_grpc.InferenceStub(self.channel)

    @property
    def models(self) -> models_pb2_grpc.ModelsStub:
        return models_pb2_grpc.ModelsStub(self.channel)

    @property
    def runtime(self) -> runtime_pb2_grpc.RuntimeStub:
        return runtime_pb2_grpc.RuntimeStub(self.channel)

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.channel)

    def env(self) -> dict[str, str]:
        """The environment a CLI process needs to reach this daemon."""
        return {**os.environ, "INGOT_HOME": str(self.home), **self.extra_env}

    @classmethod
    def start(
        cls,
        home: Path,
        *args: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
        address_space_limit: int | None = None,
    ) -> DaemonProcess:
        """`address_space_limit` (bytes, RLIMIT_AS) also binds the runners: a way to make loads run out of memory."""
        home.mkdir(parents=True, exist_ok=True)
        extra = dict(env or {})
        log_path = home / f"daemon-{time.monotonic_ns()}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "ingot.cli.main", "serve", *args],
                env={**os.environ, "INGOT_HOME": str(home), **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=None if address_space_limit is None else _limit_address_space(address_space_limit),
            )
        channel = grpc.insecure_channel(f"unix:{home / 'ingot.sock'}")
        daemon = cls(home, process, log_path, channel, extra)
        if wait:
            daemon.wait_serving()
        return daemon

    def wait_serving(self) -> None:
        """Block until health says SERVING; fail early (with the log) if the process exits."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                reply = self.health.Check(health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise
            if self.process.poll() is not None:
                raise AssertionError(f"ingot serve exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"ingot serve did not report SERVING:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> list[runtime_pb2.RunningModel]:
        return list(self.runtime.ListRunning(runtime_pb2.ListRunningRequest(), timeout=10).models)

    def running_model(self, name: str) -> runtime_pb2.RunningModel | None:
        return next((m for m in self.running() if m.name == name), None)

    def active(self, name: str) -> int:
        model = self.running_model(name)
        return model.active_requests if model is not None else 0

    def generate(self, model: str, prompt: str, **options: Any) -> tuple[str, inference_pb2.GenerateResponse]:
        """The whole streamed text and the final chunk."""
        keep_alive = options.pop("keep_alive", None)
        request = inference_pb2.GenerateRequest(model=model, prompt=prompt, options=common_pb2.Options(**options))
        if keep_alive is not None:
            request.keep_alive = keep_alive
        pieces: list[str] = []
        final = None
        for chunk in self.inference.Generate(request, timeout=60):
            pieces.append(chunk.response)
            if chunk.done:
                final = chunk
        assert final is not None, "the stream ended without a done chunk"
        return "".join(pieces), final

    def last_token(self, model: str, text: str) -> int:
        tokens = self.inference.Tokenize(inference_pb2.TokenizeRequest(model=model, content=text), timeout=60).tokens
        return tokens[-1]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.channel.close()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                raise AssertionError(f"ingot serve ignored {signal.Signals(sig).name}:\n{self.log()}")
        return self.process.returncode


def _limit_address_space(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: its parent has not reaped it yet.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def start_daemon() -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons with custom flags; each is stopped after the test."""
    started: list[DaemonProcess] = []

    def start(home: Path, *args: str, **kwargs: object) -> DaemonProcess:
        process = DaemonProcess.start(home, *args, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
