"""Errors a runner reports; the daemon maps each onto one gRPC / HTTP status."""

from __future__ import annotations


class EngineError(Exception):
    """Base of every engine error; str() is the message shown to the user."""


class LoadError(EngineError):
    """The model could not be loaded (bad file, not enough memory, llama.cpp refused it)."""

    def __init__(self, message: str, *, out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.out_of_memory = out_of_memory


class RunnerDiedError(EngineError):
    """The runner process ended while requests were in flight; retrying starts a fresh one."""


class QueueFullError(EngineError):
    """Every slot is busy and the wait queue is at its bound."""


class ContextOverflowError(EngineError):
    """The prompt does not fit in the context window and may not be truncated."""

    def __init__(self, prompt_tokens: int, n_ctx: int, reserved: int = 0) -> None:
        over = prompt_tokens + reserved - n_ctx
        super().__init__(
            f"prompt is {prompt_tokens} tokens but the context window is {n_ctx}"
            f"{f' ({reserved} kept free for the reply)' if reserved else ''}: over by {over} tokens; "
            "shorten the prompt or raise num_ctx"
        )
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx
        self.over_by = over


class InvalidRequestError(EngineError):
    """A request the engine cannot run as given (bad grammar, bad option value)."""
