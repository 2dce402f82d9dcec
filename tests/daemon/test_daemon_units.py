"""The daemon's pure parts: keep_alive and address syntax, option merging, the error-to-status table."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from ingot.daemon.address import DEFAULT_PORT, AddressError, client_address, parse_address
from ingot.daemon.engine.errors import ContextOverflowError, LoadError, QueueFullError, RunnerDiedError
from ingot.daemon.errors import InsufficientMemoryError, RequestCancelledError, ShuttingDownError
from ingot.daemon.keepalive import KeepAliveError, parse_keep_alive
from ingot.daemon.options import options_from_proto, resolve_format, resolve_options
from ingot.daemon.planner import PlanError
from ingot.daemon.status import status_for
from ingot.modelfile import ParameterError, parse
from ingot.proto.ingot.v1 import common_pb2
from ingot.registry.errors import DigestMismatchError, ModelNotFoundError, ReferenceError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300.0), ("1h30m", 5400.0), ("90s", 90.0), ("250ms", 0.25), ("300", 300.0), ("2.5", 2.5),
     ("0", 0.0), ("-1", None), ("-5m", None)],
)
def test_keep_alive_forms(text: str, seconds: float | None) -> None:
    assert parse_keep_alive(text).seconds == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "5m3", "m", "--1"])
def test_bad_keep_alive_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(KeepAliveError, match="'5m'"):
        parse_keep_alive(text)


def test_addresses() -> None:
    assert parse_address("unix:/run/ingot.sock").unix_path == Path("/run/ingot.sock")
    assert parse_address("unix:///run/ingot.sock").unix_path == Path("/run/ingot.sock")
    tcp = parse_address("127.0.0.1:9000")
    assert (tcp.host, tcp.port, tcp.is_loopback) == ("127.0.0.1", 9000, True)
    assert parse_address("localhost").port == DEFAULT_PORT
    v6 = parse_address("[::1]:7")
    assert v6.grpc_target == "[::1]:7" and v6.is_loopback
    assert not parse_address("0.0.0.0:1").is_loopback
    assert not parse_address("example.com:1").is_loopback
    for bad in ("", ":80", "host:port", "::1:80", "[::1", "host:70000"):
        with pytest.raises(AddressError):
            parse_address(bad)


def test_client_address_prefers_ingot_host(tmp_path: Path) -> None:
    assert client_address(tmp_path, {}).unix_path == tmp_path / "ingot.sock"
    assert client_address(tmp_path, {"INGOT_HOST": "10.0.0.2:80"}).host == "10.0.0.2"
    with pytest.raises(AddressError, match="INGOT_HOST"):
        client_address(tmp_path, {"INGOT_HOST": "unix:"})


def test_request_options_beat_the_modelfile_which_beats_defaults() -> None:
    modelfile = parse("FROM x.gguf\nPARAMETER temperature 0.3\nPARAMETER num_ctx 1024\nPARAMETER stop a\n")
    overrides = options_from_proto(common_pb2.Options(num_ctx=2048, seed=7, stop=["b", "c"]))
    resolved = resolve_options(modelfile.parameters, overrides)
    assert resolved.load.num_ctx == 2048
    assert resolved.sampling.temperature == 0.3
    assert resolved.sampling.seed == 7 and resolved.sampling.stop == ("b", "c")
    assert resolved.sampling.top_k == 40  # the table default
    assert resolved.load.num_gpu == -1 and resolved.load.num_thread is None


def test_option_errors_name_the_option() -> None:
    with pytest.raises(ParameterError) as caught:
        options_from_proto(common_pb2.Options(num_ctx=0))
    assert caught.value.name == "num_ctx"


def test_format() -> None:
    assert resolve_format("") == (False, None)
    assert resolve_format("json") == (True, None)
    json_output, grammar = resolve_format('{"type": "object", "properties": {"a": {"type": "integer"}}}')
    assert not json_output and grammar and "root" in grammar


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ModelNotFoundError("model 'x' not found"), grpc.StatusCode.NOT_FOUND),
        (ReferenceError("bad name"), grpc.StatusCode.INVALID_ARGUMENT),
        (ParameterError("top_p", "bad top_p", kind="range"), grpc.StatusCode.INVALID_ARGUMENT),
        (ContextOverflowError(900, 512), grpc.StatusCode.INVALID_ARGUMENT),
        (QueueFullError("full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (RunnerDiedError("died"), grpc.StatusCode.UNAVAILABLE),
        (ShuttingDownError(), grpc.StatusCode.UNAVAILABLE),
        (InsufficientMemoryError("m", needed_bytes=2 << 30, available_bytes=1 << 30), grpc.StatusCode.FAILED_PRECONDITION),
        (PlanError("context does not fit"), grpc.StatusCode.FAILED_PRECONDITION),
        (LoadError("bad tensor"), grpc.StatusCode.FAILED_PRECONDITION),
        (DigestMismatchError("blob changed"), grpc.StatusCode.DATA_LOSS),
        (RequestCancelledError(), grpc.StatusCode.CANCELLED),
        (RequestCancelledError("late", deadline=True), grpc.StatusCode.DEADLINE_EXCEEDED),
        (TimeoutError("slow"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (RuntimeError("bug"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_error_maps_to_one_status(error: Exception, code: grpc.StatusCode) -> None:
    status = status_for(error)
    assert status.code == code
    assert "\n" not in status.message and status.message


def test_status_messages_say_what_to_do() -> None:
    assert "ingot pull" in status_for(ModelNotFoundError("model 'x' not found")).message
    assert "retry" in status_for(RunnerDiedError("runner 12 died")).message
    memory = status_for(InsufficientMemoryError("m", needed_bytes=3 << 30, available_bytes=1 << 30,
                                                tried=("33 GPU layers with batch 512",)))
    assert "3.0 GiB" in memory.message and "33 GPU layers" in memory.message
