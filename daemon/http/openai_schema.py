"""Request and response bodies of the OpenAI-compatible endpoints, as pydantic models.

They serve twice: FastAPI validates requests with them and publishes them in
`/openapi.json`, and replies are built from them, so the document says what
the server really sends. Requests allow extra fields: OpenAI clients send
fields ingot has no use for (`user`, `logit_bias`, ...), and Ollama's options
may be given top-level (`"num_ctx": 8192`) or in an `options` object.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .tools import ToolDefinition

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "Completion",
    "CompletionChunk",
    "CompletionRequest",
    "EmbeddingList",
    "EmbeddingRequest",
    "ModelList",
    "OpenAIErrorBody",
    "OpenAIModel",
]

_OPTIONS_HELP = (
    "Model parameters by name (num_ctx, temperature, stop, ...), as in Ollama's `options`; they may also be "
    "given as top-level fields. Each is checked like a Modelfile PARAMETER; a bad one is a 400 naming it."
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(description="A model in the daemon's store, e.g. `llama3` or `registry.example.com/team/m:1`.")
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = Field(default=None, description="One stop sequence or a list of them.")
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    n: int | None = Field(default=None, description="Only 1 is supported.")
    stream: bool | None = False
    options: dict[str, Any] | None = Field(default=None, description=_OPTIONS_HELP)
    keep_alive: str | float | None = Field(
        default=None, description="How long the model stays loaded afterwards: '5m', seconds, 0, or -1 (forever)."
    )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = Field(
        default=None, description="Send a last chunk with `usage` and no choices before `data: [DONE]`."
    )


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Only `text` parts are supported.")
    text: str | None = None


class FunctionCallIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    arguments: str | dict[str, Any] | None = Field(default=None, description="A JSON object, as a string.")


class ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    type: str | None = "function"
    function: FunctionCallIn


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(description="system, developer (read as system), user, assistant or tool.")
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = Field(default=None, description="An assistant turn's calls.")
    tool_call_id: str | None = Field(default=None, description="A tool result: the call it answers.")
    reasoning_content: str | None = Field(default=None, description="An assistant turn's reasoning.")
    reasoning: str | None = Field(default=None, description="Another spelling of reasoning_content.")


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"] = "function"
    function: NamedFunction


class ChatCompletionRequest(_Request):
    messages: list[ChatMessageIn]
    max_tokens: int | None = None
    max_completion_tokens: int | None = Field(default=None, description="Wins over max_tokens when both are set.")
    response_format: ResponseFormat | None = None
    stream_options: StreamOptions | None = None
    tools: list[ToolDefinition] | None = Field(
        default=None, description="Functions the model may call; its template must support tools.")
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = Field(
        default=None, description="required or a named function constrain the reply with a grammar.")
    parallel_tool_calls: bool | None = Field(default=None, description="false: at most one call.")
    reasoning_effort: str | None = Field(
        default=None, description="none turns thinking off; minimal, low, medium, high set its level.")
    think: bool | str | None = Field(default=None, description="ingot/Ollama extension: true, false or a level.")
    logprobs: bool | None = Field(default=None, description="Not supported: must be absent or false.")


class CompletionRequest(_Request):
    prompt: str | list[str] = Field(description="Text to continue; a list gives one choice per prompt.")
    max_tokens: int | None = None
    stream_options: StreamOptions | None = None
    echo: bool | None = Field(default=None, description="Not supported: must be absent or false.")
    suffix: str | None = Field(default=None, description="Not supported: must be absent or empty.")
    logprobs: int | None = Field(default=None, description="Not supported: must be absent.")
    raw: bool | None = Field(
        default=None,
        description="ingot extension: false renders the prompt through the model's template (default true: "
        "the prompt is sent as is, as OpenAI's completions endpoint does).",
    )


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    input: str | list[str] = Field(description="A text or a list of texts (token arrays are not supported).")
    encoding_format: Literal["float", "base64"] | None = Field(
        default=None, description="base64: little-endian float32 vectors (what the openai client asks for)."
    )
    dimensions: int | None = Field(default=None, description="Cut each vector to this many leading values.")
    options: dict[str, Any] | None = Field(default=None, description=_OPTIONS_HELP)
    keep_alive: str | float | None = None


# ---- replies ---------------------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FunctionCallOut(BaseModel):
    name: str
    arguments: str = Field(description="A JSON object, as a string.")


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = Field(description="Null when the reply is only tool calls.")
    # As OpenAI: no reasoning_content or tool_calls keys when there are none (content stays, maybe null).
    reasoning_content: str | None = Field(default=None, exclude_if=lambda v: v is None,
                                          description="The model's reasoning, when it thinks.")
    tool_calls: list[ToolCallOut] | None = Field(default=None, exclude_if=lambda v: v is None)


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    logprobs: None = None
    finish_reason: Literal["stop", "length", "tool_calls"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChoice]
    usage: Usage


class FunctionCallDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = Field(default=None, description="In a call's first delta, with type and function.name.")
    type: Literal["function"] | None = None
    function: FunctionCallDelta


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    logprobs: None = None
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionChoice]
    usage: Usage


class CompletionChunk(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32 values.")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="When the model was tagged in the store, seconds since the epoch.")
    owned_by: str = Field(description="The reference's namespace (`library` by default).")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail
