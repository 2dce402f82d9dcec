"""The in-process inference engine: continuous batching over llama.cpp's low-level API.

One `llama_context` holds ``n_parallel`` sequence slots, each with its own KV
stream of ``n_ctx`` cells (see `generation_shape`). A dedicated engine thread
runs the loop; each step it

1. admits waiting requests into free slots -- interactive before batch, an
   interactive one pausing a batch sequence when every slot is busy (the
   rules are in `admission`) -- choosing the slot whose cached tokens share
   the longest prefix with the prompt and dropping the rest of that slot's
   cache (`llama_memory_seq_rm`);
2. drops cancelled requests (their slot is free again at once);
3. evaluates pending prompts oldest first, up to ``n_batch`` tokens in all:
   each prompt in a `llama_decode` of its own (`plan_prompt_calls`; only short
   prompts share one), and samples a request as soon as its prompt is done,
   so with several prompts waiting the first streams after one prompt's time,
   not after all of them;
4. evaluates the next token of every generating sequence in one more
   `llama_decode` (ctypes releases the GIL, so other Python threads -- the
   gRPC server -- keep running);
5. samples every sequence that produced logits with its own native sampler
   chain, detokenizes incrementally, applies stop strings and streams chunks;
   then calls the `flush` hook once, so a sink that buffers (the runner's wire)
   writes all chunks of that `llama_decode` at once.

Every batch lists its tokens in sequence-id order (see `_evaluate`).
A request that ends (stop, length, cancel, error) frees its slot in the same
step; the slot keeps its cached tokens for prefix reuse until it is reused.
`llama_decode` returning 1 (no KV room) never takes other sequences down:
prompt chunks shrink, and if single tokens still do not fit, the longest
sequence ends with reason ``length``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import llama_cpp

from .admission import DEFAULT_PATIENCE, WaitQueue
from .context_window import fit_prompt
from .detokenizer import MAX_CHARACTER_TAIL, IncrementalDetokenizer
from .embedder import Embedder
from .errors import EngineError, InvalidRequestError, LoadError, QueueFullError
from .native import Batch, ContextShape, NativeContext, NativeModel, flash_attention_for
from .process_memory import rss_bytes
from .sampling import SamplerChain, resolve_seed, validate_sampling
from .slots import Slot, choose_slot
from .stops import StopFilter
from .stream import RequestStream
from .types import Chunk, DoneReason, GenerateRequest, LoadOptions, Metrics, Priority, RunnerStats, SamplingOptions

__all__ = ["DEFAULT_MAX_QUEUE", "Engine", "RequestHandle", "generation_shape", "plan_prompt_calls", "prompt_group_tokens"]

_LOGGER = logging.getLogger("ingot.engine")

# Requests waiting for a slot before new ones are refused (Ollama's bound).
DEFAULT_MAX_QUEUE = 512

Sink = Callable[[Chunk], None]

_CELL_PADDING = 256  # llama.cpp rounds a KV stream up to a multiple of this many cells

# Prompt tokens up to which short prompts share one llama_decode on the CPU (see `plan_prompt_calls`).
_CPU_PROMPT_GROUP = 16


@dataclass(eq=False)
class _Request:
    """Engine-side state of one generation (touched by the engine thread once admitted)."""

    id: int
    # The tokens the slot must hold before sampling goes on: the prompt, and after a
    # preemption the prompt plus what was generated before it (see `admission`).
    prompt: list[int]
    prompt_tokens: int  # the request's own prompt, for its metrics
    max_tokens: int  # num_predict, or -1
    truncated: int
    chain: SamplerChain
    detok: IncrementalDetokenizer
    stops: StopFilter
    sink: Sink
    t_submit: int
    priority: Priority = Priority.INTERACTIVE
    passed_over: int = 0  # interactive requests that took a slot while this one waited
    protected: bool = False  # admitted after aging: never preempted
    admitted: int = 0  # times it got a slot (more than once after preemptions)
    cancelled: bool = False
    slot: Slot | None = None
    fed: int = 0  # prompt tokens whose K/V are in the slot
    cached_prompt: int = 0
    next_token: int | None = None  # sampled, not yet decoded
    batch_index: int = -1
    completion_tokens: int = 0
    t_prompt_start: int = 0
    t_prompt_done: int = 0
    t_first_token: int = 0
    done: bool = False

    @property
    def pos(self) -> int:
        assert self.slot is not None
        return len(self.slot.cached)


@dataclass(frozen=True)
class RequestHandle:
    """A submitted request: its id and a way to cancel it."""

    id: int
    _cancel: Callable[[], None] = field(repr=False)

    def cancel(self) -> None:
        self._cancel()


class Engine:
    """Owns one model and serves many concurrent generations with continuous batching.

    Thread safe: `generate`, `embed`, `tokenize`, `detokenize` and `stats` may be
    called from any number of threads. Load failures raise `LoadError`
    (``out_of_memory=True`` when llama.cpp could not allocate).
    """

    def __init__(
        self,
        options: LoadOptions,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        patience: int = DEFAULT_PATIENCE,
        flush: Callable[[], None] | None = None,
    ) -> None:
        """`flush`: called on the engine thread after each batch of chunks it delivered to sinks
        (after every `llama_decode`'s sampling, after cancellations, and once at the end)."""
        _check_load_options(options)
        self._options = options
        self._max_queue = max_queue
        self._flush = flush or _nothing
        self._model = NativeModel(options)
        self._ctx: NativeContext | None = None
        self._batch: Batch | None = None
        self._embedder: Embedder | None = None
        try:
            self._ctx = NativeContext(self._model, generation_shape(options))
            self._batch = Batch(self._ctx.n_batch)
            if options.embedding:
                self._embedder = Embedder(self._model, n_ctx=options.n_ctx)
        except BaseException:
            self._free_native()
            raise
        # The window each request gets: what was asked for (llama.cpp rounds its cells up).
        self.n_ctx_seq = min(options.n_ctx, self._ctx.n_ctx_seq)
        trained = self._model.n_ctx_train
        if 0 < trained < self.n_ctx_seq:
            _LOGGER.warning(
                "n_ctx %d is larger than the %d tokens %s was trained on; replies may degrade past that",
                self.n_ctx_seq, trained, os.path.basename(options.model_path),
            )  # fmt: skip
        self._slots = [Slot(seq) for seq in range(self._ctx.n_seq_max)]
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting = WaitQueue(patience=patience)
        self._running: list[_Request] = []  # engine thread only
        self._preemptions = 0
        self._state = "open"  # open -> closing -> closed, or failed
        self._failure = ""
        self._ids = itertools.count(1)
        self._steps = 0
        self._prompt_budget = self._batch.capacity
        self._prompt_group = prompt_group_tokens(options, self._batch.capacity)
        self._users = 0  # API calls inside native code right now; close() waits for them
        self._embed_init = threading.Lock()
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"ingot-engine:{os.path.basename(options.model_path)}", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------------------------------
    # public API

    @property
    def options(self) -> LoadOptions:
        return self._options

    def generate(self, request: GenerateRequest) -> RequestStream:
        """Start a generation; iterate the stream for chunks. Bad requests raise here, not mid-stream."""
        # `handle` is bound before anyone can reach the stream's cancel().
        stream = RequestStream(cancel=lambda: handle.cancel())
        handle = self.submit(request, stream.push)
        return stream

    def submit(self, request: GenerateRequest, sink: Sink) -> RequestHandle:
        """Queue a generation whose chunks go to `sink` (called from the engine thread, must not block long).

        Raises InvalidRequestError, ContextOverflowError, QueueFullError or EngineError up front.
        """
        if not isinstance(request, GenerateRequest):
            raise InvalidRequestError(f"expected a GenerateRequest, got {type(request).__name__}")
        if not isinstance(request.prompt, str):
            raise InvalidRequestError(f"the prompt must be a string, got {type(request.prompt).__name__}")
        sampling = request.sampling
        if not isinstance(sampling, SamplingOptions):
            raise InvalidRequestError(f"expected SamplingOptions, got {type(sampling).__name__}")
        validate_sampling(sampling)
        if not isinstance(request.truncatable_after, int) or request.truncatable_after < 0:
            raise InvalidRequestError(f"truncatable_after must be 0 or more, got {request.truncatable_after!r}")
        if not isinstance(request.priority, Priority):
            raise InvalidRequestError(f"priority must be a Priority, got {request.priority!r}")
        with self._in_use():
            return self._submit(request, sink)

    def _submit(self, request: GenerateRequest, sink: Sink) -> RequestHandle:
        sampling = request.sampling
        tokens = self._model.tokenize(request.prompt, add_bos=request.add_bos, special=True)
        if not tokens:
            raise InvalidRequestError("the prompt is empty (it has no tokens); send some text")
        tokens, truncated = fit_prompt(
            tokens, n_ctx=self.n_ctx_seq, truncatable_after=request.truncatable_after, num_predict=sampling.num_predict
        )
        chain = SamplerChain(
            vocab=self._model.vocab,
            n_vocab=self._model.n_vocab,
            n_ctx_seq=self.n_ctx_seq,
            options=sampling,
            seed=resolve_seed(sampling.seed, self._options.seed),
        )
        chain.prime_penalties(tokens)
        req = _Request(
            id=next(self._ids),
            prompt=tokens,
            prompt_tokens=len(tokens),
            max_tokens=sampling.num_predict,
            truncated=truncated,
            chain=chain,
            detok=IncrementalDetokenizer(self._model.token_to_piece),
            stops=StopFilter(sampling.stop),
            sink=sink,
            t_submit=time.perf_counter_ns(),
            priority=request.priority,
        )
        with self._lock:
            problem: EngineError | None = None
            if self._state != "open":
                problem = self._closed_error()
            elif self._queue_full_for(req.priority):
                problem = QueueFullError(
                    f"all {len(self._slots)} slots are busy and {len(self._waiting)} requests are waiting; retry later"
                )
            if problem is None:
                self._waiting.append(req)
                self._wake.notify()
        if problem is not None:
            chain.close()
            raise problem
        return RequestHandle(req.id, lambda: self._cancel(req))

    def embed(self, texts: Sequence[str], *, normalize: bool = True) -> list[list[float]]:
        """One vector per text (L2-normalized unless normalize=False), computed in batches."""
        if isinstance(texts, (str, bytes)):
            raise InvalidRequestError("embed() takes a sequence of strings; wrap a single text in a list")
        with self._in_use():
            if not texts:
                return []
            return self._get_embedder().embed(list(texts), normalize=normalize)

    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = True) -> list[int]:
        if not isinstance(text, str):
            raise InvalidRequestError(f"tokenize() takes a string, got {type(text).__name__}")
        with self._in_use():
            return self._model.tokenize(text, add_bos=add_bos, special=special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        with self._in_use():
            return self._model.detokenize(list(tokens))

    def stats(self) -> RunnerStats:
        with self._in_use():
            return self._stats()

    def _queue_full_for(self, priority: Priority) -> bool:
        # Batch work never fills the queue for interactive requests: those count only each other.
        waiting = len(self._waiting) if priority is Priority.BATCH else self._waiting.count_of(priority)
        return waiting >= self._max_queue

    def _stats(self) -> RunnerStats:
        with self._lock:
            busy = [slot.request for slot in self._slots if not slot.free]
            active = len(busy)
            queued = len(self._waiting)
            waiting_interactive, waiting_batch = self._waiting.counts()
            running_batch = sum(1 for req in busy if req.priority is Priority.BATCH)
            preemptions = self._preemptions
        assert self._ctx is not None
        cells = self._ctx.n_ctx + (self._embedder.n_cells if self._embedder else 0)
        return RunnerStats(
            pid=os.getpid(),
            model_path=self._options.model_path,
            n_ctx=self.n_ctx_seq,
            n_parallel=len(self._slots),
            active_requests=active,
            queued_requests=queued,
            kv_cache_bytes=cells * self._model.kv_bytes_per_cell(),
            model_bytes=self._model.size_bytes(),
            n_gpu_layers=self._options.n_gpu_layers,
            rss_bytes=rss_bytes(),
            waiting_interactive=waiting_interactive,
            waiting_batch=waiting_batch,
            running_interactive=active - running_batch,
            running_batch=running_batch,
            preemptions=preemptions,
        )

    def close(self) -> None:
        """Stop the loop, end every open request (reason error, "engine closed"), free native memory."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("Engine.close() cannot be called from a chunk sink (the engine thread)")
        with self._close_lock:
            with self._lock:
                if self._state == "closed":
                    return
                if self._state == "open":
                    self._state = "closing"
                self._wake.notify_all()
            self._thread.join()
            with self._lock:
                while self._users:
                    self._wake.wait()
            self._free_native()
            with self._lock:
                self._state = "closed"

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------
    # helpers for callers' threads

    @contextlib.contextmanager
    def _in_use(self) -> Iterator[None]:
        with self._lock:
            if self._state != "open":
                raise self._closed_error()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                self._wake.notify_all()

    def _closed_error(self) -> EngineError:
        if self._state == "failed":
            return EngineError(f"the engine stopped after an internal error: {self._failure}")
        return EngineError("the engine is closed")

    def _cancel(self, req: _Request) -> None:
        with self._lock:
            req.cancelled = True
            self._wake.notify()

    def _get_embedder(self) -> Embedder:
        with self._embed_init:
            if self._embedder is None:
                self._embedder = Embedder(self._model, n_ctx=self._options.n_ctx)
            return self._embedder

    def _free_native(self) -> None:
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None
        if self._batch is not None:
            self._batch.close()
            self._batch = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None
        self._model.close()

    # ------------------------------------------------------------------------------------------
    # the engine thread

    def _run(self) -> None:
        try:
            while True:
                finished: list[_Request] = []
                with self._lock:
                    while self._state == "open" and not self._waiting and not self._running:
                        self._wake.wait()
                    if self._state != "open":
                        break
                    self._admit_locked(finished)
                for req in finished:
                    self._finish(req, DoneReason.CANCELLED, flush=False)
                for req in [r for r in self._running if r.cancelled]:
                    self._finish(req, DoneReason.CANCELLED, flush=False)
                self._flush()
                if self._running:
                    self._step()
        except BaseException as exc:  # a bug must fail requests loudly, not hang them
            _LOGGER.exception("engine loop failed")
            with self._lock:
                self._state = "failed"
                self._failure = f"{type(exc).__name__}: {exc}"
        finally:
            reason = self._failure or "the engine was closed"
            with self._lock:
                leftovers = [*self._running, *self._waiting.clear()]
            for req in leftovers:
                if not req.done:
                    self._finish(req, DoneReason.ERROR, flush=False, error=reason)
            self._flush()

    def _admit_locked(self, cancelled: list[_Request]) -> None:
        cancelled.extend(self._waiting.drop_cancelled())  # type: ignore[arg-type]
        interactive_admitted = 0
        for req in self._waiting.in_order():
            assert isinstance(req, _Request)
            choice = choose_slot(self._slots_for(req), req.prompt)
            if choice is None and req.priority is Priority.INTERACTIVE:
                victim = self._preemptable()
                if victim is not None:
                    self._preempt(victim)
                    choice = choose_slot(self._slots_for(req), req.prompt)
            if choice is None:
                break
            aged = self._waiting.aged(req)
            self._waiting.remove(req)
            interactive_admitted += req.priority is Priority.INTERACTIVE
            req.protected = req.protected or aged
            self._place(req, *choice)
        self._waiting.pass_over(interactive_admitted)

    def _slots_for(self, req: _Request) -> list[Slot]:
        """The slots `req` may take: batch work leaves the last `interactive_slots` to interactive requests."""
        if req.priority is Priority.BATCH and self._options.interactive_slots:
            return self._slots[: len(self._slots) - self._options.interactive_slots]
        return self._slots

    def _place(self, req: _Request, slot: Slot, shared: int) -> None:
        assert self._ctx is not None
        if not self._ctx.seq_rm(slot.seq, shared, -1):
            # This memory cannot drop a tail (recurrent models): start the slot over.
            self._ctx.seq_rm(slot.seq, -1, -1)
            shared = 0
        del slot.cached[shared:]
        slot.request = req
        req.slot = slot
        req.fed = shared
        if not req.admitted:
            req.cached_prompt = shared
        req.admitted += 1
        self._running.append(req)

    def _preemptable(self) -> _Request | None:
        """The batch sequence an interactive request may pause: the one with the least work to redo."""
        candidates = [r for r in self._running if r.priority is Priority.BATCH and not r.protected and not r.done]
        return min(candidates, key=lambda r: r.pos, default=None)

    def _preempt(self, req: _Request) -> None:
        """Pause `req` and queue it again; its slot is free now (called with the lock held)."""
        slot = req.slot
        assert slot is not None
        if req.next_token is not None:
            # Generating: resume from everything so far. Evaluating the sampled-but-not-decoded
            # token last gives the logits the next sample needs, as decoding it would have.
            req.prompt = [*slot.cached, req.next_token]
            req.next_token = None
        # (Still in its prompt: `prompt` is unchanged; the slot's cache keeps what was fed.)
        slot.request = None
        slot.last_used = self._steps
        req.slot = None
        req.fed = 0
        self._running.remove(req)
        self._waiting.put_back(req)
        self._preemptions += 1

    def _step(self) -> None:
        batch = self._batch
        assert batch is not None
        self._steps += 1
        decoding = [req for req in self._running if req.next_token is not None]
        pending = [req for req in self._running if req.next_token is None and req.fed < len(req.prompt)]
        pending.sort(key=lambda req: req.priority is Priority.BATCH)  # interactive prompts first, else oldest first
        calls = plan_prompt_calls(
            [len(req.prompt) - req.fed for req in pending],
            budget=min(self._prompt_budget, batch.capacity - len(decoding)),
            group_tokens=self._prompt_group,
        )
        oldest_first = iter(pending)
        riders: list[tuple[_Request, int]] = []
        for call in calls:
            chunks = [(next(oldest_first), take) for take in call]
            if all(take == 1 for take in call):
                # One-token chunks (the end of a cached prompt) cost nothing extra in the running
                # streams' pass, where llama.cpp puts one token of every sequence anyway.
                riders.extend(chunks)
                continue
            evaluated = self._evaluate([], chunks)
            self._flush()  # this prompt's first token streams now, not after the rest of the step
            if not evaluated:
                break  # no KV room: the next step retries with smaller chunks
            if self._interactive_waiting() and any(req.priority is Priority.BATCH for req, _ in chunks):
                # An interactive arrival waits for this step; the batch prompts left would make it wait
                # for all of them (compute bound on a CPU). They go on next step, after its admission.
                break
        if decoding or riders:
            self._evaluate(decoding, riders)
            self._flush()

    def _interactive_waiting(self) -> bool:
        with self._lock:
            return self._waiting.count_of(Priority.INTERACTIVE) > 0

    def _evaluate(self, decoding: list[_Request], prompting: list[tuple[_Request, int]]) -> bool:
        """One llama_decode: the next token of each of `decoding`, the given prompt chunks; then sample.

        False when llama.cpp found no room in the KV cache (and nothing happened).
        """
        ctx, batch = self._ctx, self._batch
        assert ctx is not None and batch is not None
        now = time.perf_counter_ns()
        # Sequence-id order: llama.cpp cuts a batch over per-slot streams into ubatches of
        # *consecutive* sequence ids in batch order, one pass over the weights each, so
        # sequences 3, 0, 1, 2 would cost two passes where 0, 1, 2, 3 cost one.
        work = sorted([*((req, 0) for req in decoding), *prompting], key=_seq_of)
        batch.clear()
        for req, take in work:
            slot = req.slot
            assert slot is not None
            if not take:
                assert req.next_token is not None
                req.batch_index = batch.add(req.next_token, len(slot.cached), slot.seq, True)
                continue
            end = req.fed + take
            req.batch_index = batch.add_run(req.prompt[req.fed : end], len(slot.cached), slot.seq, end == len(req.prompt))
            if not req.t_prompt_start:
                req.t_prompt_start = now
        rc = ctx.decode(batch)
        if rc == 1:
            self._on_kv_full(decoding, prompting)
            return False
        if rc != 0:
            self._on_decode_failure(rc, decoding, prompting)
            return True
        if prompting:
            self._prompt_budget = batch.capacity
        for req in decoding:
            assert req.slot is not None and req.next_token is not None
            req.slot.cached.append(req.next_token)
            req.next_token = None
        for req, take in prompting:
            assert req.slot is not None
            req.slot.cached.extend(req.prompt[req.fed : req.fed + take])
            req.fed += take
        for req in decoding:
            self._sample(req)
        for req, _ in prompting:
            if req.fed == len(req.prompt):
                req.t_prompt_done = req.t_prompt_done or time.perf_counter_ns()
                if req.max_tokens == 0:
                    self._finish(req, DoneReason.LENGTH)
                else:
                    self._sample(req)
        return True

    def _sample(self, req: _Request) -> None:
        assert self._ctx is not None
        token = req.chain.sample(self._ctx.ctx, req.batch_index)
        if not req.t_first_token:
            req.t_first_token = time.perf_counter_ns()
        if self._model.is_eog(token):
            self._finish(req, DoneReason.STOP)
            return
        req.completion_tokens += 1
        text, stopped = req.stops.feed(req.detok.feed(token))
        if stopped:
            self._finish(req, DoneReason.STOP, text=text, flush=False)
            return
        if req.max_tokens > 0 and req.completion_tokens >= req.max_tokens and not self._finishing_character(req):
            self._finish(req, DoneReason.LENGTH, text=text)
        elif req.pos >= self.n_ctx_seq:
            # No cell is left to decode this token into: the window is full.
            self._finish(req, DoneReason.LENGTH, text=text)
        else:
            if text:
                self._deliver(req, Chunk(text=text))
            req.next_token = token

    @staticmethod
    def _finishing_character(req: _Request) -> bool:
        # The limit fell inside a multi-byte character: spend up to MAX_CHARACTER_TAIL
        # more tokens completing it, as llama-cpp-python does, rather than cut it.
        return req.detok.pending and req.completion_tokens < req.max_tokens + MAX_CHARACTER_TAIL

    def _on_kv_full(self, decoding: list[_Request], prompting: list[tuple[_Request, int]]) -> None:
        # llama.cpp restored the memory as it was; nothing in the batch happened.
        if prompting and self._prompt_budget > 1:
            self._prompt_budget = max(1, self._prompt_budget // 2)
            _LOGGER.debug("KV cache full; prompt chunks shrink to %d tokens", self._prompt_budget)
            return
        victims = decoding or [req for req, _ in prompting]
        victim = max(victims, key=lambda r: r.pos)
        if victim in decoding:
            self._finish(victim, DoneReason.LENGTH)
        else:
            self._finish(victim, DoneReason.ERROR, flush=False, error="the KV cache has no room for this prompt")

    def _on_decode_failure(self, rc: int, decoding: list[_Request], prompting: list[tuple[_Request, int]]) -> None:
        # Part of the batch may be in memory now; those sequences' caches cannot be trusted.
        message = f"llama_decode failed (code {rc})"
        _LOGGER.error("%s; ending %d requests", message, len(decoding) + len(prompting))
        for req in [*decoding, *(r for r, _ in prompting)]:
            self._finish(req, DoneReason.ERROR, flush=False, error=message, forget_cache=True)

    def _finish(
        self,
        req: _Request,
        reason: DoneReason,
        *,
        text: str = "",
        flush: bool = True,
        error: str | None = None,
        forget_cache: bool = False,
    ) -> None:
        if req.done:
            return
        req.done = True
        if flush:
            tail, stopped = req.stops.feed(req.detok.flush())
            text += tail if stopped else tail + req.stops.flush()
        now = time.perf_counter_ns()
        metrics = Metrics(
            prompt_tokens=req.prompt_tokens,
            cached_prompt_tokens=req.cached_prompt,
            completion_tokens=req.completion_tokens,
            truncated_tokens=req.truncated,
            time_to_first_token_ns=req.t_first_token - req.t_submit if req.t_first_token else 0,
            prompt_eval_ns=req.t_prompt_done - req.t_prompt_start if req.t_prompt_done else 0,
            eval_ns=now - req.t_prompt_done if req.t_prompt_done else 0,
            total_ns=now - req.t_submit,
        )
        slot = req.slot
        if slot is not None and forget_cache and self._ctx is not None:
            self._ctx.seq_rm(slot.seq, -1, -1)
            slot.cached.clear()
        with self._lock:
            if slot is not None:
                slot.request = None
                slot.last_used = self._steps
            if req in self._running:
                self._running.remove(req)
        req.chain.close()
        self._deliver(req, Chunk(text=text, done=True, done_reason=reason, metrics=metrics, error=error))

    def _deliver(self, req: _Request, chunk: Chunk) -> None:
        try:
            req.sink(chunk)
        except Exception:  # noqa: BLE001 - one broken consumer must not stop the others
            _LOGGER.exception("delivering a chunk of request %d failed; cancelling it", req.id)
            req.cancelled = True


def _nothing() -> None:
    pass


def _seq_of(work: tuple[_Request, int]) -> int:
    slot = work[0].slot
    assert slot is not None
    return slot.seq


def plan_prompt_calls(left: Sequence[int], *, budget: int, group_tokens: int) -> list[list[int]]:
    """The prompt work of one step: per `llama_decode` call, how many tokens of which pending prompt.

    `left` holds each pending prompt's remaining tokens, oldest first; the
    calls take them in that order (FIFO: the result flattens to a prefix of
    `left`) until `budget` tokens are used, chunking the prompt at the boundary.
    A prompt joins the previous call only while that call stays within
    `group_tokens`; otherwise it gets a call of its own. Why: prompt evaluation
    on a CPU is compute bound, so a call over several prompts costs about the
    sum of separate calls but makes the first prompt's request wait for all of
    them; separate calls, each sampled at once, let it stream after one.
    Prompts short enough that a pass would be mostly fixed cost still share.
    """
    calls: list[list[int]] = []
    used = in_call = 0
    for n in left:
        room = budget - used
        if room <= 0:
            break
        take = min(n, room)
        if calls and in_call + take <= group_tokens:
            calls[-1].append(take)
            in_call += take
        else:
            calls.append([take])
            in_call = take
        used += take
    return calls


def prompt_group_tokens(options: LoadOptions, n_batch: int) -> int:
    """Up to how many tokens prompts share one `llama_decode` (`plan_prompt_calls`).

    On the CPU a pass costs a fixed part (measured on the bench model: about
    what 6 prompt tokens cost) plus a part proportional to its tokens, so
    sharing a call saves little and delays the older prompts' first tokens;
    only very short prompts share. On a GPU a pass costs about the same for
    one token as for hundreds: there all waiting prompts share one call, up to
    ``n_batch``.
    """
    return _CPU_PROMPT_GROUP if options.n_gpu_layers == 0 else n_batch


def generation_shape(options: LoadOptions) -> ContextShape:
    """The generation context for `options`: one KV stream of n_ctx cells per slot.

    * Per-slot streams (``kv_unified=False``): each sequence attends over its own
      cells only, llama.cpp guarantees every slot its window, and the attention
      scratch buffer stays proportional to one window, not to all of them.
    * Flash attention off on the CPU (`flash_attention_for`): that is what makes
      seeds reproducible under concurrency and prefix reuse exact.
    * llama.cpp pads a stream to a multiple of 256 cells; asking for padded
      windows keeps the split between slots even.
    """
    padded = -(-options.n_ctx // _CELL_PADDING) * _CELL_PADDING
    return ContextShape(
        n_ctx=padded * options.n_parallel,
        n_seq_max=options.n_parallel,
        n_batch=options.n_batch,
        kv_unified=False,
        flash_attn=flash_attention_for(options),
    )


def _check_load_options(options: LoadOptions) -> None:
    if not isinstance(options, LoadOptions):
        raise LoadError(f"expected LoadOptions, got {type(options).__name__}")
    for name in ("n_ctx", "n_parallel", "n_batch"):
        value = getattr(options, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LoadError(f"{name} must be a positive integer, got {value!r}")
    reserved = options.interactive_slots
    if not isinstance(reserved, int) or isinstance(reserved, bool) or not 0 <= reserved < options.n_parallel:
        raise LoadError(f"interactive_slots must be 0 to n_parallel - 1 ({options.n_parallel - 1}), got {reserved!r}")
    if options.n_threads is not None and options.n_threads < 1:
        raise LoadError(f"n_threads must be positive, got {options.n_threads}")
