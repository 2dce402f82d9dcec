"""Per-request native sampler chains built from `SamplingOptions`.

The chain runs entirely in llama.cpp (no Python per candidate token):
penalties -> grammar -> top_k -> typical -> top_p -> min_p -> temperature ->
dist(seed), or penalties -> grammar -> greedy when the temperature is 0 -- the
order llama-cpp-python's `Llama` uses, so the same options sample the same way.
Stages that would be no-ops are left out.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import llama_cpp
from llama_cpp.llama_grammar import JSON_GBNF

from .errors import InvalidRequestError
from .llama_log import llama_log
from .types import SamplingOptions

__all__ = ["SamplerChain", "resolve_seed", "validate_sampling"]

_UINT32 = 0xFFFFFFFF


def validate_sampling(options: SamplingOptions) -> None:
    """Raise InvalidRequestError naming the first option the engine cannot run."""
    floats = {
        "temperature": options.temperature,
        "top_p": options.top_p,
        "min_p": options.min_p,
        "typical_p": options.typical_p,
        "repeat_penalty": options.repeat_penalty,
        "presence_penalty": options.presence_penalty,
        "frequency_penalty": options.frequency_penalty,
    }
    for name, value in floats.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise InvalidRequestError(f"{name} must be a finite number, got {value!r}")
    for name in ("top_p", "min_p", "typical_p"):
        if not 0.0 <= floats[name] <= 1.0:
            raise InvalidRequestError(f"{name} must be between 0 and 1, got {floats[name]}")
    if options.repeat_penalty < 0:
        raise InvalidRequestError(f"repeat_penalty must not be negative, got {options.repeat_penalty}")
    for name in ("top_k", "repeat_last_n", "num_predict"):
        value = getattr(options, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequestError(f"{name} must be an integer, got {value!r}")
    if options.repeat_last_n < -1:
        raise InvalidRequestError(f"repeat_last_n must be -1 (whole context), 0 (off) or positive, got {options.repeat_last_n}")
    if options.seed is not None and (not isinstance(options.seed, int) or isinstance(options.seed, bool)):
        raise InvalidRequestError(f"seed must be an integer, got {options.seed!r}")
    for stop in options.stop:
        if not isinstance(stop, str) or not stop:
            raise InvalidRequestError(f"stop sequences must be non-empty strings, got {stop!r}")


def resolve_seed(request_seed: int | None, load_seed: int | None) -> int:
    """The dist sampler's seed: the request's, else the model's, else a fresh random one.

    Negative seeds mean "random" (Ollama's -1); llama.cpp's own "random" value
    0xFFFFFFFF is never passed through, so a resolved seed is always reproducible.
    """
    for seed in (request_seed, load_seed):
        if seed is not None and seed >= 0:
            resolved = seed & _UINT32
            return resolved if resolved != _UINT32 else 0
    return random.SystemRandom().randrange(_UINT32)


class SamplerChain:
    """One request's `llama_sampler` chain; `close()` frees it (and every stage it owns)."""

    def __init__(
        self,
        *,
        vocab: llama_cpp.llama_vocab_p,
        n_vocab: int,
        n_ctx_seq: int,
        options: SamplingOptions,
        seed: int,
    ) -> None:
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        self.chain = llama_cpp.llama_sampler_chain_init(params)
        self._penalties = None
        try:
            self._build(vocab, n_vocab, n_ctx_seq, options, seed)
        except BaseException:
            self.close()
            raise

    def _add(self, sampler: llama_cpp.llama_sampler_p) -> llama_cpp.llama_sampler_p:
        llama_cpp.llama_sampler_chain_add(self.chain, sampler)  # the chain owns it from here
        return sampler

    def _build(self, vocab: llama_cpp.llama_vocab_p, n_vocab: int, n_ctx_seq: int, o: SamplingOptions, seed: int) -> None:
        last_n = n_ctx_seq if o.repeat_last_n == -1 else o.repeat_last_n
        penalized = o.repeat_penalty != 1.0 or o.presence_penalty != 0.0 or o.frequency_penalty != 0.0
        if penalized and last_n > 0:
            self._penalties = self._add(
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab, last_n, o.repeat_penalty, o.frequency_penalty, o.presence_penalty
                )
            )
            self.penalty_window = last_n
        grammar = o.grammar if o.grammar is not None else (JSON_GBNF if o.json_output else None)
        if grammar is not None:
            log = llama_log()
            mark = log.mark()
            sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
            if not sampler:
                problems = log.problems_since(mark)
                detail = f": {'; '.join(problems[-3:])}" if problems else ""
                raise InvalidRequestError(f"the grammar does not parse{detail}; check its GBNF (the start rule is 'root')")
            self._add(sampler)
        if o.temperature <= 0.0:
            self._add(llama_cpp.llama_sampler_init_greedy())
            return
        if o.top_k > 0:
            self._add(llama_cpp.llama_sampler_init_top_k(o.top_k))
        if o.typical_p < 1.0:
            self._add(llama_cpp.llama_sampler_init_typical(o.typical_p, 1))
        if o.top_p < 1.0:
            self._add(llama_cpp.llama_sampler_init_top_p(o.top_p, 1))
        if o.min_p > 0.0:
            self._add(llama_cpp.llama_sampler_init_min_p(o.min_p, 1))
        self._add(llama_cpp.llama_sampler_init_temp(o.temperature))
        self._add(llama_cpp.llama_sampler_init_dist(seed))

    def prime_penalties(self, prompt: Sequence[int]) -> None:
        """Let repeat/presence/frequency penalties see the end of the prompt (as Ollama does).

        Only the penalties stage is fed: a grammar must not see prompt tokens.
        """
        if self._penalties is None:
            return
        for token in prompt[-self.penalty_window :]:
            llama_cpp.llama_sampler_accept(self._penalties, token)

    def sample(self, ctx: llama_cpp.llama_context_p, index: int) -> int:
        """Sample from the logits of batch position `index` and accept the token into every stage."""
        return int(llama_cpp.llama_sampler_sample(self.chain, ctx, index))

    def close(self) -> None:
        if self.chain:
            llama_cpp.llama_sampler_free(self.chain)
            self.chain = None
            self._penalties = None
