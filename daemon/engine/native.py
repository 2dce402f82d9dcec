"""Thin owners of llama.cpp's native objects: the model (with its vocabulary), a context, a batch.

Each class frees what it allocated exactly once (`close()` is idempotent) and
turns NULL returns into `LoadError` / `EngineError` carrying what llama.cpp
logged. Nothing here schedules or samples; that is `engine.py`'s job.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

import llama_cpp

from .errors import EngineError, InvalidRequestError, LoadError
from .llama_log import llama_log
from .types import LoadOptions

__all__ = ["Batch", "NativeContext", "NativeModel", "default_threads"]

# Words llama.cpp / ggml use when an allocation fails (CPU, CUDA, Metal, Vulkan).
_OOM_MARKERS = ("out of memory", "failed to allocate", "unable to allocate", "cudamalloc failed", "oom")


@functools.cache
def _init_backend() -> None:
    # Once per process; llama.cpp keeps its backend registry globally.
    llama_cpp.llama_backend_init()


def default_threads() -> tuple[int, int]:
    """(decode threads, batch threads) when `LoadOptions.n_threads` is not set.

    llama.cpp uses the first for ubatches of one token (one stream decoding alone)
    and the second for everything larger (several streams, prompts). Decode
    gets one thread per physical core this process may run on (llama.cpp's own
    default; a second hyperthread only adds contention to a memory-bound
    step), batches one per logical CPU (llama-cpp-python's default). Both are
    capped by the affinity mask and a cgroup CPU quota: ggml's threads meet at a
    barrier after every operation, so one thread more than there are CPUs to
    run it stalls all of them.
    """
    logical = _usable_cpus()
    physical = _physical_cores(logical)
    limit = _cgroup_cpu_limit()
    if limit is not None:
        logical = logical[: max(limit, 1)]
        physical = min(physical, max(limit, 1))
    return max(physical, 1), max(len(logical), 1)


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def _physical_cores(cpus: Sequence[int]) -> int:
    """Distinct (package, core) pairs among `cpus`; half the CPUs when the topology is not readable."""
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        topology = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with open(f"{topology}/physical_package_id") as package, open(f"{topology}/core_id") as core:
                cores.add((package.read().strip(), core.read().strip()))
        except OSError:
            return max(len(cpus) // 2, 1)
    return len(cores) or max(len(cpus) // 2, 1)


def _cgroup_cpu_limit() -> int | None:
    """CPUs a cgroup v2 quota allows (rounded up), or None without a quota."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(-(-int(quota) // int(period)), 1)


def _looks_like_oom(problems: Sequence[str]) -> bool:
    text = " ".join(problems).lower()
    return any(marker in text for marker in _OOM_MARKERS)


def _why(problems: Sequence[str]) -> str:
    return f": {'; '.join(problems[-4:])}" if problems else ""


class NativeModel:
    """A loaded `llama_model`, its vocabulary and LoRA adapters."""

    def __init__(self, options: LoadOptions) -> None:
        _init_backend()
        self.options = options
        path = options.model_path
        if not os.path.isfile(path):
            raise LoadError(f"model file not found: {path}; check the path or pull the model again")
        if not os.access(path, os.R_OK):
            raise LoadError(f"model file is not readable: {path}; check its permissions")
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = options.n_gpu_layers
        params.main_gpu = options.main_gpu
        params.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP if options.use_mmap else llama_cpp.LLAMA_LOAD_MODE_NONE
        self._tensor_split = None
        if options.tensor_split:
            n_devices = llama_cpp.llama_max_devices()
            if len(options.tensor_split) > n_devices:
                raise LoadError(f"tensor_split names {len(options.tensor_split)} devices; this build supports {n_devices}")
            # Referenced from self: llama.cpp reads it during the load call.
            self._tensor_split = (ctypes.c_float * n_devices)(*options.tensor_split)
            params.tensor_split = self._tensor_split
        log = llama_log()
        mark = log.mark()
        model = llama_cpp.llama_model_load_from_file(path.encode(), params)
        if not model:
            problems = log.problems_since(mark)
            raise LoadError(
                f"llama.cpp could not load {path}{_why(problems)}",
                out_of_memory=_looks_like_oom(problems),
            )
        self.model = model
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_embd = llama_cpp.llama_model_n_embd(model)
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(model)
        self._adapters: list[ctypes.c_void_p] = []
        try:
            for adapter_path in options.adapters:
                mark = log.mark()
                adapter = llama_cpp.llama_adapter_lora_init(model, adapter_path.encode())
                if not adapter:
                    raise LoadError(f"llama.cpp could not load adapter {adapter_path}{_why(log.problems_since(mark))}")
                self._adapters.append(adapter)
        except BaseException:
            self.close()
            raise
        self._piece = ctypes.create_string_buffer(256)
        # A vocabulary never changes: each token's piece and end-of-generation flag are asked
        # of llama.cpp once, then answered from here (the engine thread asks for every token).
        self._pieces: dict[int, bytes] = {}
        self._eog: dict[int, bool] = {}

    # -- facts --------------------------------------------------------------------------------

    def size_bytes(self) -> int:
        return int(llama_cpp.llama_model_size(self.model))

    def kv_bytes_per_cell(self) -> int:
        """K and V bytes one cache cell takes over all layers (F16 cache, llama.cpp's default)."""
        n_head = max(llama_cpp.llama_model_n_head(self.model), 1)
        n_head_kv = llama_cpp.llama_model_n_head_kv(self.model)
        n_layer = llama_cpp.llama_model_n_layer(self.model)
        head_dim = self.n_embd // n_head
        return 2 * n_layer * head_dim * n_head_kv * 2

    # -- text <-> tokens ----------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8  # a token covers at least one byte, plus BOS/EOS
        while True:
            out = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), out, capacity, add_bos, special)
            if n >= 0:
                return list(out[:n])
            capacity = -n

    def token_to_piece(self, token: int) -> bytes:
        """The bytes one token adds to the text (control tokens render as nothing)."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._native_piece(token)
        return piece

    def _native_piece(self, token: int) -> bytes:
        buf = self._piece
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:  # a piece longer than the buffer: rare, so allocate only then
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return ctypes.string_at(buf, n)

    def detokenize(self, tokens: Sequence[int]) -> str:
        self.check_tokens(tokens)
        if not tokens:
            return ""
        arr = (llama_cpp.llama_token * len(tokens))(*tokens)
        capacity = 16 * len(tokens) + 16
        while True:
            buf = ctypes.create_string_buffer(capacity)
            n = llama_cpp.llama_detokenize(self.vocab, arr, len(tokens), buf, capacity, False, False)
            if n >= 0:
                return buf.raw[:n].decode("utf-8", errors="replace")
            capacity = -n

    def check_tokens(self, tokens: Sequence[int]) -> None:
        # An out-of-range id makes llama.cpp throw through its C API, which aborts the process.
        for token in tokens:
            if not isinstance(token, int) or not 0 <= token < self.n_vocab:
                raise InvalidRequestError(f"token id {token!r} is outside the vocabulary (0..{self.n_vocab - 1})")

    def is_eog(self, token: int) -> bool:
        eog = self._eog.get(token)
        if eog is None:
            eog = self._eog[token] = bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))
        return eog

    # -- lifetime -----------------------------------------------------------------------------

    def apply_adapters(self, ctx: ctypes.c_void_p) -> None:
        if not self._adapters:
            return
        arr = (llama_cpp.llama_adapter_lora_p_ctypes * len(self._adapters))(*self._adapters)
        scales = (ctypes.c_float * len(self._adapters))(*([1.0] * len(self._adapters)))
        if llama_cpp.llama_set_adapters_lora(ctx, arr, len(self._adapters), scales) != 0:
            raise LoadError("llama.cpp refused the LoRA adapters for this model")

    def close(self) -> None:
        for adapter in self._adapters:
            llama_cpp.llama_adapter_lora_free(adapter)
        self._adapters.clear()
        model = getattr(self, "model", None)
        if model:
            llama_cpp.llama_model_free(model)
            self.model = None


@dataclass(frozen=True)
class ContextShape:
    """What a context was asked for; llama.cpp may round n_ctx, so read sizes back from the context."""

    n_ctx: int  # total cells
    n_seq_max: int
    n_batch: int
    kv_unified: bool
    embeddings: bool = False
    pooling_type: int = llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED
    flash_attn: int = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO


def flash_attention_for(options: LoadOptions) -> int:
    """Flash attention off on the CPU, llama.cpp's choice with layers on a GPU.

    llama.cpp's CPU flash-attention kernel takes a different path for larger
    ubatches, so results would depend on how a sequence was chunked or batched
    with others; without it, logits and embeddings of quantized models are
    bit-identical however they are batched (and equal llama-cpp-python's
    defaults). GPU kernels are not batch-invariant anyway, and there flash
    attention saves a lot of memory.
    """
    if options.n_gpu_layers == 0:
        return llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    return llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO


class NativeContext:
    """A `llama_context` over a `NativeModel`, with its memory (KV cache) handle."""

    def __init__(self, model: NativeModel, shape: ContextShape) -> None:
        options = model.options
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = shape.n_ctx
        params.n_batch = shape.n_batch
        params.n_ubatch = shape.n_batch
        params.n_seq_max = shape.n_seq_max
        params.kv_unified = shape.kv_unified
        threads, threads_batch = default_threads()
        params.n_threads = options.n_threads or threads
        params.n_threads_batch = options.n_threads or threads_batch
        params.embeddings = shape.embeddings
        params.pooling_type = shape.pooling_type
        params.flash_attn_type = shape.flash_attn
        params.no_perf = True
        log = llama_log()
        mark = log.mark()
        ctx = llama_cpp.llama_init_from_model(model.model, params)
        if not ctx:
            problems = log.problems_since(mark)
            raise LoadError(
                f"llama.cpp could not create a context of {shape.n_ctx} tokens for {options.model_path}{_why(problems)}",
                out_of_memory=_looks_like_oom(problems),
            )
        self.ctx = ctx
        self.memory = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = llama_cpp.llama_n_ctx(ctx)
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(ctx)
        self.n_seq_max = llama_cpp.llama_n_seq_max(ctx)
        self.n_batch = llama_cpp.llama_n_batch(ctx)
        try:
            model.apply_adapters(ctx)
        except BaseException:
            self.close()
            raise

    def pooling_type(self) -> int:
        return int(llama_cpp.llama_pooling_type(self.ctx))

    def seq_rm(self, seq: int, p0: int, p1: int = -1) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self.memory, seq, p0, p1))

    def clear(self) -> None:
        if self.memory:
            llama_cpp.llama_memory_clear(self.memory, True)

    def decode(self, batch: Batch) -> int:
        return int(llama_cpp.llama_decode(self.ctx, batch.batch))

    def close(self) -> None:
        ctx = getattr(self, "ctx", None)
        if ctx:
            llama_cpp.llama_free(ctx)
            self.ctx = None


class Batch:
    """A reusable `llama_batch` of up to `capacity` tokens, one sequence id per token.

    The arrays are Python-owned ctypes arrays rather than `llama_batch_init`'s
    (which gives every token its own malloc'd sequence-id array): one flat array
    holds each token's sequence id, so a prompt chunk is written with a few
    slice assignments instead of five ctypes stores per token.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise EngineError(f"a batch needs room for at least one token, not {capacity}")
        self.capacity = capacity
        self._token = (llama_cpp.llama_token * capacity)()
        self._pos = (llama_cpp.llama_pos * capacity)()
        self._n_seq_id = (ctypes.c_int32 * capacity)(*([1] * capacity))
        self._seq = (llama_cpp.llama_seq_id * capacity)()
        size = ctypes.sizeof(llama_cpp.llama_seq_id)
        base = ctypes.addressof(self._seq)
        seq_p = ctypes.POINTER(llama_cpp.llama_seq_id)
        # Token i's sequence-id list is the one-element slice self._seq[i].
        self._seq_ptrs = (seq_p * capacity)(*(ctypes.cast(base + i * size, seq_p) for i in range(capacity)))
        self._logits = (ctypes.c_int8 * capacity)()
        self.batch = llama_cpp.llama_batch(
            n_tokens=0,
            token=ctypes.cast(self._token, ctypes.POINTER(llama_cpp.llama_token)),
            embd=None,
            pos=ctypes.cast(self._pos, ctypes.POINTER(llama_cpp.llama_pos)),
            n_seq_id=ctypes.cast(self._n_seq_id, ctypes.POINTER(ctypes.c_int32)),
            seq_id=ctypes.cast(self._seq_ptrs, ctypes.POINTER(seq_p)),
            logits=ctypes.cast(self._logits, ctypes.POINTER(ctypes.c_int8)),
        )
        self.n_tokens = 0

    def clear(self) -> None:
        self.n_tokens = 0
        self.batch.n_tokens = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append one token; returns its index in the batch (what sampling needs)."""
        i = self.n_tokens
        self._token[i] = token
        self._pos[i] = pos
        self._seq[i] = seq
        self._logits[i] = logits
        self.n_tokens = self.batch.n_tokens = i + 1
        return i

    def add_run(self, tokens: Sequence[int], pos0: int, seq: int, logits_last: bool) -> int:
        """Append consecutive tokens of one sequence; returns the index of the last one."""
        n = len(tokens)
        if n == 0:
            raise ValueError("add_run needs at least one token")
        i = self.n_tokens
        end = i + n
        if end > self.capacity:
            raise IndexError(f"{n} more tokens do not fit a batch of {self.capacity} holding {i}")
        self._token[i:end] = tokens
        self._pos[i:end] = range(pos0, pos0 + n)
        self._seq[i:end] = [seq] * n
        self._logits[i:end] = bytes(n)
        self._logits[end - 1] = logits_last
        self.n_tokens = self.batch.n_tokens = end
        return end - 1

    def close(self) -> None:
        # Nothing native to free: the arrays belong to this object.
        self.n_tokens = 0
