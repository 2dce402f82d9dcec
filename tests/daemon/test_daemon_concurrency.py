"""Many clients at once: exact outputs, the per-model queue bound, cancellation and deadlines freeing slots."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from daemon_helpers import COUNTING, DaemonProcess, expected_text, wait_until

from ingot.proto.ingot.v1 import common_pb2, inference_pb2
from ingot.registry.synthetic import build_vocab

QUEUE = 16  # the daemon fixture's --max-queue
# Long enough that no stream ends by itself while a test looks at it: the
# context fills after ~8000 tokens, far more than the tests let run.
LONG = common_pb2.Options(num_ctx=8192, num_predict=-1)


def _long_stream(daemon: DaemonProcess) -> grpc.Future:
    return daemon.inference.Generate(inference_pb2.GenerateRequest(model="counter", prompt="the", options=LONG))


def test_sixteen_clients_streaming_at_once_all_get_their_exact_output(daemon: DaemonProcess) -> None:
    words = [w.removeprefix("\u2581") for w in build_vocab(COUNTING.n_vocab).tokens if w.startswith("\u2581")]
    prompts = [w for w in words if len(w) > 2][:QUEUE]
    assert len(prompts) == QUEUE
    expected = {p: expected_text(COUNTING, daemon.last_token("counter", p), 20) for p in prompts}

    def ask(prompt: str) -> tuple[str, str, int]:
        text, final = daemon.generate("counter", prompt, num_predict=20)
        return prompt, text, final.metrics.eval_count

    with ThreadPoolExecutor(QUEUE) as pool:
        results = list(pool.map(ask, prompts))
    assert {prompt: text for prompt, text, _ in results} == expected
    assert {count for _, _, count in results} == {20}
    assert len(set(expected.values())) > 1  # the prompts really lead to different answers


def _slots_busy(daemon: DaemonProcess) -> int:
    model = daemon.running_model("counter")
    return model.slots_busy if model is not None else 0


def test_queue_bound_then_a_disconnect_frees_its_place(daemon: DaemonProcess) -> None:
    daemon.generate("counter", "the", num_predict=1, num_ctx=8192)  # loaded: the streams below decode at once
    calls = [_long_stream(daemon) for _ in range(QUEUE)]
    try:
        wait_until(lambda: daemon.active("counter") == QUEUE, what=f"{QUEUE} admitted requests")
        # --parallel 4: four decode, the other twelve wait in the runner's queue.
        wait_until(lambda: _slots_busy(daemon) == 4, what="the runner to fill its four slots")
        with pytest.raises(grpc.RpcError) as refused:
            next(_long_stream(daemon))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(QUEUE) in refused.value.details()

        # A client that goes away mid-stream gives its place back...
        calls.pop().cancel()
        wait_until(lambda: daemon.active("counter") == QUEUE - 1, what="the cancelled request to be released")
        # ... which the next request takes; the bound still holds after it.
        calls.append(_long_stream(daemon))
        wait_until(lambda: daemon.active("counter") == QUEUE, what="the new request to be admitted")
        with pytest.raises(grpc.RpcError) as again:
            next(_long_stream(daemon))
        assert again.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        for call in calls:
            call.cancel()
    wait_until(lambda: daemon.active("counter") == 0, what="every cancelled request to be released")
    wait_until(lambda: _slots_busy(daemon) == 0, what="the runner to free every slot")
    # The runner still serves, with its slots free.
    text, final = daemon.generate("counter", "the", num_predict=3, num_ctx=8192)
    assert final.metrics.eval_count == 3


def test_a_deadline_reaches_the_runner_and_frees_the_slot(daemon: DaemonProcess) -> None:
    daemon.generate("counter", "the", num_predict=1, num_ctx=8192)  # loaded, so the deadline hits mid-stream
    stream = daemon.inference.Generate(
        inference_pb2.GenerateRequest(model="counter", prompt="the", options=LONG), timeout=0.5
    )
    with pytest.raises(grpc.RpcError) as expired:
        for _ in stream:
            pass
    assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: daemon.active("counter") == 0, what="the expired request to be released")
    wait_until(lambda: _slots_busy(daemon) == 0, what="the runner to free the slot")
