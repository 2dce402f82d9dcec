"""`ingot batch` against a real daemon: answers, bad lines, duplicates, fail-fast, and resuming after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batch_helpers import COUNTER
from daemon_helpers import DaemonProcess, expected_text, wait_until


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def batch(daemon: DaemonProcess, *args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingot.cli.main", "batch", *map(str, args)],
        env=daemon.env(), capture_output=True, text=True, timeout=300, **kwargs,
    )


def completion(custom_id: str, prompt: str, n: int) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/completions",
            "body": {"model": "counter", "prompt": prompt, "max_tokens": n}}


def test_a_mixed_file_answers_every_good_line_and_reports_each_bad_one(
    tmp_path: Path, home: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    daemon = start_daemon(home)
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"custom_id": "chat", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "counter", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}},
        completion("text", "the war", 4),
        "this is not JSON",
        {"custom_id": "emb", "method": "POST", "url": "/v1/embeddings", "body": {"model": "counter", "input": ["a", "b"]}},
        {"custom_id": "nourl", "method": "POST", "url": "/v1/moderations", "body": {}},
        {"custom_id": "missing", "method": "POST", "url": "/v1/completions",
         "body": {"model": "no-such-model", "prompt": "x", "max_tokens": 2}},
        {"custom_id": "badbody", "method": "POST", "url": "/v1/completions", "body": {"model": "counter"}},
        {"prompt": "the light", "max_tokens": 3},  # plain, with --model
    ])
    done = batch(daemon, source, "--model", "counter", "--endpoint", "/v1/completions", "--json")
    assert done.returncode == 1, done.stderr  # some requests failed
    summary = json.loads(done.stdout)
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["bad_lines"]) == (8, 4, 4, 3)
    output = read_jsonl(tmp_path / "in.output.jsonl")
    assert [r["custom_id"] for r in output] == ["chat", "text", "emb", "line-8"]  # input order
    by_id = {r["custom_id"]: r for r in output}
    assert all(r["response"]["status_code"] == 200 and r["error"] is None for r in output)
    chat = by_id["chat"]["response"]["body"]
    assert chat["object"] == "chat.completion" and chat["usage"]["completion_tokens"] == 5
    text = by_id["text"]["response"]["body"]["choices"][0]["text"]
    assert text == expected_text(COUNTER, daemon.last_token("counter", "the war"), 4)
    assert len(by_id["emb"]["response"]["body"]["data"]) == 2
    assert by_id["line-8"]["response"]["body"]["choices"][0]["text"] == expected_text(
        COUNTER, daemon.last_token("counter", "the light"), 3
    )
    errors = read_jsonl(tmp_path / "in.errors.jsonl")
    assert [(r["custom_id"], (r["error"] or {}).get("line")) for r in errors] == [
        (None, 3), ("nourl", 5), ("missing", None), ("badbody", 7)
    ]
    assert errors[0]["error"]["message"].startswith(f"{source}:3: not JSON")
    assert errors[2]["response"]["status_code"] == 404
    assert "no-such-model" in errors[2]["response"]["body"]["error"]["message"]
    assert errors[3]["error"]["param"] == "body.prompt"

    # Run again: everything answered (and the final 404) is skipped; bad lines are found again, not doubled.
    again = batch(daemon, source, "--model", "counter", "--endpoint", "/v1/completions", "--json")
    summary = json.loads(again.stdout)
    assert (summary["skipped"], summary["succeeded"], summary["bad_lines"]) == (5, 0, 3)
    assert read_jsonl(tmp_path / "in.output.jsonl") == output
    assert len(read_jsonl(tmp_path / "in.errors.jsonl")) == 4


def test_duplicate_custom_ids_stop_the_run_before_anything_runs(
    tmp_path: Path, home: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    daemon = start_daemon(home)
    source = write_jsonl(tmp_path / "dup.jsonl", [completion("a", "x", 2), completion("b", "y", 2), completion("a", "z", 2)])
    done = batch(daemon, source)
    assert done.returncode == 1
    assert "duplicate custom_id 'a' on lines 1 and 3" in done.stderr
    assert not (tmp_path / "dup.output.jsonl").exists()


def test_fail_fast_stops_at_a_bad_line_before_any_request(
    tmp_path: Path, home: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    daemon = start_daemon(home)
    source = write_jsonl(tmp_path / "ff.jsonl", [completion("a", "x", 2), "{", completion("b", "y", 2)])
    done = batch(daemon, source, "--fail-fast", "--json")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert (summary["stopped"], summary["succeeded"]) == ("fail-fast", 0)
    assert read_jsonl(tmp_path / "ff.output.jsonl") == []
    assert [r["error"]["line"] for r in read_jsonl(tmp_path / "ff.errors.jsonl")] == [2]


def test_a_run_killed_mid_way_resumes_to_a_complete_output_without_duplicates(
    tmp_path: Path, home: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    daemon = start_daemon(home, "--parallel", "2")
    prompts = {f"r{i:02d}": f"the {word}" for i, word in enumerate(["war", "light", "team", "game", "music"] * 6)}
    source = write_jsonl(tmp_path / "big.jsonl", [completion(cid, prompt, 60) for cid, prompt in prompts.items()])
    output = tmp_path / "big.output.jsonl"
    first = subprocess.Popen(
        [sys.executable, "-m", "ingot.cli.main", "batch", str(source), "--order", "completion"],
        env=daemon.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: output.exists() and output.read_bytes().count(b"\n") >= 5, what="five results written")
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    before = output.read_bytes()
    assert 5 <= before.count(b"\n") < len(prompts)
    # What a kill in the middle of a write leaves behind: half a line.
    with open(output, "ab") as handle:
        handle.write(b'{"id": "batch_req_torn", "custom_id": "r29", "respo')

    done = batch(daemon, source, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["skipped"] == before.count(b"\n")
    assert summary["succeeded"] == len(prompts) - summary["skipped"]
    records = read_jsonl(output)
    assert [r["custom_id"] for r in records] == sorted(prompts)  # complete, unique, in input order
    for record in records:
        text = record["response"]["body"]["choices"][0]["text"]
        assert text == expected_text(COUNTER, daemon.last_token("counter", prompts[record["custom_id"]]), 60)
    # Every line the killed run wrote is still there, byte for byte.
    written = set(output.read_bytes().splitlines())
    assert all(line in written for line in before.splitlines())
