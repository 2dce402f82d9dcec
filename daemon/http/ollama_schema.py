"""Request and response bodies of the Ollama-compatible endpoints (`/api/...`), as pydantic models.

Field names and meanings follow Ollama's docs/api.md, so clients written for
Ollama work unchanged. Durations are nanoseconds; `created_at` is RFC 3339.
Requests allow extra fields (newer Ollama clients send ones ingot ignores);
the legacy `name` is accepted wherever `model` is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .tools import ToolDefinition

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "CopyRequest",
    "DeleteRequest",
    "EmbedRequest",
    "EmbedResponse",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "GenerateRequest",
    "GenerateResponse",
    "ListResponse",
    "OllamaErrorBody",
    "ProcessResponse",
    "ProgressResponse",
    "PullRequest",
    "PushRequest",
    "ShowRequest",
    "ShowResponse",
    "VersionResponse",
]

_OPTIONS_HELP = "Model parameters by name (num_ctx, temperature, stop, ...); a bad one is a 400 naming it."
_KEEP_ALIVE_HELP = "How long the model stays loaded afterwards: '5m', a number of seconds, 0 (unload), -1 (forever)."
_FORMAT_HELP = '"json", or a JSON schema the output must match.'


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str | None = Field(default=None, description="The model, e.g. `llama3` (required; `name` also works).")
    name: str | None = Field(default=None, description="Legacy spelling of `model`.")


class _Inference(_Request):
    stream: bool | None = Field(default=None, description="false: one JSON reply instead of NDJSON lines.")
    options: dict[str, Any] | None = Field(default=None, description=_OPTIONS_HELP)
    keep_alive: str | float | None = Field(default=None, description=_KEEP_ALIVE_HELP)
    format: str | dict[str, Any] | None = Field(default=None, description=_FORMAT_HELP)
    think: bool | str | None = Field(
        default=None, description="true, false, or a level (low, medium, high); unset: on if the model thinks.")


class GenerateRequest(_Inference):
    prompt: str | None = Field(default=None, description="Empty or absent: only load the model.")
    system: str | None = None
    template: str | None = None
    raw: bool | None = None
    suffix: str | None = Field(default=None, description="Not supported: must be absent or empty.")
    context: list[int] | None = Field(default=None, description="Not supported: must be absent or empty.")
    images: list[str] | None = Field(default=None, description="Not supported: must be absent or empty.")


class CallFunction(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int | None = None
    name: str
    arguments: dict[str, Any] | str | None = Field(default=None, description="An object (a JSON string works too).")


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    function: CallFunction


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(description="system, user, assistant or tool.")
    content: str | None = None
    thinking: str | None = Field(default=None, description="An assistant turn's reasoning.")
    images: list[str] | None = Field(default=None, description="Not supported: must be absent or empty.")
    tool_calls: list[ToolCall] | None = Field(default=None, description="An assistant turn's calls.")
    tool_name: str | None = Field(default=None, description="A tool result: the function that produced it.")
    tool_call_id: str | None = Field(default=None, description="A tool result: the call it answers.")


class ChatRequest(_Inference):
    messages: list[ChatMessage] | None = Field(default=None, description="Empty or absent: only load the model.")
    tools: list[ToolDefinition] | None = Field(
        default=None, description="Functions the model may call; its template must support tools.")


class EmbedRequest(_Request):
    input: str | list[str] = Field(default="", description="A text or a list of texts.")
    truncate: bool | None = Field(default=None, description="Cut inputs longer than the context (default true).")
    dimensions: int | None = Field(default=None, description="Cut each vector to this many leading values.")
    options: dict[str, Any] | None = Field(default=None, description=_OPTIONS_HELP)
    keep_alive: str | float | None = Field(default=None, description=_KEEP_ALIVE_HELP)


class EmbeddingsRequest(_Request):
    prompt: str | None = None
    options: dict[str, Any] | None = Field(default=None, description=_OPTIONS_HELP)
    keep_alive: str | float | None = Field(default=None, description=_KEEP_ALIVE_HELP)


class ShowRequest(_Request):
    verbose: bool | None = None


class CopyRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str
    destination: str


class DeleteRequest(_Request):
    pass


class PullRequest(_Request):
    insecure: bool | None = Field(default=None, description="Allow plain HTTP and skip TLS verification.")
    stream: bool | None = Field(default=None, description="false: one reply once the transfer is done.")


class PushRequest(PullRequest):
    pass


# ---- replies ---------------------------------------------------------------------------------------


class _Final(BaseModel):
    """The counters Ollama puts on the last message of a generation."""

    done_reason: str | None = Field(default=None, description="stop, length, load, unload or cancelled.")
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class GenerateResponse(_Final):
    model: str
    created_at: str
    response: str
    thinking: str | None = Field(default=None, description="Reasoning, apart from the response (with think).")
    done: bool


class CallFunctionOut(BaseModel):
    index: int
    name: str
    arguments: dict[str, Any]


class ToolCallOut(BaseModel):
    id: str
    function: CallFunctionOut


class MessageOut(BaseModel):
    role: str
    content: str
    thinking: str | None = Field(default=None, description="Reasoning since the previous line (with think).")
    tool_calls: list[ToolCallOut] | None = Field(default=None, description="Calls completed since the previous line.")


class ChatResponse(_Final):
    model: str
    created_at: str
    message: MessageOut
    done: bool


class EmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class EmbeddingsResponse(BaseModel):
    embedding: list[float]


class ModelDetails(BaseModel):
    parent_model: str
    format: str
    family: str
    families: list[str] | None
    parameter_size: str
    quantization_level: str


class ListedModel(BaseModel):
    name: str
    model: str
    modified_at: str | None
    size: int
    digest: str
    details: ModelDetails


class ListResponse(BaseModel):
    models: list[ListedModel]


class ShowMessage(BaseModel):
    role: str
    content: str


class ShowResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    modelfile: str
    parameters: str
    template: str
    system: str
    license: str
    details: ModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    messages: list[ShowMessage]


class RunningModel(BaseModel):
    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: str | None = Field(description="Null while requests run, or when kept loaded forever.")
    size_vram: int
    context_length: int


class ProcessResponse(BaseModel):
    models: list[RunningModel]


class ProgressResponse(BaseModel):
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


class VersionResponse(BaseModel):
    version: str


class OllamaErrorBody(BaseModel):
    error: str
