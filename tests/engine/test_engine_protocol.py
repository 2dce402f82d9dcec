"""The runner wire format: frames over a real socket pair, and the dataclass / error codecs."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from ingot.daemon.engine import (
    Chunk,
    ContextOverflowError,
    DoneReason,
    GenerateRequest,
    LoadError,
    LoadOptions,
    Metrics,
    QueueFullError,
    RunnerStats,
    SamplingOptions,
)
from ingot.daemon.engine.protocol import (
    FrameChannel,
    ProtocolError,
    decode_chunk,
    decode_error,
    decode_load_options,
    decode_request,
    decode_stats,
    encode_chunk,
    encode_error,
    encode_load_options,
    encode_request,
    encode_stats,
)


@pytest.fixture
def channels() -> Iterator[tuple[FrameChannel, FrameChannel]]:
    left, right = socket.socketpair()
    a, b = FrameChannel(left), FrameChannel(right)
    yield a, b
    a.close()
    b.close()


def test_frames_round_trip_and_end_of_file_reads_as_none(channels: tuple[FrameChannel, FrameChannel]) -> None:
    a, b = channels
    a.send({"op": "chunk", "id": 7, "text": "héllo 🙂" * 1000})
    a.send({"op": "closed"})
    assert b.receive() == {"op": "chunk", "id": 7, "text": "héllo 🙂" * 1000}
    assert b.receive() == {"op": "closed"}
    a.close()
    assert b.receive() is None


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'{"no_op": 1}'])
def test_malformed_frames_are_protocol_errors(channels: tuple[FrameChannel, FrameChannel], payload: bytes) -> None:
    a, b = channels
    a.sock.sendall(struct.pack(">I", len(payload)) + payload)
    with pytest.raises(ProtocolError):
        b.receive()


def test_an_absurd_frame_length_is_refused_before_reading(channels: tuple[FrameChannel, FrameChannel]) -> None:
    a, b = channels
    a.sock.sendall(struct.pack(">I", 2**31))
    with pytest.raises(ProtocolError, match="exceeds"):
        b.receive()


def test_dataclasses_survive_the_round_trip() -> None:
    options = LoadOptions(model_path="/m.gguf", tensor_split=(0.5, 0.5), adapters=("/a.gguf",), seed=3)
    assert decode_load_options(encode_load_options(options)) == options
    request = GenerateRequest("hi", SamplingOptions(stop=("a", "b"), seed=9, json_output=True), truncatable_after=4)
    assert decode_request(encode_request(request)) == request
    final = Chunk("x", done=True, done_reason=DoneReason.LENGTH, metrics=Metrics(prompt_tokens=3, eval_ns=9))
    assert decode_chunk(encode_chunk(final)) == final
    assert decode_chunk(encode_chunk(Chunk("y"))) == Chunk("y")
    stats = RunnerStats(1, "/m", 2, 3, 4, 5, 6, 7, 8, 9)
    assert decode_stats(encode_stats(stats)) == stats


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ProtocolError, match="unknown"):
        decode_load_options({"model_path": "/m", "evil": 1})


def test_errors_keep_their_type_and_details() -> None:
    overflow = decode_error(encode_error(ContextOverflowError(100, 64, reserved=8)))
    assert isinstance(overflow, ContextOverflowError)
    assert (overflow.prompt_tokens, overflow.n_ctx, overflow.over_by) == (100, 64, 44)
    oom = decode_error(encode_error(LoadError("no memory", out_of_memory=True)))
    assert isinstance(oom, LoadError) and oom.out_of_memory
    assert isinstance(decode_error(encode_error(QueueFullError("busy"))), QueueFullError)
    assert "ValueError" in str(decode_error({"kind": "ValueError", "message": "x"}))


def test_frames_sent_back_to_back_arrive_whole_and_in_order(channels: tuple[FrameChannel, FrameChannel]) -> None:
    # The reader takes what is waiting in one recv; frames behind the first must come out intact.
    a, b = channels
    big = "x" * (3 << 20)  # larger than one read: joined from parts, with the next frame behind it
    messages = [{"op": "chunks", "items": [[i, {"text": f"t{i}"}]]} for i in range(50)]

    def write() -> None:  # in a thread: the big frame fills the socket buffer until it is read
        for message in messages[:25]:
            a.send(message)
        a.send({"op": "result", "id": 1, "value": big})
        for message in messages[25:]:
            a.send(message)
        a.sock.shutdown(socket.SHUT_WR)

    writer = threading.Thread(target=write)
    writer.start()
    received = [b.receive() for _ in range(51)]
    writer.join()
    assert received[:25] == messages[:25]
    assert received[25] == {"op": "result", "id": 1, "value": big}
    assert received[26:] == messages[25:]
    assert b.receive() is None


def test_a_frame_split_over_many_writes_is_reassembled(channels: tuple[FrameChannel, FrameChannel]) -> None:
    a, b = channels
    body = b'{"op":"chunks","items":[[3,{"text":"h\xc3\xa9"}]]}'
    raw = struct.pack(">I", len(body)) + body
    for i in range(len(raw)):
        a.sock.sendall(raw[i : i + 1])
    assert b.receive() == {"op": "chunks", "items": [[3, {"text": "hé"}]]}


def test_the_outbox_sends_one_frame_per_flush_and_nothing_when_empty(
    channels: tuple[FrameChannel, FrameChannel],
) -> None:
    from ingot.daemon.engine.runner_main import Outbox

    a, b = channels
    outbox = Outbox(a)
    outbox.flush()  # nothing collected: no frame
    outbox.add(1, Chunk("a"))
    outbox.add(2, Chunk("b"))
    outbox.flush()
    final = Chunk("", done=True, done_reason=DoneReason.STOP, metrics=Metrics(completion_tokens=1))
    outbox.add(1, final)
    outbox.flush()
    outbox.flush()
    a.close()
    first, second = b.receive(), b.receive()
    assert first == {"op": "chunks", "items": [[1, encode_chunk(Chunk("a"))], [2, encode_chunk(Chunk("b"))]]}
    assert second is not None and decode_chunk(second["items"][0][1]) == final
    assert b.receive() is None
