"""The ingot.v1 API against a real daemon and real runners on counting models."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from daemon_helpers import COUNTING, OTHER, DaemonProcess, expected_text, make_package, wait_until
from grpc_health.v1 import health_pb2

from ingot.proto.ingot.v1 import common_pb2, inference_pb2, models_pb2, runtime_pb2


def _rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = call()  # type: ignore[operator]
        if hasattr(result, "__next__"):
            list(result)  # a stream fails when read
    return caught.value


def test_health_reports_every_service(daemon: DaemonProcess) -> None:
    for service in ("", "ingot.v1.Inference", "ingot.v1.Models", "ingot.v1.Runtime"):
        reply = daemon.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def test_socket_is_private(daemon: DaemonProcess) -> None:
    assert daemon.socket.stat().st_mode & 0o777 == 0o600


def test_generate_streams_the_exact_continuation_with_metrics(daemon: DaemonProcess) -> None:
    last = daemon.last_token("counter", "the")
    text, final = daemon.generate("counter", "the", num_predict=12)
    assert text == expected_text(COUNTING, last, 12)
    assert final.done_reason == "length"
    metrics = final.metrics
    assert metrics.eval_count == 12
    assert metrics.prompt_eval_count == 2  # BOS + "▁the"
    assert 0 < metrics.time_to_first_token_ns <= metrics.total_duration_ns
    assert metrics.eval_duration_ns > 0


def test_stop_option_ends_the_reply(daemon: DaemonProcess) -> None:
    last = daemon.last_token("counter", "the")
    full = expected_text(COUNTING, last, 8)
    stop_at = full.split(" ")[3]  # the third generated word
    text, final = daemon.generate("counter", "the", num_predict=8, stop=[stop_at])
    assert final.done_reason == "stop"
    assert text == full[: full.index(stop_at)]


def test_chat_uses_the_template_system_and_messages(daemon: DaemonProcess, counting_gguf: Path) -> None:
    make_package(
        daemon.home,
        "templated",
        counting_gguf,
        'TEMPLATE """{{ range .Messages }}<{{ .Role }}>{{ .Content }}{{ end }}"""\n'
        "SYSTEM the\nMESSAGE user of\nMESSAGE assistant and\nPARAMETER temperature 0\n",
    )
    request = inference_pb2.ChatRequest(
        model="templated",
        messages=[common_pb2.ChatMessage(role="user", content="was")],
        options=common_pb2.Options(num_predict=4),
    )
    chunks = list(daemon.inference.Chat(request, timeout=60))
    final = chunks[-1]
    assert final.done and final.message.role == "assistant"
    rendered = "<system>the<user>of<assistant>and<user>was"
    tokens = daemon.inference.Tokenize(inference_pb2.TokenizeRequest(model="templated", content=rendered)).tokens
    assert final.metrics.prompt_eval_count == len(tokens)
    text = "".join(c.message.content for c in chunks)
    assert text == expected_text(COUNTING, tokens[-1], 4)
    assert final.metrics.truncated_tokens == 0


def test_chat_drops_oldest_turns_to_fit_and_reports_it(daemon: DaemonProcess) -> None:
    filler = " ".join(["the of and"] * 20)  # ~60 tokens per turn
    turns = [common_pb2.ChatMessage(role="system", content="be brief")]
    for _ in range(6):
        turns += [common_pb2.ChatMessage(role="user", content=filler),
                  common_pb2.ChatMessage(role="assistant", content=filler)]
    turns.append(common_pb2.ChatMessage(role="user", content="was"))
    request = inference_pb2.ChatRequest(
        model="counter", messages=turns, options=common_pb2.Options(num_ctx=256, num_predict=8)
    )
    final = list(daemon.inference.Chat(request, timeout=60))[-1]
    assert final.done and final.metrics.eval_count == 8
    assert final.metrics.truncated_tokens > 0
    assert final.metrics.prompt_eval_count + 8 <= 256
    # The system message survives the cut.
    full = "".join(t.content for t in turns)
    assert final.metrics.prompt_eval_count < len(
        daemon.inference.Tokenize(inference_pb2.TokenizeRequest(model="counter", content=full)).tokens
    )


def test_generate_over_the_context_is_one_clear_error(daemon: DaemonProcess) -> None:
    error = _rpc_error(lambda: daemon.inference.Generate(inference_pb2.GenerateRequest(
        model="counter", prompt="the " * 400, options=common_pb2.Options(num_ctx=128)), timeout=60))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "context window is 128" in error.details()

    # Embed cuts long inputs by default (and says how much), or refuses them when asked to.
    small = common_pb2.Options(num_ctx=128)
    cut = daemon.inference.Embed(inference_pb2.EmbedRequest(model="counter", input=["the " * 400], options=small),
                                 timeout=60)
    assert len(cut.embeddings[0].values) == COUNTING.n_embd and cut.metrics.truncated_tokens > 0
    refused = _rpc_error(lambda: daemon.inference.Embed(inference_pb2.EmbedRequest(
        model="counter", input=["the " * 400], options=small, truncate=False), timeout=60))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_errors_carry_the_right_code_and_a_hint(daemon: DaemonProcess) -> None:
    missing = _rpc_error(lambda: daemon.inference.Generate(inference_pb2.GenerateRequest(model="nope", prompt="x")))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert "ingot pull" in missing.details()

    bad_option = _rpc_error(lambda: daemon.inference.Generate(inference_pb2.GenerateRequest(
        model="counter", prompt="x", options=common_pb2.Options(top_p=3.0))))
    assert bad_option.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "top_p" in bad_option.details()

    bad_keep_alive = _rpc_error(lambda: daemon.inference.Generate(inference_pb2.GenerateRequest(
        model="counter", prompt="x", keep_alive="soon")))
    assert bad_keep_alive.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "keep_alive" in bad_keep_alive.details()

    bad_format = _rpc_error(lambda: daemon.inference.Generate(inference_pb2.GenerateRequest(
        model="counter", prompt="x", format="{not json")))
    assert bad_format.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "format" in bad_format.details()

    bad_name = _rpc_error(lambda: daemon.inference.Generate(inference_pb2.GenerateRequest(model="Bad Name!")))
    assert bad_name.code() == grpc.StatusCode.INVALID_ARGUMENT

    bad_role = _rpc_error(lambda: daemon.inference.Chat(inference_pb2.ChatRequest(
        model="counter", messages=[common_pb2.ChatMessage(role="robot", content="x")])))
    assert bad_role.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages[0].role" in bad_role.details()


def test_embed_gives_unit_vectors_of_the_model_width(daemon: DaemonProcess) -> None:
    reply = daemon.inference.Embed(inference_pb2.EmbedRequest(model="counter", input=["the of", "and"]), timeout=60)
    assert len(reply.embeddings) == 2
    for embedding in reply.embeddings:
        assert len(embedding.values) == COUNTING.n_embd
        assert math.isclose(math.sqrt(sum(v * v for v in embedding.values)), 1.0, rel_tol=1e-4)
    assert reply.metrics.prompt_eval_count > 0


def test_tokenize_and_detokenize_round_trip(daemon: DaemonProcess) -> None:
    tokens = daemon.inference.Tokenize(inference_pb2.TokenizeRequest(model="counter", content="the of and"),
                                       timeout=60).tokens
    assert tokens[0] == 1  # BOS
    text = daemon.inference.Detokenize(inference_pb2.DetokenizeRequest(model="counter", tokens=tokens[1:]),
                                       timeout=60).content
    assert text.strip() == "the of and"


def test_models_service_lists_shows_copies_and_deletes(daemon: DaemonProcess) -> None:
    names = [m.name for m in daemon.models.List(models_pb2.ListRequest(), timeout=10).models]
    assert "counter" in names and "other" in names
    shown = daemon.models.Show(models_pb2.ShowRequest(model="counter"), timeout=10)
    assert shown.details.family == "llama"
    assert shown.parameters.temperature == 0.0 and shown.parameters.HasField("temperature")
    assert "PARAMETER temperature 0" in shown.modelfile

    daemon.models.Copy(models_pb2.CopyRequest(source="counter", destination="counter-copy"), timeout=10)
    copied = daemon.models.Show(models_pb2.ShowRequest(model="counter-copy"), timeout=10)
    assert copied.digest == shown.digest
    daemon.models.Delete(models_pb2.DeleteRequest(model="counter-copy"), timeout=10)
    gone = _rpc_error(lambda: daemon.models.Show(models_pb2.ShowRequest(model="counter-copy"), timeout=10))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    # The original keeps its blobs.
    assert daemon.models.Show(models_pb2.ShowRequest(model="counter"), timeout=10).digest == shown.digest


def test_create_streams_progress_and_builds_a_package(daemon: DaemonProcess, counting_gguf: Path) -> None:
    events = list(daemon.models.Create(models_pb2.CreateRequest(
        model="created", modelfile=f"FROM {counting_gguf}\nPARAMETER num_ctx 512\n"), timeout=60))
    assert events[-1].status == "success"
    assert daemon.models.Show(models_pb2.ShowRequest(model="created")).parameters.num_ctx == 512
    bad = _rpc_error(lambda: daemon.models.Create(models_pb2.CreateRequest(
        model="broken", modelfile="FORM x\n", path="/tmp/Modelfile"), timeout=60))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "/tmp/Modelfile:1:1" in bad.details()


def test_version(daemon: DaemonProcess) -> None:
    reply = daemon.runtime.Version(runtime_pb2.VersionRequest(), timeout=10)
    assert reply.version and reply.engine_version == "0.3.36"


def test_list_running_reports_memory_split_and_expiry(daemon: DaemonProcess) -> None:
    daemon.generate("counter", "the", num_predict=1, keep_alive="10m")
    model = daemon.running_model("counter")
    assert model is not None
    assert model.state == runtime_pb2.MODEL_STATE_READY
    assert model.size_bytes > 0 and model.vram_bytes == 0 and model.gpu_layers == 0
    assert model.total_layers == COUNTING.n_layer
    assert model.pid > 0 and model.parallel == 4
    assert model.HasField("expires_at") and not model.keep_forever
    remaining = model.expires_at.ToSeconds() - model.loaded_at.ToSeconds()
    assert 0 < remaining <= 600 + 5

    daemon.generate("counter", "the", num_predict=1, keep_alive="-1")
    forever = daemon.running_model("counter")
    assert forever is not None and forever.keep_forever and not forever.HasField("expires_at")


def test_keep_alive_zero_unloads_after_the_request(daemon: DaemonProcess) -> None:
    daemon.generate("other", "the", num_predict=2, keep_alive="0")
    wait_until(lambda: daemon.running_model("other") is None, what="'other' to unload")


def test_reload_only_when_load_time_options_change(daemon: DaemonProcess) -> None:
    daemon.generate("counter", "the", num_predict=1)
    before = daemon.running_model("counter")
    assert before is not None
    daemon.generate("counter", "the", num_predict=3, temperature=0.0, top_k=5)  # sampling only
    same = daemon.running_model("counter")
    assert same is not None and (same.pid, same.load_count) == (before.pid, before.load_count)
    daemon.generate("counter", "the", num_predict=1, num_ctx=512)
    reloaded = daemon.running_model("counter")
    assert reloaded is not None
    assert reloaded.load_count == before.load_count + 1 and reloaded.pid != before.pid
    assert reloaded.context_length == 512 and reloaded.load_options.num_ctx == 512
    # Tokenizing does not depend on load-time options: it uses whatever copy is loaded.
    daemon.last_token("counter", "the")
    still = daemon.running_model("counter")
    assert still is not None and (still.pid, still.load_count) == (reloaded.pid, reloaded.load_count)


def test_one_load_for_many_simultaneous_requests_and_unload(daemon: DaemonProcess) -> None:
    loaded = daemon.runtime.Load(runtime_pb2.LoadRequest(model="other"), timeout=60).model
    assert loaded.state == runtime_pb2.MODEL_STATE_READY and loaded.load_count >= 1
    daemon.runtime.Unload(runtime_pb2.UnloadRequest(model="other"), timeout=60)
    assert daemon.running_model("other") is None
    loads_before = loaded.load_count
    last = daemon.last_token("counter", "the")  # same vocabulary; does not load 'other'
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: daemon.generate("other", "the", num_predict=5), range(16)))
    assert {text for text, _ in results} == {expected_text(OTHER, last, 5)}
    model = daemon.running_model("other")
    assert model is not None and model.load_count == loads_before + 1

    not_loaded = _rpc_error(lambda: daemon.runtime.Unload(runtime_pb2.UnloadRequest(model="created"), timeout=10))
    assert not_loaded.code() == grpc.StatusCode.NOT_FOUND


def test_a_reflection_client_knowing_only_service_names(daemon: DaemonProcess) -> None:
    from google.protobuf import json_format, message_factory
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    database = ProtoReflectionDescriptorDatabase(daemon.channel)
    assert {"ingot.v1.Inference", "ingot.v1.Models", "ingot.v1.Runtime", "grpc.health.v1.Health"} <= set(
        database.get_services()
    )
    pool = DescriptorPool(database)

    def method(service: str, name: str) -> tuple[str, type, type]:
        descriptor = pool.FindServiceByName(service).methods_by_name[name]
        return (
            f"/{service}/{name}",
            message_factory.GetMessageClass(descriptor.input_type),
            message_factory.GetMessageClass(descriptor.output_type),
        )

    path, request_type, reply_type = method("ingot.v1.Inference", "Generate")
    generate = daemon.channel.unary_stream(
        path, request_serializer=request_type.SerializeToString, response_deserializer=reply_type.FromString
    )
    request = json_format.ParseDict({"model": "counter", "prompt": "the", "options": {"numPredict": 6}}, request_type())
    replies = [json_format.MessageToDict(r) for r in generate(request, timeout=60)]
    last = daemon.last_token("counter", "the")
    assert "".join(r.get("response", "") for r in replies) == expected_text(COUNTING, last, 6)
    assert replies[-1]["done"] is True and replies[-1]["metrics"]["evalCount"] == 6

    path, request_type, reply_type = method("ingot.v1.Runtime", "ListRunning")
    list_running = daemon.channel.unary_unary(
        path, request_serializer=request_type.SerializeToString, response_deserializer=reply_type.FromString
    )
    running = json_format.MessageToDict(list_running(request_type(), timeout=10))
    assert "counter" in [m["name"] for m in running["models"]]
