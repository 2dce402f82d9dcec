"""The X-Ingot-Priority header: an HTTP request scheduled as batch work, seen in the scheduler's queue state."""

from __future__ import annotations

import httpx
from http_helpers import MODEL, Served


def _batch_admitted(served: Served) -> int:
    states = [s for s in served.daemon.scheduler.queue_state() if s.model.endswith(MODEL + ":latest")]
    return states[0].admitted.batch if states else 0


def test_a_request_with_the_batch_header_is_batch_work(served: Served, http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4000, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body, headers={"X-Ingot-Priority": "batch"}) as reply:
        assert reply.status_code == 200
        lines = reply.iter_lines()
        assert next(lines).startswith("data: ")
        # Streaming has begun: the scheduler holds it as batch work until it ends.
        assert _batch_admitted(served) == 1
    plain = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False,
                                             "options": {"num_predict": 2}}, headers={"X-Ingot-Priority": "Interactive"})
    assert plain.status_code == 200


def test_an_unknown_priority_header_is_a_400_naming_it(http: httpx.Client) -> None:
    reply = http.post("/v1/embeddings", json={"model": MODEL, "input": "x"}, headers={"X-Ingot-Priority": "urgent"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "X-Ingot-Priority" and "urgent" in error["message"]
