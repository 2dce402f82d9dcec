"""The official `ollama` Python client against the daemon's Ollama-compatible endpoints."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import ollama
import pytest

from ingot.daemon.http.ollama_schema import GenerateResponse

from http_helpers import MODEL, NUM_CTX, WAIT_S, Served, grpc_chat, grpc_generate, ndjson


@pytest.fixture
def client(served: Served) -> Iterator[ollama.Client]:
    with ollama.Client(host=served.url, timeout=WAIT_S) as c:
        yield c


def test_generate_matches_grpc_with_final_metrics(client: ollama.Client, served: Served) -> None:
    reply = client.generate(model=MODEL, prompt="count with me", options={"num_predict": 5})
    assert reply.response == grpc_generate(served.socket_path, MODEL, "count with me", 5, raw=False)
    assert reply.done and reply.done_reason == "length"
    assert reply.eval_count == 5 and reply.prompt_eval_count and reply.prompt_eval_count > 0
    assert reply.total_duration and reply.total_duration >= (reply.eval_duration or 0) > 0
    assert reply.prompt_eval_duration is not None and reply.load_duration is not None
    assert reply.created_at and reply.created_at.endswith("Z")


def test_generate_stream_is_ndjson(client: ollama.Client, served: Served) -> None:
    parts = list(client.generate(model=MODEL, prompt="count with me", options={"num_predict": 4}, stream=True))
    assert "".join(p.response or "" for p in parts) == grpc_generate(
        served.socket_path, MODEL, "count with me", 4, raw=False
    )
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    final = parts[-1]
    assert final.done_reason == "length" and final.eval_count == 4
    assert all(p.eval_count is None for p in parts[:-1])


def test_generate_raw_and_system_reach_the_prompt(client: ollama.Client, served: Served) -> None:
    raw = client.generate(model=MODEL, prompt="the of and", raw=True, options={"num_predict": 3})
    assert raw.response == grpc_generate(served.socket_path, MODEL, "the of and", 3, raw=True)
    templated = client.generate(model=MODEL, prompt="the of and", options={"num_predict": 3})
    with_system = client.generate(model=MODEL, prompt="the of and", system="be brief", options={"num_predict": 3})
    assert (with_system.prompt_eval_count or 0) > (templated.prompt_eval_count or 0) > (raw.prompt_eval_count or 0)


def test_chat_matches_grpc(client: ollama.Client, served: Served) -> None:
    messages = [{"role": "user", "content": "count with me"}]
    reply = client.chat(model=MODEL, messages=messages, options={"num_predict": 6})
    assert reply.message.role == "assistant"
    assert reply.message.content == grpc_chat(served.socket_path, MODEL, "count with me", 6)
    assert reply.done_reason == "length" and reply.eval_count == 6
    parts = list(client.chat(
        model=MODEL, messages=[{"role": "user", "content": "count with me"}], options={"num_predict": 6}, stream=True
    ))
    assert "".join(p.message.content or "" for p in parts) == reply.message.content
    assert parts[-1].done and parts[-1].eval_count == 6


def test_load_and_unload_with_empty_requests(client: ollama.Client, served: Served) -> None:
    loaded = client.generate(model=MODEL)
    assert loaded.done and loaded.done_reason == "load" and loaded.response == ""
    assert any(m.model == f"{MODEL}:latest" for m in client.ps().models)
    unloaded = client.chat(model=MODEL, messages=[], keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert served.daemon.scheduler.drain(WAIT_S)


def test_list_show_ps(client: ollama.Client) -> None:
    listed = {m.model: m for m in client.list().models}
    entry = listed[f"{MODEL}:latest"]
    assert entry.size and entry.size > 0 and entry.digest and len(entry.digest) == 64
    assert entry.details and entry.details.format == "gguf" and entry.details.family == "llama"
    assert entry.modified_at is not None

    shown = client.show(MODEL)
    assert shown.modelinfo is not None and shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["tokenizer.ggml.tokens"] == []  # the vocabulary is left out, as Ollama does
    assert "im_start" in (shown.template or "")  # the GGUF's chat template
    assert shown.parameters is not None and "num_ctx" in shown.parameters and str(NUM_CTX) in shown.parameters
    assert shown.modelfile and "PARAMETER temperature" in shown.modelfile
    assert shown.capabilities and "completion" in shown.capabilities

    client.generate(model=MODEL, prompt="hi", options={"num_predict": 1})
    (running,) = [m for m in client.ps().models if m.model == f"{MODEL}:latest"]
    assert running.context_length == NUM_CTX and running.size and running.size > 0
    assert running.digest == entry.digest and running.expires_at is not None


def test_embed(client: ollama.Client, served: Served) -> None:
    single = client.embed(model=MODEL, input="the of")
    double = client.embed(model=MODEL, input=["the of", "school time"])
    assert len(single.embeddings) == 1 and len(double.embeddings) == 2
    assert single.embeddings[0] == pytest.approx(double.embeddings[0], abs=1e-6)
    assert sum(v * v for v in double.embeddings[1]) == pytest.approx(1.0, abs=1e-4)
    assert double.prompt_eval_count and double.prompt_eval_count > single.prompt_eval_count  # type: ignore[operator]
    cut = client.embed(model=MODEL, input="the of", dimensions=4)
    assert len(cut.embeddings[0]) == 4
    legacy = client.embeddings(model=MODEL, prompt="the of")
    assert len(legacy.embedding) == len(single.embeddings[0])


def test_errors_in_ollama_shape(client: ollama.Client, served: Served) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        client.generate(model="no-such-model", prompt="hi")
    assert missing.value.status_code == 404 and "no-such-model" in missing.value.error
    with pytest.raises(ollama.ResponseError) as bad:
        client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], options={"num_ctx": -3})
    assert bad.value.status_code == 400 and "num_ctx" in bad.value.error
    with pytest.raises(ollama.ResponseError) as unknown:
        client.generate(model=MODEL, prompt="hi", options={"nm_predict": 3})
    assert unknown.value.status_code == 400 and "nm_predict" in unknown.value.error
    with pytest.raises(ollama.ResponseError) as role:
        client.chat(model=MODEL, messages=[{"role": "wizard", "content": "hi"}])
    assert role.value.status_code == 400 and "wizard" in role.value.error
    # Options Ollama dropped long ago are accepted and ignored, as Ollama does.
    old = client.generate(model=MODEL, prompt="hi", options={"mirostat": 1, "num_predict": 1})
    assert old.eval_count == 1


def test_version_and_root(client: ollama.Client, served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as http:
        version = http.get("/api/version")
        root = http.get("/")
        head = http.head("/")
    assert version.status_code == 200 and version.json()["version"]
    assert root.status_code == head.status_code == 200 and root.text == "ingot is running"


def test_generate_wire_format(served: Served) -> None:
    body = {"model": MODEL, "prompt": "hi", "options": {"num_predict": 3}}
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as http:
        with http.stream("POST", "/api/generate", json=body) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"] == "application/x-ndjson"
            lines = list(ndjson(reply.iter_lines()))
    for line in lines:
        GenerateResponse.model_validate(line)
    final = lines[-1]
    for key in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
                "eval_duration", "done_reason"):
        assert key in final, key


def test_copy_push_delete_pull_through_a_registry(client: ollama.Client, served: Served, registry: object) -> None:
    """copy -> push -> delete -> pull, all with the official client, against a real registry on loopback."""
    remote = f"{registry.host}/http-tests/{MODEL}:{secrets.token_hex(4)}"  # type: ignore[attr-defined]
    client.copy(MODEL, remote)
    assert remote in {m.model for m in client.list().models}
    pushed = client.push(remote, insecure=True)
    assert pushed.status == "success"
    assert client.delete(remote).status == "success"
    assert remote not in {m.model for m in client.list().models}
    progress = list(client.pull(remote, insecure=True, stream=True))
    assert progress[-1].status == "success"
    assert any(p.digest and p.total for p in progress)  # per-layer byte progress
    assert remote in {m.model for m in client.list().models}
    reply = client.generate(model=remote, prompt="count with me", options={"num_predict": 3})
    assert reply.response == client.generate(model=MODEL, prompt="count with me", options={"num_predict": 3}).response
    client.delete(remote)
    with pytest.raises(ollama.ResponseError) as gone:
        client.delete(remote)
    assert gone.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as absent:
        client.pull(f"{registry.host}/http-tests/never-pushed:1", insecure=True)  # type: ignore[attr-defined]
    assert absent.value.status_code == 404
