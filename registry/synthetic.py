"""Small synthetic llama-architecture GGUF models for tests, benchmarks and the offline demo.

No model hub is reachable where ingot is tested, so every GGUF the test suite,
the benchmarks and the README demo load is made here with the `gguf` package.
Random weights give gibberish but exactly the compute and memory of a real
model of the same shape.

A *counting* model (``SyntheticSpec(counting=True)``) has a known greedy
continuation, for exact engine tests. Its attention-output and FFN-down
matrices are zero, so the residual stream of every position is just the token
embedding; every norm weight is 1. The vocabulary ids
``counting_range(spec)`` (``COUNT_START`` .. ``COUNT_START + R - 1`` with
``R = min(n_embd, n_vocab - COUNT_START)``: the plain pieces ``▁a``..``▁z``,
then word pieces such as ``▁th``, ``▁the``) each get a
one-hot embedding on their own axis, and the output matrix maps axis ``s`` to
the logit of the next id in the range, wrapping from the last id back to the
first. RMS norm only rescales a one-hot vector, so the successor wins by
``COUNTING_MARGIN`` logits and every other token scores exactly 0. Every token
outside the range shares the axis of ``COUNT_START + (id - COUNT_START) % R``,
so any prompt has a known continuation too; special and byte tokens are never
produced. ``counting_successor`` and ``counting_sequence`` compute it.
"""

from __future__ import annotations

import itertools
import os
import secrets
import string
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import gguf
import numpy as np

__all__ = [
    "BOS_ID",
    "CHAT_TEMPLATES",
    "COUNTING_MARGIN",
    "COUNT_START",
    "EOS_ID",
    "FIRST_PIECE_ID",
    "MIN_VOCAB",
    "SyntheticSpec",
    "SyntheticVocab",
    "UNK_ID",
    "bench_spec",
    "build_vocab",
    "counting_range",
    "counting_sequence",
    "counting_successor",
    "write_synthetic_gguf",
]

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
FIRST_PIECE_ID = len(_SPECIAL_TOKENS) + 256  # after the specials and <0x00>..<0xFF>

_SPACE = "\u2581"  # SentencePiece's visible space
# Every printable ASCII character is a piece, so ordinary text never needs the
# byte fallback; the word pieces after them are where counting happens.
_SINGLE_CHARS = (
    _SPACE,
    *string.ascii_lowercase,
    *string.ascii_uppercase,
    *string.digits,
    *string.punctuation,
)
COUNT_START = FIRST_PIECE_ID + len(_SINGLE_CHARS)
MIN_VOCAB = COUNT_START + 16

_COMMON_WORDS = (
    "the of and to in is was for on that with as by it at from his an were are which this be or has had "
    "not first one their its new after but who they have her she two been other when there all during into "
    "school time may years more most only over city some world would where later up such used many can "
    "state about national out known university united then made between also both under three year being "
    "part well war through team while age film series season game day work people name way long back home "
    "water place small house number great music life group family each should could local light line main"
).split()

# The logit gap between a counting model's successor token and every other token.
COUNTING_MARGIN = 16.0

_RMS_EPS = 1e-5
_ROPE_FREQ_BASE = 10000.0

