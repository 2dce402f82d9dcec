"""The OpenAI Batch API on a real daemon, driven by the official openai client: files, jobs, results, restarts."""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from batch_helpers import COUNTER
from daemon_helpers import DaemonProcess, expected_text, wait_until
from oci_registry_server import free_port


def client_for(port: int) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=60)


def upload(client: openai.OpenAI, lines: list[Any]) -> str:
    data = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()
    return client.files.create(file=("requests.jsonl", io.BytesIO(data)), purpose="batch").id


def completion(custom_id: str, prompt: str, n: int) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/completions",
            "body": {"model": "counter", "prompt": prompt, "max_tokens": n}}


def finished(client: openai.OpenAI, batch_id: str, timeout: float = 120.0) -> Any:
    return wait_until(
        lambda: (b := client.batches.retrieve(batch_id)).status in ("completed", "failed", "cancelled") and b,
        timeout=timeout, what=f"batch {batch_id} to finish",
    )


def lines_of(client: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


@pytest.fixture
def port() -> int:
    return free_port()


def test_a_batch_through_the_openai_client(
    home: Path, port: int, start_daemon: Callable[..., DaemonProcess]
) -> None:
    daemon = start_daemon(home, "--http", f"127.0.0.1:{port}")
    client = client_for(port)
    prompts = {"a": "the war", "b": "the light", "c": "the team"}
    file_id = upload(client, [completion(cid, p, 5) for cid, p in prompts.items()] + ["{broken", {**completion("d", "x", 1), "body": {"model": "missing", "prompt": "x"}}])
    assert client.files.retrieve(file_id).purpose == "batch"
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/completions", completion_window="24h",
                                  metadata={"run": "test"})
    assert batch.status == "validating" and batch.metadata == {"run": "test"}
    done = finished(client, batch.id)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (5, 3, 2)
    assert [e.line for e in done.errors.data] == [4]
    output = lines_of(client, done.output_file_id)
    assert [r["custom_id"] for r in output] == ["a", "b", "c"]
    for record in output:
        assert record["response"]["status_code"] == 200
        text = record["response"]["body"]["choices"][0]["text"]
        assert text == expected_text(COUNTER, daemon.last_token("counter", prompts[record["custom_id"]]), 5)
    errors = lines_of(client, done.error_file_id)
    assert errors[0]["error"]["line"] == 4 and errors[0]["error"]["code"] == "invalid_json"
    assert errors[1]["custom_id"] == "d" and errors[1]["response"]["status_code"] == 404
    assert [b.id for b in client.batches.list().data] == [batch.id]
    assert client.batches.cancel(batch.id).status == "completed"  # nothing left to cancel

    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch-000000000000000000000000")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=file_id, endpoint="/v1/images", completion_window="24h")  # type: ignore[arg-type]
    duplicate = upload(client, [completion("x", "the", 2), completion("x", "the war", 2)])
    failed = finished(client, client.batches.create(input_file_id=duplicate, endpoint="/v1/completions",
                                                    completion_window="24h").id)
    assert failed.status == "failed"
    assert failed.errors.data[0].code == "duplicate_custom_id" and "lines 1 and 2" in failed.errors.data[0].message


def test_a_job_survives_a_daemon_killed_mid_run(home: Path, port: int, start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(home, "--http", f"127.0.0.1:{port}", "--parallel", "1")
    client = client_for(port)
    prompts = {f"r{i:02d}": f"the {w}" for i, w in enumerate(["war", "light", "team", "game"] * 4)}
    file_id = upload(client, [completion(cid, p, 400) for cid, p in prompts.items()])
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/completions", completion_window="24h")
    wait_until(lambda: client.batches.retrieve(batch.id).request_counts.completed >= 2, what="two results")
    assert client.batches.retrieve(batch.id).status == "in_progress"
    daemon.stop(signal.SIGKILL)

    restarted = start_daemon(home, "--http", f"127.0.0.1:{port}", "--parallel", "1")
    done = finished(client, batch.id, timeout=240)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (len(prompts), 0)
    output = lines_of(client, done.output_file_id)
    assert [r["custom_id"] for r in output] == sorted(prompts)  # every request once, in input order
    tokens = {p: restarted.last_token("counter", p) for p in set(prompts.values())}
    for record in output:
        text = record["response"]["body"]["choices"][0]["text"]
        assert text == expected_text(COUNTER, tokens[prompts[record["custom_id"]]], 400)


def test_cancelling_keeps_what_finished(home: Path, port: int, start_daemon: Callable[..., DaemonProcess]) -> None:
    start_daemon(home, "--http", f"127.0.0.1:{port}", "--parallel", "1")
    client = client_for(port)
    file_id = upload(client, [completion(f"r{i:02d}", "the war", 400) for i in range(30)])
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/completions", completion_window="24h")
    wait_until(lambda: client.batches.retrieve(batch.id).request_counts.completed >= 1, what="a result")
    assert client.batches.cancel(batch.id).status == "cancelling"
    done = finished(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    output = lines_of(client, done.output_file_id)
    assert 1 <= len(output) < 30
    assert len({r["custom_id"] for r in output}) == len(output)
    assert done.error_file_id is None  # requests cut short by the cancel are not failures
