"""Helpers shared by the engine tests: model specs, stream collection, expected counting text, a crashing GGUF."""

from __future__ import annotations

import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import gguf
import numpy as np

from ingot.daemon.engine import Chunk, RequestStream
from ingot.registry.synthetic import SyntheticSpec, build_vocab, counting_sequence

COUNTING_SPEC = SyntheticSpec(n_embd=64, n_layer=2, n_vocab=512, counting=True, name="ingot-counting")
RANDOM_SPEC = SyntheticSpec(n_embd=64, n_layer=2, n_vocab=512, seed=7, name="ingot-random")

# A bound on any single wait in these tests, so a bug shows up as a failure, not a hang.
WAIT_S = 30.0


class TextModel(Protocol):
    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = True) -> list[int]: ...
    def detokenize(self, tokens: list[int]) -> str: ...


@dataclass(frozen=True)
class Collected:
    text: str
    chunks: list[Chunk]

    @property
    def final(self) -> Chunk:
        return self.chunks[-1]


def collect(stream: RequestStream) -> Collected:
    """Read a stream to its end (each wait bounded); the last chunk must be the done one."""
    chunks: list[Chunk] = []
    while not stream.finished:
        try:
            chunks.append(stream.get(timeout=WAIT_S))
        except queue.Empty:
            raise AssertionError(f"no chunk within {WAIT_S} s") from None
    assert chunks[-1].done and all(not c.done for c in chunks[:-1])
    return Collected("".join(c.text for c in chunks), chunks)


def counting_text(model: TextModel, prompt: str, n: int, *, add_bos: bool = True) -> str:
    """What a counting model greedily writes after `prompt`: n tokens counting up from its last token."""
    prompt_tokens = model.tokenize(prompt, add_bos=add_bos)
    expected = counting_sequence(COUNTING_SPEC, prompt_tokens[-1], n)
    full = model.detokenize(prompt_tokens + expected)
    head = model.detokenize(prompt_tokens)
    assert full.startswith(head)
    return full[len(head) :]


def counting_pieces(model: TextModel, prompt: str, n: int) -> list[str]:
    """The text each of the n counted tokens adds, in order."""
    return [counting_text(model, prompt, i + 1)[len(counting_text(model, prompt, i)) :] for i in range(n)]


def write_aborting_gguf(path: Path) -> Path:
    """A structurally valid GGUF whose vocabulary repeats a token string: llama.cpp asserts and aborts."""
    spec = SyntheticSpec(n_embd=64, n_layer=1, n_vocab=512)
    vocab = build_vocab(spec.n_vocab)
    tokens = list(vocab.tokens)
    tokens[-1] = tokens[-2]
    d, ff, n_vocab = spec.n_embd, 192, spec.n_vocab
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("ingot-aborting")
    writer.add_context_length(256)
    writer.add_embedding_length(d)
    writer.add_block_count(1)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(d // 4)
    writer.add_vocab_size(n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(list(vocab.scores))
    writer.add_token_types(list(vocab.token_types))
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    shapes = {
        "token_embd.weight": (n_vocab, d),
        "blk.0.attn_norm.weight": (d,),
        "blk.0.attn_q.weight": (d, d),
        "blk.0.attn_k.weight": (d, d),
        "blk.0.attn_v.weight": (d, d),
        "blk.0.attn_output.weight": (d, d),
        "blk.0.ffn_norm.weight": (d,),
        "blk.0.ffn_gate.weight": (ff, d),
        "blk.0.ffn_up.weight": (ff, d),
        "blk.0.ffn_down.weight": (d, ff),
        "output_norm.weight": (d,),
        "output.weight": (n_vocab, d),
    }
    for name, shape in shapes.items():
        writer.add_tensor(name, np.zeros(shape, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
