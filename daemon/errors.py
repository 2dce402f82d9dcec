"""Errors the daemon itself raises (the engine and the registry have their own trees).

::

    IngotError (ingot.registry.errors)
    └── DaemonError
        ├── InvalidOptionError (ValueError)   a request field or option with a bad value; names it
        ├── ModelNotLoadedError (LookupError) Unload/stop of a model that is not loaded
        ├── InsufficientMemoryError           the model does not fit, even after evicting idle ones
        ├── ModelLoadFailedError              the runner refused the model (bad file, bad options)
        ├── GenerationFailedError             the runner ended a reply with an error (KV cache full, closing)
        ├── TemplateBudgetExceededError       a model's template went over its render budget; names model and limit
        ├── ShuttingDownError                 the daemon is draining; retry against a new one
        └── RequestCancelledError             the client went away or its deadline passed

Which gRPC status each one becomes is decided in `ingot.daemon.status`, the
one place errors are mapped.
"""

from __future__ import annotations

from ingot.registry.errors import IngotError

__all__ = [
    "DaemonError",
    "GenerationFailedError",
    "InsufficientMemoryError",
    "InvalidOptionError",
    "ModelLoadFailedError",
    "ModelNotLoadedError",
    "RequestCancelledError",
    "ShuttingDownError",
    "TemplateBudgetExceededError",
    "format_bytes",
]


def format_bytes(n: int) -> str:
    """Human units for memory sizes in messages: 1.5 GiB, 300 MiB, 12 KiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class DaemonError(IngotError):
    """Base of the daemon's own errors."""


class InvalidOptionError(DaemonError, ValueError):
    """A request option or field with a value the daemon cannot use."""

    def __init__(self, option: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"option {option!r}: {message}", hint=hint)
        self.option = option


class PromptTooLongError(DaemonError, ValueError):
    """A prompt whose size in bytes alone shows it cannot fit the context window (see prompt_size.py)."""

    def __init__(self, *, n_bytes: int, fewest_tokens: int, longest_token_bytes: int, n_ctx: int) -> None:
        super().__init__(
            f"the prompt is {n_bytes} bytes, so at least {fewest_tokens} tokens (no token of this model is "
            f"longer than {longest_token_bytes} bytes), but the context window is {n_ctx} tokens; it was "
            "refused before tokenizing",
            hint="shorten the prompt or raise num_ctx",
        )
        self.n_bytes = n_bytes
        self.fewest_tokens = fewest_tokens
        self.n_ctx = n_ctx


class ModelNotLoadedError(DaemonError, LookupError):
    """A model named in Unload is not loaded."""


class InsufficientMemoryError(DaemonError):
    """A model does not fit in the memory left, even after every idle model was unloaded."""

    def __init__(self, model: str, *, needed_bytes: int, available_bytes: int, tried: tuple[str, ...] = ()) -> None:
        attempts = f" (tried: {'; '.join(tried)})" if tried else ""
        if needed_bytes <= available_bytes:
            # The estimate fit, yet llama.cpp could not allocate: a limit the free-memory
            # reading does not see (ulimit -v, a cgroup, another process growing meanwhile).
            message = (
                f"model {model} ran out of memory while loading, although it should need about "
                f"{format_bytes(needed_bytes)} and {format_bytes(available_bytes)} looked free{attempts}"
            )
            hint = (
                "check process limits (ulimit -v, container memory limits), lower num_ctx, "
                "or use a smaller quantization"
            )
        else:
            message = (
                f"model {model} needs about {format_bytes(needed_bytes)} of memory but only "
                f"{format_bytes(available_bytes)} is available{attempts}"
            )
            hint = "unload other models (ingot stop NAME), lower num_ctx, or use a smaller quantization"
        super().__init__(message, hint=hint)
        self.needed_bytes = needed_bytes
        self.available_bytes = available_bytes
        self.tried = tried


class ModelLoadFailedError(DaemonError):
    """The runner could not load the model for a reason other than memory."""


class GenerationFailedError(DaemonError):
    """The runner ended a generation with an error chunk; retrying usually works."""


class TemplateBudgetExceededError(DaemonError):
    """A model's template went over the render budget (`templates:` in config.yaml).

    `limit` is the config key of the limit hit (``max_output_bytes``...);
    `detail` the template error itself, with its position in the template.
    """

    def __init__(self, model: str, limit: str, detail: str) -> None:
        super().__init__(
            f"model {model}: its prompt template went over the render budget ({limit}): {detail}",
            hint="the package's TEMPLATE (or its GGUF chat template) runs away; fix or replace the template "
            f"(ingot create with a TEMPLATE line), or raise templates.{limit} in $INGOT_HOME/config.yaml",
        )
        self.model = model
        self.limit = limit


class ShuttingDownError(DaemonError):
    """The daemon is shutting down and takes no new requests."""

    def __init__(self) -> None:
        super().__init__("the ingot daemon is shutting down", hint="retry once it is running again")


class RequestCancelledError(DaemonError):
    """The request ended early: the client cancelled it or its deadline passed."""

    def __init__(self, message: str = "request cancelled by the client", *, deadline: bool = False) -> None:
        super().__init__(message)
        self.deadline = deadline
