"""Request metrics for every door (gRPC, OpenAI, Ollama): counted once, where the servicers finish a request.

The servicers hand each finished request's `RequestRecord` to `RequestMetrics.observe`,
and every streamed piece to `generated`, so `/metrics` and the live tokens/s figures
cover gRPC and HTTP clients alike.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from ingot.daemon.requestlog import RequestRecord

from .rates import TokenRates

__all__ = ["RequestMetrics"]

# Seconds. TTFT and queue waits span a warm slot (ms) to a cold load of a large model (minutes).
_WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)
_TPS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)
_GENERATIONS = ("Generate", "Chat")
# Outcomes of requests that may never have resolved their model: the name is the client's text,
# and a label per typo (or per scanner probe) would grow without bound.
_UNRESOLVED = ("not_found", "invalid_argument")


def outcome_of(record: RequestRecord) -> str:
    """ok, cancelled (by the client, a disconnect or shutdown), or the gRPC status code name in lower case."""
    if record.outcome == "ok" and record.done_reason == "cancelled":
        return "cancelled"
    return record.outcome


class RequestMetrics:
    def __init__(self, registry: CollectorRegistry, rates: TokenRates) -> None:
        self.rates = rates
        self.requests = Counter(
            "ingot_requests", "Inference requests finished, by model, API (grpc, openai, ollama), RPC and outcome.",
            ["model", "api", "rpc", "outcome"], registry=registry,
        )
        self.generations = Counter(
            "ingot_generations", "Generations finished, by how they ended (stop, length, cancelled, load, ...).",
            ["api", "model", "done_reason"], registry=registry,
        )
        self.prompt_tokens = Counter(
            "ingot_prompt_tokens", "Prompt tokens evaluated (cached prefix tokens included).", ["model", "api"],
            registry=registry,
        )
        self.cached_prompt_tokens = Counter(
            "ingot_cached_prompt_tokens", "Prompt tokens reused from an earlier request's prefix.", ["model"],
            registry=registry,
        )
        self.generated_tokens = Counter(
            "ingot_generated_tokens", "Tokens generated.", ["model", "api"], registry=registry
        )
        self.time_to_first_token = Histogram(
            "ingot_time_to_first_token_seconds", "From a request's arrival to its first generated token.",
            ["model"], buckets=_WAIT_BUCKETS, registry=registry,
        )
        self.time_per_output_token = Histogram(
            "ingot_time_per_output_token_seconds",
            "Decoding time per generated token, one observation per request (its mean).",
            ["model"], buckets=_TOKEN_BUCKETS, registry=registry,
        )
        self.tokens_per_second = Histogram(
            "ingot_generation_tokens_per_second", "Decode speed of each generation (tokens / decoding time).",
            ["model"], buckets=_TPS_BUCKETS, registry=registry,
        )
        self.queue_wait = Histogram(
            "ingot_queue_wait_seconds", "Time a request waited for admission and its model's load.",
            ["model"], buckets=_WAIT_BUCKETS, registry=registry,
        )

    def generated(self, model: str, tokens: int) -> None:
        """Tokens streamed just now (live tokens/s; the counters are updated once the request ends)."""
        self.rates.add(model, tokens)

    def observe(self, record: RequestRecord) -> None:
        api, outcome = record.api, outcome_of(record)
        model = "unknown" if outcome in _UNRESOLVED else record.model
        self.requests.labels(model, api, record.rpc.lower(), outcome).inc()
        if record.rpc not in _GENERATIONS and record.rpc != "Embed":
            return
        if record.prompt_tokens:
            self.prompt_tokens.labels(model, api).inc(record.prompt_tokens)
        if record.cached_prompt_tokens:
            self.cached_prompt_tokens.labels(model).inc(record.cached_prompt_tokens)
        if record.queue_ns:
            self.queue_wait.labels(model).observe(record.queue_ns / 1e9)
        if record.rpc not in _GENERATIONS:
            return
        # A gRPC client that cancels ends the stream before its last chunk: no done_reason then.
        # Failures (queue full, runner died) are in ingot_requests_total by their status.
        done_reason = record.done_reason or ("cancelled" if outcome == "cancelled" else "")
        if done_reason:
            self.generations.labels(api, model, done_reason).inc()
        tokens = record.completion_tokens
        if tokens:
            self.generated_tokens.labels(model, api).inc(tokens)
        if tokens and record.time_to_first_token_ns:
            self.time_to_first_token.labels(model).observe(record.time_to_first_token_ns / 1e9)
        if tokens and record.eval_ns:
            seconds = record.eval_ns / 1e9
            self.time_per_output_token.labels(model).observe(seconds / tokens)
            self.tokens_per_second.labels(model).observe(tokens / seconds)
