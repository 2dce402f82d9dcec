"""The official `openai` Python client against the daemon's OpenAI-compatible endpoints.

Answers are checked against the same request made over gRPC: one code path
means the same text, token for token (the counting model decodes greedily).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import httpx
import openai
import pytest

from ingot.daemon.http.openai_schema import ChatCompletionChunk, CompletionChunk

from http_helpers import MAX_QUEUE, MODEL, WAIT_S, Served, grpc_chat, grpc_generate


@pytest.fixture
def client(served: Served) -> Iterator[openai.OpenAI]:
    # max_retries=0: a 429 or 503 must reach the test, not be retried away.
    with openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0, timeout=WAIT_S) as c:
        yield c


def test_chat_completion_matches_grpc(client: openai.OpenAI, served: Served) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "count with me"}], max_tokens=6
    )
    expected = grpc_chat(served.socket_path, MODEL, "count with me", 6)
    assert expected
    assert reply.choices[0].message.content == expected
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "length"  # a counting model never stops on its own
    assert reply.usage is not None and reply.usage.completion_tokens == 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 6
    assert reply.model == MODEL


def test_chat_stream_ends_with_usage_and_done(client: openai.OpenAI, served: Served) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "count with me"}],
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == grpc_chat(served.socket_path, MODEL, "count with me", 5)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens == 5
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_wire_format(served: Served) -> None:
    """Raw SSE: every event parses as the documented chunk, and the stream ends with `data: [DONE]`."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            events = [line for line in reply.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    for event in events[:-1]:
        assert event.startswith("data: ")
        chunk = ChatCompletionChunk.model_validate_json(event[len("data: "):])
        assert chunk.usage is None  # not asked for


def test_completion_is_raw_text_continuation(client: openai.OpenAI, served: Served) -> None:
    reply = client.completions.create(model=MODEL, prompt="the of and", max_tokens=4)
    assert reply.choices[0].text == grpc_generate(served.socket_path, MODEL, "the of and", 4, raw=True)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_completion_stream_and_several_prompts(client: openai.OpenAI, served: Served) -> None:
    stream = client.completions.create(
        model=MODEL, prompt="the of", max_tokens=3, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == grpc_generate(
        served.socket_path, MODEL, "the of", 3, raw=True
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    for chunk in chunks:
        CompletionChunk.model_validate(chunk.model_dump())
    both = client.completions.create(model=MODEL, prompt=["the of", "school time"], max_tokens=2)
    assert [c.index for c in both.choices] == [0, 1]
    assert both.choices[1].text == grpc_generate(served.socket_path, MODEL, "school time", 2, raw=True)
    assert both.usage is not None and both.usage.completion_tokens == 4


def test_embeddings_base64_and_float_agree(client: openai.OpenAI) -> None:
    # The client asks for base64 by default and decodes it itself.
    decoded = client.embeddings.create(model=MODEL, input=["the of", "school time"])
    floats = client.embeddings.create(model=MODEL, input=["the of", "school time"], encoding_format="float")
    assert [d.index for d in decoded.data] == [0, 1]
    for a, b in zip(decoded.data, floats.data, strict=True):
        assert len(a.embedding) == len(b.embedding) > 0
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
        assert sum(v * v for v in b.embedding) == pytest.approx(1.0, abs=1e-4)  # unit length by default
    assert decoded.usage.prompt_tokens > 0


def test_embeddings_dimensions_and_raw_base64(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as http:
        full = http.post("/v1/embeddings", json={"model": MODEL, "input": "the of", "encoding_format": "float"})
        cut = http.post(
            "/v1/embeddings",
            json={"model": MODEL, "input": "the of", "dimensions": 8, "encoding_format": "base64"},
        )
    assert full.status_code == cut.status_code == 200
    raw = base64.b64decode(cut.json()["data"][0]["embedding"])
    values = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(values) == 8
    head = full.json()["data"][0]["embedding"][:8]
    norm = sum(v * v for v in head) ** 0.5
    if norm:
        assert list(values) == pytest.approx([v / norm for v in head], abs=1e-5)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL and model.owned_by == "library" and model.created > 0
    assert client.models.retrieve(f"{MODEL}:latest").id == MODEL
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("no-such-model")
    assert raised.value.status_code == 404


def test_unknown_model_is_404_in_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["code"] == "model_not_found" and body["type"] == "invalid_request_error"
    assert "no-such-model" in body["message"]


def test_ollama_options_as_extra_fields(client: openai.OpenAI, served: Served) -> None:
    """num_ctx & co., which Ollama's own OpenAI endpoint cannot take, work top-level and in `options`."""
    top = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body={"num_predict": 3}
    )
    assert top.usage is not None and top.usage.completion_tokens == 3
    nested = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=9,
        extra_body={"options": {"num_predict": 2}},
    )
    assert nested.usage is not None and nested.usage.completion_tokens == 2  # `options` wins over max_tokens
    # A load-time option: the daemon reloads the model with it (and back again below).
    before = {s.name: s.load_count for s in served.daemon.scheduler.running()}
    smaller = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2, extra_body={"num_ctx": 512}
    )
    assert smaller.usage is not None and smaller.usage.completion_tokens == 2
    (snapshot,) = [s for s in served.daemon.scheduler.running() if s.name.endswith(f"/{MODEL}:latest")]
    assert snapshot.context_length == 512
    assert snapshot.load_count == before.get(snapshot.name, 0) + 1


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"num_ctx": "lots"}, "num_ctx"),
        ({"options": {"num_ctx": 0}}, "options.num_ctx"),
        ({"options": {"temprature": 0.5}}, "options.temprature"),
        ({"options": {"top_p": 7}}, "options.top_p"),
        ({"keep_alive": "soon"}, "keep_alive"),
        ({"n": 2}, "n"),
    ],
)
def test_bad_option_is_400_naming_it(client: openai.OpenAI, extra: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body=extra)
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["param"] == param and body["type"] == "invalid_request_error"
    assert param.split(".")[-1] in body["message"]