CHAT_TEMPLATES: Mapping[str, str] = MappingProxyType(
    {
        "chatml": (
            "{% for message in messages %}"
            "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
            "{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        ),
        "llama2": (
            "{{ bos_token }}"
            "{% for message in messages %}"
            "{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' }}"
            "{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
            "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}"
            "{% endif %}"
            "{% endfor %}"
        ),
    }
)


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape and flavour of a synthetic model; ``None`` fields resolve to llama-like defaults."""

    n_embd: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int | None = None  # None: same as n_head (no grouped-query attention)
    n_ff: int | None = None  # None: ~8/3 * n_embd rounded up like llama does
    n_vocab: int = 512
    n_ctx: int = 2048
    dtype: Literal["f32", "f16"] = "f32"
    chat_template: str | None = None
    counting: bool = False
    seed: int = 0
    name: str = "ingot-synthetic"

    def __post_init__(self) -> None:
        if self.n_head_kv is None:
            object.__setattr__(self, "n_head_kv", self.n_head)
        if self.n_ff is None:
            object.__setattr__(self, "n_ff", _default_n_ff(self.n_embd))
        problems = _spec_problems(self)
        if problems:
            raise ValueError("invalid synthetic model spec: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def n_embd_kv(self) -> int:
        assert self.n_head_kv is not None
        return self.head_dim * self.n_head_kv


def _default_n_ff(n_embd: int) -> int:
    # llama rounds 8/3 * d up to a multiple of 256, which keeps every row
    # K-quant friendly; small widths round to 32 so toy models stay small.
    multiple = 256 if n_embd % 256 == 0 else 32
    hidden = -(-8 * n_embd // 3)
    return -(-hidden // multiple) * multiple


def _spec_problems(spec: SyntheticSpec) -> list[str]:
    problems: list[str] = []
    for field_name in ("n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_ctx"):
        value = getattr(spec, field_name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{field_name} must be a positive integer, got {value!r}")
    if problems:
        return problems
    assert spec.n_head_kv is not None
    if spec.n_embd % spec.n_head:
        problems.append(f"n_embd {spec.n_embd} is not divisible by n_head {spec.n_head}")
    elif spec.head_dim % 2:
        problems.append(f"head size {spec.head_dim} must be even for rotary embeddings")
    if spec.n_head % spec.n_head_kv:
        problems.append(f"n_head {spec.n_head} is not divisible by n_head_kv {spec.n_head_kv}")
    if spec.n_vocab < MIN_VOCAB:
        problems.append(f"n_vocab must be at least {MIN_VOCAB} (specials, bytes, characters), got {spec.n_vocab}")
    if spec.dtype not in ("f32", "f16"):
        problems.append(f"dtype must be 'f32' or 'f16', got {spec.dtype!r}")
    if not spec.name:
        problems.append("name must not be empty")
    return problems


def bench_spec() -> SyntheticSpec:
    """The benchmark model: 1024 wide, 16 layers, 32k vocabulary, f16 (~150 MB once quantized to Q4_K_M)."""
    return SyntheticSpec(
        n_embd=1024, n_layer=16, n_head=16, n_head_kv=4, n_vocab=32000, n_ctx=4096, dtype="f16", name="ingot-bench"
    )


# ---------------------------------------------------------------------------
# vocabulary


@dataclass(frozen=True)
class SyntheticVocab:
    """A SentencePiece vocabulary: token strings, scores and llama token types, index = token id."""

    tokens: tuple[str, ...]
    scores: tuple[float, ...]
    token_types: tuple[int, ...]


def _piece_candidates() -> Iterator[str]:
    letters = string.ascii_lowercase
    yield from _SINGLE_CHARS
    yield from (_SPACE + letter for letter in letters)
    # SPM merges pairs of pieces already in the vocabulary, so a word is only
    # reachable if every prefix on the way is a piece too.
    for prefix in (_SPACE, ""):
        for word in _COMMON_WORDS:
            yield from (prefix + word[:end] for end in range(2, len(word) + 1))
    for length in itertools.count(2):
        for combo in itertools.product(letters, repeat=length):
            piece = "".join(combo)
            yield _SPACE + piece
            yield piece


def build_vocab(n_vocab: int) -> SyntheticVocab:
    """The first ``n_vocab`` tokens of the synthetic SPM vocabulary; every string is unique."""
    if n_vocab < MIN_VOCAB:
        raise ValueError(f"n_vocab must be at least {MIN_VOCAB}, got {n_vocab}")
    n_pieces = n_vocab - FIRST_PIECE_ID
    seen: set[str] = set()
    pieces: list[str] = []
    for piece in _piece_candidates():
        if piece not in seen:
            seen.add(piece)
            pieces.append(piece)
            if len(pieces) == n_pieces:
                break
    tokens = (*_SPECIAL_TOKENS, *(f"<0x{b:02X}>" for b in range(256)), *pieces)
    # Lower scores merge later in SPM; earlier (shorter, commoner) pieces win.
    scores = (0.0,) * FIRST_PIECE_ID + tuple(-float(i + 1) for i in range(n_pieces))
    types = (
        int(gguf.TokenType.UNKNOWN),
        int(gguf.TokenType.CONTROL),
        int(gguf.TokenType.CONTROL),
        *(int(gguf.TokenType.BYTE),) * 256,
        *(int(gguf.TokenType.NORMAL),) * n_pieces,
    )
    return SyntheticVocab(tokens=tokens, scores=scores, token_types=types)


# ---------------------------------------------------------------------------
# counting models


def counting_range(spec: SyntheticSpec) -> range:
    """The token ids a counting model counts through (it wraps from the last back to the first)."""
    return range(COUNT_START, COUNT_START + min(spec.n_embd, spec.n_vocab - COUNT_START))


def counting_successor(spec: SyntheticSpec, token_id: int) -> int:
    """The token a counting model greedily produces after ``token_id`` (any id, in the range or not)."""
    ids = counting_range(spec)
    return ids.start + ((token_id - ids.start) % len(ids) + 1) % len(ids)


def counting_sequence(spec: SyntheticSpec, last_prompt_token: int, n: int) -> list[int]:
    """The ``n`` tokens greedy decoding produces after a prompt ending in ``last_prompt_token``."""
    out: list[int] = []
    token = last_prompt_token
    for _ in range(n):
        token = counting_successor(spec, token)
        out.append(token)
    return out


# ---------------------------------------------------------------------------
# tensors


@dataclass(frozen=True)
class _PlannedTensor:
    name: str
    shape: tuple[int, ...]  # numpy order: ggml's ne reversed
    kind: Literal["norm", "matrix", "zero", "counting_embd", "counting_output"]


def _tensor_plan(spec: SyntheticSpec) -> list[_PlannedTensor]:
    assert spec.n_ff is not None
    d, ff, kv, vocab = spec.n_embd, spec.n_ff, spec.n_embd_kv, spec.n_vocab
    # In a counting model attention output and FFN down are zero, so nothing
    # is ever added to the residual stream: it stays the token embedding.
    sink: Literal["matrix", "zero"] = "zero" if spec.counting else "matrix"
    plan = [_PlannedTensor("token_embd.weight", (vocab, d), "counting_embd" if spec.counting else "matrix")]
    for i in range(spec.n_layer):
        plan += [
            _PlannedTensor(f"blk.{i}.attn_norm.weight", (d,), "norm"),
            _PlannedTensor(f"blk.{i}.attn_q.weight", (d, d), "matrix"),
            _PlannedTensor(f"blk.{i}.attn_k.weight", (kv, d), "matrix"),
            _PlannedTensor(f"blk.{i}.attn_v.weight", (kv, d), "matrix"),
            _PlannedTensor(f"blk.{i}.attn_output.weight", (d, d), sink),
            _PlannedTensor(f"blk.{i}.ffn_norm.weight", (d,), "norm"),
            _PlannedTensor(f"blk.{i}.ffn_gate.weight", (ff, d), "matrix"),
            _PlannedTensor(f"blk.{i}.ffn_up.weight", (ff, d), "matrix"),
            _PlannedTensor(f"blk.{i}.ffn_down.weight", (d, ff), sink),
        ]
    plan += [
        _PlannedTensor("output_norm.weight", (d,), "norm"),
        _PlannedTensor("output.weight", (vocab, d), "counting_output" if spec.counting else "matrix"),
    ]
    return plan


def _storage_dtype(spec: SyntheticSpec, planned: _PlannedTensor) -> type[np.floating]:
    # llama.cpp keeps 1-D tensors (norms) in F32 even in "mostly F16" files.
    if spec.dtype == "f16" and len(planned.shape) > 1:
        return np.float16
    return np.float32


def _tensor_values(spec: SyntheticSpec, planned: _PlannedTensor) -> np.ndarray:
    rows, cols = planned.shape if len(planned.shape) == 2 else (1, planned.shape[0])
    if planned.kind == "norm":
        return np.ones(planned.shape, dtype=np.float32)
    if planned.kind == "zero":
        return np.zeros(planned.shape, dtype=np.float32)
    if planned.kind == "counting_embd":
        ids = counting_range(spec)
        axes = (np.arange(rows) - ids.start) % len(ids)
        values = np.zeros(planned.shape, dtype=np.float32)
        values[np.arange(rows), axes] = 1.0
        return values
    if planned.kind == "counting_output":
        ids = counting_range(spec)
        axes = np.arange(len(ids))
        # RMS norm turns the one-hot embedding into sqrt(n_embd) on its axis.
        values = np.zeros(planned.shape, dtype=np.float32)
        values[ids.start + (axes + 1) % len(ids), axes] = COUNTING_MARGIN / np.sqrt(cols)
        return values
    # A seed per tensor name keeps every tensor independent of plan order.
    rng = np.random.default_rng([spec.seed, zlib.crc32(planned.name.encode())])
    values = rng.standard_normal(planned.shape, dtype=np.float32)
    values *= np.float32(1.0 / np.sqrt(cols))
    return values


# ---------------------------------------------------------------------------
# writing


def _add_metadata(writer: gguf.GGUFWriter, spec: SyntheticSpec) -> None:
    assert spec.n_ff is not None and spec.n_head_kv is not None
    vocab = build_vocab(spec.n_vocab)
    writer.add_name(spec.name)
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16 if spec.dtype == "f16" else gguf.LlamaFileType.ALL_F32))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(spec.n_ctx)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_layer_norm_rms_eps(_RMS_EPS)
    writer.add_rope_dimension_count(spec.head_dim)
    writer.add_rope_freq_base(_ROPE_FREQ_BASE)
    writer.add_vocab_size(spec.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(list(vocab.tokens))
    writer.add_token_scores(list(vocab.scores))
    writer.add_token_types(list(vocab.token_types))
    writer.add_unk_token_id(UNK_ID)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if spec.chat_template:
        writer.add_chat_template(spec.chat_template)


def write_synthetic_gguf(path: str | os.PathLike[str], spec: SyntheticSpec | None = None) -> Path:
    """Write the model ``spec`` describes to ``path`` (atomically) and return the path.

    The same spec always gives the same bytes. Tensors are generated and
    written one at a time, so memory stays near the largest single tensor.
    """
    spec = spec or SyntheticSpec()
    target = Path(path)
    plan = _tensor_plan(spec)
    # Not mkstemp: its 0600 mode would survive the rename; this name is as unique.
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    try:
        writer = gguf.GGUFWriter(tmp, "llama")
        try:
            _add_metadata(writer, spec)
            for planned in plan:
                dtype = np.dtype(_storage_dtype(spec, planned))
                n_bytes = int(np.prod(planned.shape)) * dtype.itemsize
                writer.add_tensor_info(planned.name, planned.shape, dtype, n_bytes)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for planned in plan:
                writer.write_tensor_data(_tensor_values(spec, planned).astype(_storage_dtype(spec, planned)))
        finally:
            writer.close()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
