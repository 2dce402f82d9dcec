import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ingot.proto.ingot.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATE_UNSPECIFIED: _ClassVar[ModelState]
    MODEL_STATE_LOADING: _ClassVar[ModelState]
    MODEL_STATE_READY: _ClassVar[ModelState]
    MODEL_STATE_UNLOADING: _ClassVar[ModelState]
    MODEL_STATE_WAITING: _ClassVar[ModelState]
MODEL_STATE_UNSPECIFIED: ModelState
MODEL_STATE_LOADING: ModelState
MODEL_STATE_READY: ModelState
MODEL_STATE_UNLOADING: ModelState
MODEL_STATE_WAITING: ModelState

class RunningModel(_message.Message):
    __slots__ = ("name", "digest", "state", "size_bytes", "vram_bytes", "gpu_layers", "total_layers", "expires_at", "keep_forever", "active_requests", "context_length", "parallel", "pid", "load_count", "loaded_at", "load_options", "slots_busy")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    VRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPU_LAYERS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LAYERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    KEEP_FOREVER_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    LOAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    LOAD_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_BUSY_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    state: ModelState
    size_bytes: int
    vram_bytes: int
    gpu_layers: int
    total_layers: int
    expires_at: _timestamp_pb2.Timestamp
    keep_forever: bool
    active_requests: int
    context_length: int
    parallel: int
    pid: int
    load_count: int
    loaded_at: _timestamp_pb2.Timestamp
    load_options: _common_pb2.Options
    slots_busy: int
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., state: _Optional[_Union[ModelState, str]] = ..., size_bytes: _Optional[int] = ..., vram_bytes: _Optional[int] = ..., gpu_layers: _Optional[int] = ..., total_layers: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., keep_forever: _Optional[bool] = ..., active_requests: _Optional[int] = ..., context_length: _Optional[int] = ..., parallel: _Optional[int] = ..., pid: _Optional[int] = ..., load_count: _Optional[int] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., load_options: _Optional[_Union[_common_pb2.Options, _Mapping]] = ..., slots_busy: _Optional[int] = ...) -> None: ...

class LoadRequest(_message.Message):
    __slots__ = ("model", "options", "keep_alive")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_FIELD_NUMBER: _ClassVar[int]
    model: str
    options: _common_pb2.Options
    keep_alive: str
    def __init__(self, model: _Optional[str] = ..., options: _Optional[_Union[_common_pb2.Options, _Mapping]] = ..., keep_alive: _Optional[str] = ...) -> None: ...

class LoadResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: RunningModel
    def __init__(self, model: _Optional[_Union[RunningModel, _Mapping]] = ...) -> None: ...

class UnloadRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class UnloadResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRunningRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRunningResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[RunningModel]
    def __init__(self, models: _Optional[_Iterable[_Union[RunningModel, _Mapping]]] = ...) -> None: ...

class VersionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VersionResponse(_message.Message):
    __slots__ = ("version", "engine_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENGINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    engine_version: str
    def __init__(self, version: _Optional[str] = ..., engine_version: _Optional[str] = ...) -> None: ...