def test_bad_max_tokens_names_the_openai_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=-5)
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "max_tokens"


def test_malformed_body_is_400_not_422(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as http:
        missing = http.post("/v1/chat/completions", json={"model": MODEL})
        broken = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    for reply in (missing, broken):
        assert reply.status_code == 400
        assert reply.json()["error"]["type"] == "invalid_request_error"
    assert missing.json()["error"]["param"] == "messages"


def test_queue_full_is_429(client: openai.OpenAI, served: Served) -> None:
    """MAX_QUEUE requests hold the model's queue; one more is refused at once with 429."""
    streams = []
    try:
        for _ in range(MAX_QUEUE):
            stream = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "go"}], max_tokens=100000, stream=True
            )
            next(iter(stream))  # its first token is out: it holds a place in the queue
            streams.append(stream)
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "one more"}])
        assert raised.value.status_code == 429
        assert raised.value.response.headers["retry-after"] == "1"
        assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "queue_full"
    finally:
        for stream in streams:
            stream.close()
    assert served.daemon.scheduler.drain(WAIT_S)


def test_text_parts_and_developer_role(client: openai.OpenAI, served: Served) -> None:
    content = [{"type": "text", "text": "count with"}, {"type": "text", "text": " me"}]
    parts = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=4  # type: ignore[list-item]
    )
    assert parts.choices[0].message.content == grpc_chat(served.socket_path, MODEL, "count with me", 4)
    with pytest.raises(openai.BadRequestError) as image:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}],
        )
    assert isinstance(image.value.body, dict) and image.value.body["param"] == "messages[0].content[0]"
    developer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
        max_tokens=1,
    )
    system = client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        max_tokens=1,
    )
    assert developer.usage is not None and system.usage is not None
    assert developer.usage.prompt_tokens == system.usage.prompt_tokens


def test_response_format_errors_are_400(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as missing:
        client.chat.completions.create(
            model=MODEL, messages=messages, response_format={"type": "json_schema", "json_schema": {"name": "x"}}
        )
    assert isinstance(missing.value.body, dict) and missing.value.body["param"] == "response_format.json_schema"
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.chat.completions.create(model=MODEL, messages=messages, tools=[
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ])
    assert isinstance(unsupported.value.body, dict) and unsupported.value.body["param"] == "tools"
