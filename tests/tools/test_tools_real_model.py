"""Whole tool loops on the real SmolLM2-135M-Instruct, through the official openai and ollama clients and gRPC.

A 135M model rarely decides to call a tool by itself; with ``tool_choice:
required`` (or a named function) the grammar makes it write a valid call
in its template's format, and the daemon hands it back as a typed call.
Ollama's API has no tool_choice, so the ollama loop uses a model whose
template writes calls as bare JSON and a ``format`` schema of a call: the
reply is read as the call it is, as Ollama reads JSON-style tool calls.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import ollama
import openai
import pytest

from ingot.proto.ingot.v1 import common_pb2, inference_pb2, inference_pb2_grpc

from served import Served
from tools_helpers import QUESTION, TIME, WEATHER

MODEL = "smollm2-tools"
RESULT = "22 °C and sunny"


@pytest.fixture(scope="module")
def client(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def ollama_client(served: Served) -> ollama.Client:
    return ollama.Client(host=served.url, timeout=300)


def _assert_weather_call(name: str, arguments: dict[str, Any]) -> None:
    assert name == "get_weather"
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str) and arguments["city"].strip()


def test_openai_tool_loop(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER, TIME],
                                           tool_choice="required", max_tokens=64)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    _assert_weather_call(call.function.name, json.loads(call.function.arguments))

    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": RESULT}]
    answer = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER, TIME], max_tokens=12)
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.choices[0].message.tool_calls is None
    assert answer.choices[0].message.content.strip()


def test_openai_tool_loop_streamed(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER],
                                                 tool_choice="required", max_tokens=64, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    pieces = [d.tool_calls[0] for d in deltas if d.tool_calls]
    # As OpenAI streams a call: id, type and name first with empty arguments, then only arguments.
    head, rest = pieces[0], pieces[1:]
    assert (head.index, head.type, head.function.name, head.function.arguments) == (0, "function", "get_weather", "")
    assert head.id and head.id.startswith("call_")
    assert rest and all(p.index == 0 and p.id is None and p.function.name is None for p in rest)
    arguments = "".join(p.function.arguments for p in rest)
    _assert_weather_call("get_weather", json.loads(arguments))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert not "".join(d.content or "" for d in deltas)

    messages += [{"role": "assistant", "content": None, "tool_calls": [
                     {"id": head.id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}]},
                 {"role": "tool", "tool_call_id": head.id, "content": RESULT}]
    answer = list(client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER], max_tokens=12,
                                                 stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    assert text.strip()
    assert [c.choices[0].finish_reason for c in answer if c.choices][-1] in ("stop", "length")


def test_a_named_function_is_the_one_called_over_grpc(served: Served) -> None:
    request = inference_pb2.ChatRequest(
        model=MODEL,
        messages=[common_pb2.ChatMessage(role="user", content="What time is it in Tokyo?")],
        tools=[common_pb2.Tool(name=t["function"]["name"], description=t["function"]["description"],
                               parameters_json=json.dumps(t["function"]["parameters"])) for t in (WEATHER, TIME)],
        tool_choice=common_pb2.ToolChoice(mode=common_pb2.ToolChoice.FUNCTION, function="get_time"),
        options=common_pb2.Options(num_predict=64),
    )
    with grpc.insecure_channel(f"unix:{served.socket_path}") as channel:
        replies = list(inference_pb2_grpc.InferenceStub(channel).Chat(request, timeout=300))
    calls = [call for reply in replies for call in reply.message.tool_calls]
    assert [c.name for c in calls] == ["get_time"]
    assert json.loads(calls[0].arguments_json)["zone"] in ("UTC", "Europe/Paris", "Asia/Tokyo")
    assert calls[0].id.startswith("call_") and calls[0].index == 0
    assert replies[-1].done and replies[-1].done_reason == "stop"
    assert not "".join(r.message.content for r in replies)


CALL_SCHEMA = {
    "type": "object",
    "properties": {"name": {"enum": ["get_weather"]}, "parameters": WEATHER["function"]["parameters"]},
    "required": ["name", "parameters"],
}


def test_ollama_tool_loop(ollama_client: ollama.Client) -> None:
    # The call streamed, the answer whole: both shapes of /api/chat in one loop.
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    parts = list(ollama_client.chat(model="smollm2-json-tools", messages=messages, tools=[WEATHER, TIME],
                                    format=CALL_SCHEMA, options={"num_predict": 64}, stream=True))
    calls = [call for part in parts for call in (part.message.tool_calls or ())]
    assert len(calls) == 1
    _assert_weather_call(calls[0].function.name, dict(calls[0].function.arguments))
    assert not "".join(part.message.content or "" for part in parts)
    assert parts[-1].done and parts[-1].done_reason == "stop"

    messages += [{"role": "assistant", "content": "", "tool_calls": [calls[0].model_dump(exclude_none=True)]},
                 {"role": "tool", "tool_name": "get_weather", "content": RESULT}]
    # Without tools this time: with them, so small a model only repeats the call it sees in the history.
    answer = ollama_client.chat(model="smollm2-json-tools", messages=messages, options={"num_predict": 12})
    assert answer.message.content.strip() and not answer.message.tool_calls
    assert answer.done_reason in ("stop", "length")


# ---- refusals: before any model is loaded or any token generated --------------------------------

def test_a_model_without_tool_support_is_refused_by_name(client: openai.OpenAI,
                                                          ollama_client: ollama.Client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER])
    assert "smollm2 does not support tools" in caught.value.message
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "tools"
    with pytest.raises(ollama.ResponseError) as refused:
        ollama_client.chat(model="smollm2", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER])
    assert refused.value.status_code == 400 and "does not support tools" in refused.value.error


def test_show_lists_tools_as_a_capability_where_the_template_has_them(ollama_client: ollama.Client) -> None:
    assert "tools" in (ollama_client.show(MODEL).capabilities or [])
    assert "tools" not in (ollama_client.show("smollm2").capabilities or [])


def test_thinking_is_refused_for_a_model_without_thinking_tags(ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as refused:
        ollama_client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], think=True)
    assert refused.value.status_code == 400 and "does not support thinking" in refused.value.error


def _weather(**parameters: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "get_weather", "parameters": parameters}}


@pytest.mark.parametrize(("tools", "extra", "param", "words"), [
    ([WEATHER, WEATHER], {}, "tools[1].function.name", "also the name of tools[0]"),
    ([{"type": "function", "function": {"name": "get weather"}}], {}, "tools[0].function.name",
     "not a valid function name"),
    ([_weather(type="object", properties={"city": {"type": "strng"}})], {},
     "tools[0].function.parameters.properties.city.type", "not a valid JSON Schema"),
    ([_weather(type="object", required="city")], {}, "tools[0].function.parameters.required",
     "not a valid JSON Schema"),
    ([_weather(type="array")], {}, "tools[0].function.parameters.type", "must be \"object\""),
    ([_weather(type="object", properties={"days": {"type": "integer", "minimum": 1}})],
     {"tool_choice": "required"}, "tools[0].function.parameters.properties.days.minimum",
     "cannot be enforced by the grammar"),
    ([WEATHER], {"tool_choice": {"type": "function", "function": {"name": "get_time"}}}, "tool_choice",
     "not one of the tools"),
    ([{"type": "retrieval", "function": {"name": "x"}}], {}, "tools[0].type", "only function tools"),
], ids=["duplicate", "bad-name", "bad-type", "bad-required", "not-object", "unenforceable", "unknown-choice",
        "not-function"])
def test_malformed_tools_are_400_naming_the_field(client: openai.OpenAI, tools: list[Any], extra: dict[str, Any],
                                                  param: str, words: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=tools,
                                       **extra)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param
    assert words in caught.value.message


def test_an_unenforceable_response_format_is_400(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "number", "multipleOf": 3}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                       response_format={"type": "json_schema",
                                                        "json_schema": {"name": "n", "schema": schema}})
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "format.properties.n.multipleOf"
