import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ingot.proto.ingot.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateRequest(_message.Message):
    __slots__ = ("model", "modelfile", "path", "quantize")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODELFILE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUANTIZE_FIELD_NUMBER: _ClassVar[int]
    model: str
    modelfile: str
    path: str
    quantize: str
    def __init__(self, model: _Optional[str] = ..., modelfile: _Optional[str] = ..., path: _Optional[str] = ..., quantize: _Optional[str] = ...) -> None: ...

class PullRequest(_message.Message):
    __slots__ = ("model", "insecure")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INSECURE_FIELD_NUMBER: _ClassVar[int]
    model: str
    insecure: bool
    def __init__(self, model: _Optional[str] = ..., insecure: _Optional[bool] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("model", "insecure")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INSECURE_FIELD_NUMBER: _ClassVar[int]
    model: str
    insecure: bool
    def __init__(self, model: _Optional[str] = ..., insecure: _Optional[bool] = ...) -> None: ...

class ModelDetails(_message.Message):
    __slots__ = ("format", "family", "parameter_size", "quantization_level", "context_length")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    format: str
    family: str
    parameter_size: str
    quantization_level: str
    context_length: int
    def __init__(self, format: _Optional[str] = ..., family: _Optional[str] = ..., parameter_size: _Optional[str] = ..., quantization_level: _Optional[str] = ..., context_length: _Optional[int] = ...) -> None: ...

class ModelSummary(_message.Message):
    __slots__ = ("name", "digest", "size", "modified_at", "details")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    size: int
    modified_at: _timestamp_pb2.Timestamp
    details: ModelDetails
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., modified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., details: _Optional[_Union[ModelDetails, _Mapping]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelSummary]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelSummary, _Mapping]]] = ...) -> None: ...

class ShowRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ShowResponse(_message.Message):
    __slots__ = ("name", "digest", "modelfile", "parameters", "template", "system", "license", "messages", "details", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MODELFILE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    modelfile: str
    parameters: _common_pb2.Options
    template: str
    system: str
    license: _containers.RepeatedScalarFieldContainer[str]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChatMessage]
    details: ModelDetails
    size: int
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., modelfile: _Optional[str] = ..., parameters: _Optional[_Union[_common_pb2.Options, _Mapping]] = ..., template: _Optional[str] = ..., system: _Optional[str] = ..., license: _Optional[_Iterable[str]] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.ChatMessage, _Mapping]]] = ..., details: _Optional[_Union[ModelDetails, _Mapping]] = ..., size: _Optional[int] = ...) -> None: ...

class CopyRequest(_message.Message):
    __slots__ = ("source", "destination")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    source: str
    destination: str
    def __init__(self, source: _Optional[str] = ..., destination: _Optional[str] = ...) -> None: ...

class CopyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
