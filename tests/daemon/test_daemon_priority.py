"""Priorities through a real daemon: a batch stream is paused for an interactive request and resumes.

What happened is read from the scheduler's own queue state (ListRunning's
`queue`), which the admission rules act on -- not from timing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from daemon_helpers import COUNTING, DaemonProcess, expected_text, wait_until

from ingot.proto.ingot.v1 import common_pb2, inference_pb2, runtime_pb2

BATCH = common_pb2.PRIORITY_BATCH


def queue(daemon: DaemonProcess) -> runtime_pb2.QueueDepth:
    model = daemon.running_model("counter")
    assert model is not None
    return model.queue


def test_an_interactive_request_pauses_a_batch_stream_which_then_resumes_intact(
    fresh_home: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    daemon = start_daemon(fresh_home, "--parallel", "1")
    long = inference_pb2.GenerateRequest(
        model="counter", prompt="the", options=common_pb2.Options(num_predict=1500, priority=BATCH)
    )
    stream = daemon.inference.Generate(long, timeout=120)
    pieces = [next(stream).response]
    wait_until(lambda: queue(daemon).running_batch == 1, what="the batch stream in the slot")
    short = inference_pb2.GenerateRequest(
        model="counter", prompt="the war", options=common_pb2.Options(num_predict=3, priority=BATCH)
    )
    queued = daemon.inference.Generate(short, timeout=120)  # the call starts now; read later
    wait_until(lambda: queue(daemon).waiting_batch == 1, what="the second batch request waiting")
    state = queue(daemon)
    assert (state.admitted_batch, state.admitted_interactive, state.preemptions) == (2, 0, 0)

    text, final = daemon.generate("counter", "the light", num_predict=4)
    assert text == expected_text(COUNTING, daemon.last_token("counter", "the light"), 4)
    assert final.done_reason == "length"
    state = queue(daemon)
    # The interactive request paused the running batch stream (the one slot), never the waiting one.
    assert state.preemptions == 1
    assert (state.running_interactive, state.admitted_interactive) == (0, 0)
    assert state.running_batch + state.waiting_batch == 2

    for chunk in stream:
        pieces.append(chunk.response)
    assert "".join(pieces) == expected_text(COUNTING, daemon.last_token("counter", "the"), 1500)
    assert "".join(c.response for c in queued) == expected_text(COUNTING, daemon.last_token("counter", "the war"), 3)


def test_an_unknown_priority_is_refused(fresh_home: Path, start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(fresh_home)
    request = inference_pb2.GenerateRequest(model="counter", prompt="the", options=common_pb2.Options(priority=7))
    with pytest.raises(grpc.RpcError) as caught:
        list(daemon.inference.Generate(request, timeout=60))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "priority" in caught.value.details()
