"""Greedy answers of the real model through the daemon equal llama-cpp-python's in-process, over every API.

The reference is `Llama.create_completion` on the prompt ingot renders (the
GGUF's own template), temperature 0. Each API is asked streamed and not; the
streamed text, joined, must equal the whole reply, and no special token may
leak into what the user reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import httpx
import ollama
import openai
import pytest

from ingot.daemon.prompt import PromptSource
from ingot.modelfile.template import render_prompt
from ingot.proto.ingot.v1 import common_pb2, inference_pb2
from ingot.registry.gguf_info import inspect_gguf
from ingot.registry.home import IngotHome
from ingot.registry.package import load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store

from real_helpers import ANSWER_TOKENS, BOS, EOS, MODEL, NUM_CTX, SHORT_ANSWERS, SPECIALS

GREEDY_PROMPTS = (*SHORT_ANSWERS, "Hi! Who are you?", "Explain in one paragraph why the sky is blue.")


@pytest.fixture(scope="module")
def render(real_home: Path, smollm2: Path) -> Any:
    package = load_package(Store.open(IngotHome(real_home)), Reference.parse(MODEL))
    source = PromptSource.of(package, gguf_chat_template=inspect_gguf(smollm2).chat_template, bos_token=BOS,
                             eos_token=EOS)

    def rendered(question: str) -> str:
        return render_prompt(source.template, messages=[{"role": "user", "content": question}],
                             gguf_chat_template=source.gguf_chat_template, bos_token=BOS, eos_token=EOS)

    return rendered


def in_process(reference: Any, prompt: str, max_tokens: int) -> tuple[str, str, int]:
    reply = reference.create_completion(prompt, temperature=0.0, max_tokens=max_tokens)
    choice = reply["choices"][0]
    return choice["text"], choice["finish_reason"], reply["usage"]["completion_tokens"]


def grpc_chat(served: Any, question: str, num_predict: int) -> tuple[list[str], inference_pb2.ChatResponse]:
    request = inference_pb2.ChatRequest(
        model=MODEL,
        messages=[common_pb2.ChatMessage(role="user", content=question)],
        options=common_pb2.Options(temperature=0.0, num_predict=num_predict),
    )
    chunks = list(served.daemon.inference.Chat(request, timeout=120))
    assert chunks and chunks[-1].done
    return [c.message.content for c in chunks], chunks[-1]


def assert_clean(text: str) -> None:
    assert text.strip(), "an empty answer"
    assert "\ufffd" not in text
    for special in SPECIALS:
        assert special not in text


def test_special_tokens_in_the_prompt_are_tokenized_as_specials(served: Any, render: Any, reference: Any) -> None:
    prompt = render("What is 2+2?")
    ours = served.daemon.inference.Tokenize(
        inference_pb2.TokenizeRequest(model=MODEL, content=prompt, add_bos=False), timeout=120
    ).tokens
    theirs = reference.tokenize(prompt.encode(), add_bos=False, special=True)
    assert list(ours) == theirs
    assert theirs[0] == reference.token_bos()  # <|im_start|> is one token, not seven


@pytest.mark.parametrize("question", GREEDY_PROMPTS)
def test_greedy_chat_over_grpc_equals_llama_cpp_python(served: Any, render: Any, reference: Any, question: str) -> None:
    expected, finish, count = in_process(reference, render(question), ANSWER_TOKENS)
    pieces, final = grpc_chat(served, question, ANSWER_TOKENS)
    assert "".join(pieces) == expected
    assert (final.done_reason, final.metrics.eval_count) == (finish, count)
    assert_clean(expected)


@pytest.mark.parametrize("question", SHORT_ANSWERS)
def test_end_of_turn_ends_the_answer_in_every_api(served: Any, render: Any, reference: Any, question: str) -> None:
    expected, finish, _ = in_process(reference, render(question), ANSWER_TOKENS)
    assert finish == "stop", f"the reference itself did not stop: {expected!r}"

    # OpenAI, through the official client, whole and streamed.
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused", timeout=120)
    messages = [{"role": "user", "content": question}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=ANSWER_TOKENS)
    assert (whole.choices[0].message.content, whole.choices[0].finish_reason) == (expected, "stop")
    stream = client.chat.completions.create(model=MODEL, messages=messages, temperature=0,
                                            max_tokens=ANSWER_TOKENS, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]

    # Ollama, through the official client, whole and streamed.
    olla = ollama.Client(host=served.url, timeout=120)
    options = {"temperature": 0, "num_predict": ANSWER_TOKENS}
    reply = olla.chat(model=MODEL, messages=messages, options=options)
    assert (reply.message.content, reply.done_reason) == (expected, "stop")
    parts = list(olla.chat(model=MODEL, messages=messages, options=options, stream=True))
    assert "".join(p.message.content for p in parts) == expected
    assert parts[-1].done and parts[-1].done_reason == "stop"

    # gRPC, streamed (its only form), and the raw completions endpoint on the rendered prompt.
    pieces, final = grpc_chat(served, question, ANSWER_TOKENS)
    assert ("".join(pieces), final.done_reason) == (expected, "stop")
    raw = client.completions.create(model=MODEL, prompt=render(question), temperature=0, max_tokens=ANSWER_TOKENS)
    assert (raw.choices[0].text, raw.choices[0].finish_reason) == (expected, "stop")
    assert_clean(expected)


def emoji_answer(reference: Any, prompt: str) -> list[int]:
    tokens = reference.tokenize(prompt.encode(), add_bos=False, special=True)
    out: list[int] = []
    for token in reference.generate(tokens, temp=0.0):
        if reference.token_eos() == token or len(out) >= 12:
            break
        out.append(token)
    reference.reset()
    return out


def test_a_limit_inside_a_character_finishes_it_as_llama_cpp_python_does(
    served: Any, render: Any, reference: Any
) -> None:
    question = "Reply with three emojis that describe happiness."
    prompt = render(question)
    tokens = emoji_answer(reference, prompt)
    pieces = [reference.detokenize([t]) for t in tokens]
    # An emoji is several byte tokens in SmolLM2's vocab: the first of them alone is no character.
    assert pieces[0] and pieces[0][0] >= 0xF0, f"the model did not start with an emoji: {pieces}"
    for limit in (1, 2, 4):
        expected, finish, count = in_process(reference, prompt, limit)
        streamed, final = grpc_chat(served, question, limit)
        assert "".join(streamed) == expected
        assert (final.done_reason, final.metrics.eval_count) == (finish, count) == ("length", count)
        assert count > limit  # the character was finished past the limit, not cut
        for piece in streamed:
            assert "\ufffd" not in piece
        assert expected and "\ufffd" not in expected


def test_mid_stream_characters_arrive_whole(served: Any) -> None:
    question = "Translate 'hello' to Japanese."
    pieces, final = grpc_chat(served, question, 24)
    text = "".join(pieces)
    assert any(ord(ch) > 0x3000 for ch in text), f"no CJK text to check: {text!r}"
    assert all("\ufffd" not in piece for piece in pieces)
    # Each chunk is whole characters: its UTF-8 bytes decode on their own.
    for piece in pieces:
        piece.encode("utf-8").decode("utf-8", errors="strict")
    assert final.done_reason in ("length", "stop")


def test_embeddings_equal_llama_cpp_python_mean_pooling(served: Any, smollm2: Path) -> None:
    """Each text alone, and several in one request, equal llama-cpp-python's `embed` of the same inputs.

    Several inputs share one llama_decode in both (llama-cpp-python packs a list the same way), and
    llama.cpp's batched kernels are not batch-invariant: a text embedded beside another differs from
    the same text alone by ~1e-3 here, so each side is compared with its own kind.
    """
    import llama_cpp
    import numpy as np

    texts = ["The capital of France is Paris.", "Embeddings of a real model"]

    def http_embed(inputs: list[str] | str) -> list[Any]:
        reply = httpx.post(served.url + "/v1/embeddings", json={"model": MODEL, "input": inputs}, timeout=120)
        assert reply.status_code == 200, reply.text
        return [np.array(item["embedding"], dtype=np.float64) for item in reply.json()["data"]]

    alone = [http_embed(text)[0] for text in texts]
    together = http_embed(texts)
    grpc_reply = served.daemon.inference.Embed(inference_pb2.EmbedRequest(model=MODEL, input=texts), timeout=120)
    via_grpc = [np.array(e.values, dtype=np.float64) for e in grpc_reply.embeddings]

    # llama-cpp-python's defaults, flash attention off included (with it on, llama.cpp's CPU kernel
    # differs by ~4e-3 here: ingot's embeddings once did).
    embedder = llama_cpp.Llama(str(smollm2), embedding=True, n_ctx=NUM_CTX, n_batch=NUM_CTX, n_ubatch=NUM_CTX,
                               n_threads=2, verbose=False, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN)
    try:
        reference_alone = [np.array(embedder.embed(text, normalize=True), dtype=np.float64) for text in texts]
        reference_together = [np.array(v, dtype=np.float64) for v in embedder.embed(texts, normalize=True)]
    finally:
        embedder.close()
    for ours, theirs in [*zip(alone, reference_alone), *zip(together, reference_together),
                         *zip(via_grpc, reference_together)]:
        assert ours.shape == (576,)
        assert abs(np.linalg.norm(ours) - 1.0) < 1e-5
        assert np.max(np.abs(ours - theirs)) < 1e-4
    assert float(alone[0] @ alone[1]) < 0.999  # two texts, two directions
