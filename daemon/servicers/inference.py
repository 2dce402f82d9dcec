"""The `ingot.v1.Inference` service: Generate, Chat, Embed, Tokenize, Detokenize.

Each method resolves the model, merges its options, takes a lease from the
scheduler (which loads the model when needed) and talks to the runner.
Errors are mapped to status codes by `ingot.daemon.status`; every request
writes one log line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from ingot.daemon.calls import CallWatch
from ingot.daemon.catalog import Catalog
from ingot.daemon.convert import message_from_proto, metrics_to_proto
from ingot.daemon.engine.errors import RunnerDiedError
from ingot.daemon.engine.types import Chunk, DoneReason, GenerateRequest, Priority
from ingot.daemon.errors import GenerationFailedError, InvalidOptionError
from ingot.daemon.keepalive import KeepAlive, parse_keep_alive
from ingot.daemon.monitoring.requests import RequestMetrics
from ingot.daemon.options import (
    ResolvedOptions,
    options_from_proto,
    priority_from_proto,
    resolve_format,
    resolve_options,
)
from ingot.daemon.prompt import Prompt, PromptSource, chat_prompt, generate_prompt
from ingot.daemon.prompt_size import TokenBound
from ingot.daemon.replies import ReplyPiece, plan_reply, think_value
from ingot.daemon.requestlog import RequestRecord, count, logged, settle
from ingot.daemon.scheduler import Lease, Scheduler
from ingot.daemon.status import stream_errors, unary_errors
from ingot.modelfile.template import DEFAULT_BUDGET, ChatMessage, RenderBudget
from ingot.daemon.toolspec import tool_choice_from_proto, tools_from_proto
from ingot.modelfile.template.inputs import Think
from ingot.proto.ingot.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from ingot.registry.package import Package

__all__ = ["InferenceServicer"]

_ROLES = ("system", "user", "assistant", "tool")


def _keep_alive(message: object) -> KeepAlive | None:
    if message.HasField("keep_alive"):  # type: ignore[attr-defined]
        return parse_keep_alive(message.keep_alive)  # type: ignore[attr-defined]
    return None


def _think(request: inference_pb2.GenerateRequest | inference_pb2.ChatRequest) -> Think:
    return think_value(request.think if request.HasField("think") else None, request.think_level)


def _require_model(name: str) -> None:
    if not name.strip():
        raise InvalidOptionError("model", "no model named", hint="set the request's model field, e.g. 'llama3'")


class InferenceServicer(inference_pb2_grpc.InferenceServicer):
    """`metrics` counts every request; `api` names the door this instance serves ("grpc", "openai", "ollama");
    `template_budget` bounds every prompt render (config.yaml's templates:)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        scheduler: Scheduler,
        metrics: RequestMetrics | None = None,
        api: str = "grpc",
        template_budget: RenderBudget = DEFAULT_BUDGET,
    ) -> None:
        self._catalog = catalog
        self._scheduler = scheduler
        self._template_budget = template_budget
        self._metrics = metrics
        self._api = api
        self._sink = metrics.observe if metrics is not None else None

    def _record(self, rpc: str, model: str, context: grpc.ServicerContext) -> RequestRecord:
        return RequestRecord(rpc, model=model, peer=context.peer(), api=self._api)

    # ---- shared steps ------------------------------------------------------------

    def _prepare(self, model: str, options: common_pb2.Options, fmt: str = "") -> tuple[Package, ResolvedOptions]:
        _require_model(model)
        package = self._catalog.package(model)
        json_output, grammar = resolve_format(fmt)
        resolved = resolve_options(
            package.modelfile.parameters, options_from_proto(options), json_output=json_output, grammar=grammar
        )
        return package, resolved

    @contextmanager
    def _lease(
        self,
        package: Package,
        resolved: ResolvedOptions,
        keep_alive: KeepAlive | None,
        watch: CallWatch,
        record: RequestRecord,
        *,
        any_settings: bool = False,
        priority: Priority = Priority.INTERACTIVE,
    ) -> Iterator[Lease]:
        """The scheduler's lease; the request is counted before it is released, so once
        `Scheduler.drain()` returns, every finished request is in the metrics."""
        spec = self._catalog.spec(package, resolved.load)
        with self._scheduler.acquire(
            spec, keep_alive=keep_alive, is_cancelled=watch.cancelled, any_settings=any_settings, priority=priority
        ) as lease:
            try:
                yield lease
            except BaseException as exc:
                settle(record, exc)
                raise
            finally:
                settle(record, None)
                count(record, self._sink)

    def _source(self, package: Package) -> PromptSource:
        info = self._catalog.info(package)
        texts = self._catalog.token_texts(package) if package.modelfile.template is None and info.chat_template else None
        return PromptSource.of(
            package,
            gguf_chat_template=info.chat_template,
            bos_token=texts.bos if texts else "",
            eos_token=texts.eos if texts else "",
            budget=self._template_budget,
        )

    def _stream(
        self, lease: Lease, request: GenerateRequest, watch: CallWatch, record: RequestRecord
    ) -> Iterator[Chunk]:
        """Chunks from the runner; the runner stops when the client goes away or the daemon shuts down.

        A client that reads slower than tokens come gets the waiting ones joined in one message.
        """
        stream = lease.runner.generate(request)  # bad requests raise here, before any chunk
        lease.set_canceller(stream.cancel)
        remove = watch.on_cancel(stream.cancel)
        finished = False
        streamed = 0  # pieces seen so far, counted as tokens for the live rate until the final count arrives
        try:
            # A joined chunk may hold several tokens: the live count lags, the final metrics settle it.
            for chunk in stream.joined():
                if self._metrics is not None:
                    if not chunk.done and chunk.text:
                        streamed += 1
                        self._metrics.generated(record.model, 1)
                    elif chunk.done and chunk.metrics is not None:
                        self._metrics.generated(record.model, chunk.metrics.completion_tokens - streamed)
                if chunk.done:
                    finished = True
                    if chunk.done_reason is DoneReason.ERROR:
                        raise GenerationFailedError(chunk.error or "the runner could not finish this request")
                    metrics = chunk.metrics
                    if metrics is not None:
                        record.prompt_tokens = metrics.prompt_tokens
                        record.cached_prompt_tokens = metrics.cached_prompt_tokens
                        record.completion_tokens = metrics.completion_tokens
                        record.truncated_tokens += metrics.truncated_tokens
                        record.time_to_first_token_ns = metrics.time_to_first_token_ns
                    record.done_reason = chunk.done_reason.value if chunk.done_reason else ""
                yield chunk
        except RunnerDiedError:
            finished = True
            lease.runner_died()
            raise
        finally:
            remove()
            lease.set_canceller(None)
            if not finished:
                stream.cancel()

    def _final_metrics(
        self, chunk: Chunk, record: RequestRecord, lease: Lease, submitted_ns: int, extra_truncated: int = 0
    ) -> common_pb2.Metrics:
        final = metrics_to_proto(
            chunk.metrics,
            total_ns=time.monotonic_ns() - record.started_ns,
            load_ns=lease.load_ns,
            queue_ns=lease.queue_ns,
            first_token_offset_ns=submitted_ns - record.started_ns,
            extra_truncated=extra_truncated,
        )
        # From the request's arrival, as clients see it (the engine counts from its own submit).
        record.time_to_first_token_ns = final.time_to_first_token_ns
        record.eval_ns = final.eval_duration_ns
        return final

    # ---- RPCs ----------------------------------------------------------------------

    @stream_errors
    def Generate(
        self, request: inference_pb2.GenerateRequest, context: grpc.ServicerContext
    ) -> Iterator[inference_pb2.GenerateResponse]:
        record = self._record("Generate", request.model, context)
        with logged(record, sink=self._sink):
            watch = CallWatch(context, wake=self._scheduler.wake)
            package, resolved = self._prepare(request.model, request.options, request.format)
            record.model = package.reference.short
            name = package.reference.short
            source = self._source(package)
            template = request.template if request.HasField("template") else None
            # A raw prompt has no template, so no thinking tags to read the reply with.
            plan = None if request.raw else plan_reply(
                model=name, template=source.chosen(template), think=_think(request), fmt=request.format)
            with self._lease(
                package, resolved, _keep_alive(request), watch, record, priority=priority_from_proto(request.options)
            ) as lease:
                record.queue_ns, record.load_ns = lease.queue_ns, lease.load_ns
                if not request.prompt and not request.raw:
                    # Ollama's convention: an empty prompt only loads the model.
                    record.done_reason = "load"
                    yield inference_pb2.GenerateResponse(
                        model=name,
                        done=True,
                        done_reason="load",
                        metrics=metrics_to_proto(
                            None,
                            total_ns=time.monotonic_ns() - record.started_ns,
                            load_ns=lease.load_ns,
                            queue_ns=lease.queue_ns,
                            first_token_offset_ns=0,
                        ),
                    )
                    return
                prompt = generate_prompt(
                    source,
                    request.prompt,
                    system=request.system if request.HasField("system") else None,
                    template=template,
                    raw=request.raw,
                    think=plan.think if plan is not None else None,
                )
                TokenBound.of(self._catalog.info(package)).check(prompt.text, lease.options.n_ctx)
                sampling = plan.sampling(resolved.sampling, prompt.text) if plan is not None else resolved.sampling
                reader = plan.reader(prompt.text) if plan is not None else None
                engine_request = GenerateRequest(
                    prompt=prompt.text, sampling=sampling, add_bos=prompt.add_bos, priority=lease.priority
                )
                submitted = time.monotonic_ns()
                for chunk in self._stream(lease, engine_request, watch, record):
                    piece = reader.feed(chunk.text) if reader is not None else ReplyPiece(chunk.text)
                    if chunk.done and reader is not None:
                        piece += reader.finish()
                    elif not piece and not chunk.done:
                        continue  # held back: it may be the start of a thinking tag
                    response = inference_pb2.GenerateResponse(
                        model=name, response=piece.content, thinking=piece.thinking, done=chunk.done
                    )
                    if chunk.done:
                        response.done_reason = chunk.done_reason.value if chunk.done_reason else ""
                        response.metrics.CopyFrom(self._final_metrics(chunk, record, lease, submitted))
                    yield response

    @stream_errors
    def Chat(
        self, request: inference_pb2.ChatRequest, context: grpc.ServicerContext
    ) -> Iterator[inference_pb2.ChatResponse]:
        record = self._record("Chat", request.model, context)
        with logged(record, sink=self._sink):
            watch = CallWatch(context, wake=self._scheduler.wake)
            messages = []
            for index, message in enumerate(request.messages):
                if message.role not in _ROLES:
                    raise InvalidOptionError(
                        f"messages[{index}].role", f"unknown role {message.role!r}", hint=f"use one of {', '.join(_ROLES)}"
                    )
                messages.append(message_from_proto(message, index))
            package, resolved = self._prepare(request.model, request.options, request.format)
            record.model = name = package.reference.short
            source = self._source(package)
            tools = tools_from_proto(request.tools)
            plan = plan_reply(
                model=name,
                template=source.chosen(),
                tools=tools,
                choice=tool_choice_from_proto(request.tool_choice, tools),
                parallel=request.parallel_tool_calls if request.HasField("parallel_tool_calls") else True,
                think=_think(request),
                fmt=request.format,
            )
            with self._lease(
                package, resolved, _keep_alive(request), watch, record, priority=priority_from_proto(request.options)
            ) as lease:
                record.queue_ns, record.load_ns = lease.queue_ns, lease.load_ns
                if not messages:
                    record.done_reason = "load"
                    yield inference_pb2.ChatResponse(
                        model=name,
                        message=common_pb2.ChatMessage(role="assistant"),
                        done=True,
                        done_reason="load",
                    )
                    return
                runner = lease.runner
                prompt: Prompt = chat_prompt(
                    source,
                    messages,
                    count_tokens=lambda text: len(runner.tokenize(text, add_bos=True, special=True)),
                    n_ctx=lease.options.n_ctx,
                    num_predict=resolved.sampling.num_predict,
                    tools=plan.template_tools,
                    think=plan.think,
                    bound=TokenBound.of(self._catalog.info(package)),
                )
                record.truncated_tokens = prompt.truncated_tokens
                reader = plan.reader(prompt.text)
                engine_request = GenerateRequest(
                    prompt=prompt.text,
                    sampling=plan.sampling(resolved.sampling, prompt.text),
                    add_bos=prompt.add_bos,
                    priority=lease.priority,
                )
                submitted = time.monotonic_ns()
                for chunk in self._stream(lease, engine_request, watch, record):
                    piece = reader.feed(chunk.text)
                    if chunk.done:
                        piece += reader.finish()
                    elif not piece:
                        continue  # held back: it may be the start of a tool call or a tag
                    response = inference_pb2.ChatResponse(model=name, message=piece.message(), done=chunk.done)
                    if chunk.done:
                        response.done_reason = chunk.done_reason.value if chunk.done_reason else ""
                        response.metrics.CopyFrom(
                            self._final_metrics(chunk, record, lease, submitted, extra_truncated=prompt.truncated_tokens)
                        )
                    yield response

    @unary_errors
    def Embed(self, request: inference_pb2.EmbedRequest, context: grpc.ServicerContext) -> inference_pb2.EmbedResponse:
        record = self._record("Embed", request.model, context)
        with logged(record, sink=self._sink):
            watch = CallWatch(context, wake=self._scheduler.wake)
            package, resolved = self._prepare(request.model, request.options)
            record.model = name = package.reference.short
            truncate = request.truncate if request.HasField("truncate") else True
            normalize = request.normalize if request.HasField("normalize") else True
            with self._lease(
                package, resolved, _keep_alive(request), watch, record, priority=priority_from_proto(request.options)
            ) as lease:
                record.queue_ns, record.load_ns = lease.queue_ns, lease.load_ns
                runner = lease.runner
                n_ctx = lease.options.n_ctx
                texts = list(request.input)
                counted = 0
                bound = TokenBound.of(self._catalog.info(package))
                for index, text in enumerate(texts):
                    if not truncate:
                        bound.check(text, n_ctx)
                    tokens = runner.tokenize(text, add_bos=True, special=False)
                    if len(tokens) > n_ctx and truncate:
                        # Keep the start: cut at the context size and decode back to text.
                        # Keep the start; one token of slack for re-tokenizing the cut text.
                        kept = tokens[: n_ctx - 1]
                        texts[index] = runner.detokenize(kept)
                        record.truncated_tokens += len(tokens) - len(kept)
                        tokens = kept
                    counted += len(tokens)
                started = time.monotonic_ns()
                vectors = runner.embed(texts, normalize=normalize) if texts else []
                record.prompt_tokens = counted
                return inference_pb2.EmbedResponse(
                    model=name,
                    embeddings=[inference_pb2.Embedding(values=v) for v in vectors],
                    metrics=common_pb2.Metrics(
                        prompt_eval_count=counted,
                        truncated_tokens=record.truncated_tokens,
                        total_duration_ns=time.monotonic_ns() - record.started_ns,
                        load_duration_ns=lease.load_ns,
                        queue_duration_ns=lease.queue_ns,
                        prompt_eval_duration_ns=time.monotonic_ns() - started,
                    ),
                )

    @unary_errors
    def Tokenize(
        self, request: inference_pb2.TokenizeRequest, context: grpc.ServicerContext
    ) -> inference_pb2.TokenizeResponse:
        record = self._record("Tokenize", request.model, context)
        with logged(record, sink=self._sink):
            watch = CallWatch(context, wake=self._scheduler.wake)
            package, resolved = self._prepare(request.model, common_pb2.Options())
            record.model = package.reference.short
            add_bos = request.add_bos if request.HasField("add_bos") else True
            with self._lease(package, resolved, _keep_alive(request), watch, record, any_settings=True) as lease:
                tokens = lease.runner.tokenize(request.content, add_bos=add_bos, special=True)
            record.prompt_tokens = len(tokens)
            return inference_pb2.TokenizeResponse(tokens=tokens)

    @unary_errors
    def Detokenize(
        self, request: inference_pb2.DetokenizeRequest, context: grpc.ServicerContext
    ) -> inference_pb2.DetokenizeResponse:
        record = self._record("Detokenize", request.model, context)
        with logged(record, sink=self._sink):
            watch = CallWatch(context, wake=self._scheduler.wake)
            package, resolved = self._prepare(request.model, common_pb2.Options())
            record.model = package.reference.short
            with self._lease(package, resolved, _keep_alive(request), watch, record, any_settings=True) as lease:
                text = lease.runner.detokenize(list(request.tokens))
            return inference_pb2.DetokenizeResponse(content=text)
