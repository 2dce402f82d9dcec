"""Batched embeddings on a second llama.cpp context with pooling.

The generation context keeps only logits; embeddings get their own context
(`embeddings=True`, the model's pooling or mean pooling when the model names
none) so `embed()` never disturbs the slots. Texts are packed into as few
`llama_decode` calls as the window allows, one sequence id per text.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence

import llama_cpp

from .errors import ContextOverflowError, EngineError, InvalidRequestError
from .native import Batch, ContextShape, NativeContext, NativeModel, flash_attention_for

__all__ = ["Embedder"]

# Texts decoded together in one call; more sequences buy little on CPU.
MAX_TEXTS_PER_DECODE = 8


class Embedder:
    """Turns texts into pooled embedding vectors; thread safe (one decode at a time)."""

    def __init__(self, model: NativeModel, *, n_ctx: int) -> None:
        self._model = model
        shape = ContextShape(
            n_ctx=n_ctx, n_seq_max=MAX_TEXTS_PER_DECODE, n_batch=n_ctx, kv_unified=True, embeddings=True,
            flash_attn=flash_attention_for(model.options),
        )
        ctx = NativeContext(model, shape)
        if ctx.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_NONE:
            # A generative model names no pooling; mean pooling is what Ollama gives such models.
            ctx.close()
            ctx = NativeContext(model, dataclasses.replace(shape, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN))
        self._ctx = ctx
        self._batch = Batch(ctx.n_batch)
        self.window = min(ctx.n_batch, ctx.n_ctx)
        self._lock = threading.Lock()

    @property
    def n_cells(self) -> int:
        return self._ctx.n_ctx

    def embed(self, texts: Sequence[str], *, normalize: bool) -> list[list[float]]:
        token_lists: list[list[int]] = []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidRequestError(f"text {index} is a {type(text).__name__}, not a string")
            tokens = self._model.tokenize(text, add_bos=True, special=True)
            if not tokens:
                raise InvalidRequestError(f"text {index} is empty; there is nothing to embed")
            if len(tokens) > self.window:
                raise ContextOverflowError(len(tokens), self.window)
            token_lists.append(tokens)
        vectors: list[list[float]] = []
        with self._lock:
            for group in _pack(token_lists, self.window):
                vectors.extend(self._embed_group(group))
        return [_normalized(v) for v in vectors] if normalize else vectors

    def _embed_group(self, group: Sequence[list[int]]) -> list[list[float]]:
        ctx, batch = self._ctx, self._batch
        ctx.clear()
        batch.clear()
        for seq, tokens in enumerate(group):
            for pos, token in enumerate(tokens):
                batch.add(token, pos, seq, True)
        rc = ctx.decode(batch)
        if rc != 0:
            raise EngineError(f"llama_decode failed while embedding (code {rc})")
        n_embd = self._model.n_embd
        out: list[list[float]] = []
        for seq in range(len(group)):
            ptr = llama_cpp.llama_get_embeddings_seq(ctx.ctx, seq)
            if not ptr:
                raise EngineError("this model produced no pooled embedding; it may not support embeddings")
            out.append(ptr[:n_embd])
        ctx.clear()
        return out

    def close(self) -> None:
        with self._lock:
            self._batch.close()
            self._ctx.close()


def _pack(token_lists: Sequence[list[int]], window: int) -> list[list[list[int]]]:
    groups: list[list[list[int]]] = []
    current: list[list[int]] = []
    used = 0
    for tokens in token_lists:
        if current and (used + len(tokens) > window or len(current) == MAX_TEXTS_PER_DECODE):
            groups.append(current)
            current, used = [], 0
        current.append(tokens)
        used += len(tokens)
    if current:
        groups.append(current)
    return groups


def _normalized(vector: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else vector
