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
    __slots__ = ("name", "digest", "state", "size_bytes", "vram_bytes", "gpu_layers", "total_layers", "expires_at", "keep_forever", "active_requests", "context_length", "parallel", "pid", "load_count", "loaded_at", "load_options", "slots_busy", "queue", "tokens_per_second", "devices")
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
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
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
    queue: QueueDepth
    tokens_per_second: float
    devices: _containers.RepeatedCompositeFieldContainer[DeviceMemory]
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., state: _Optional[_Union[ModelState, str]] = ..., size_bytes: _Optional[int] = ..., vram_bytes: _Optional[int] = ..., gpu_layers: _Optional[int] = ..., total_layers: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., keep_forever: _Optional[bool] = ..., active_requests: _Optional[int] = ..., context_length: _Optional[int] = ..., parallel: _Optional[int] = ..., pid: _Optional[int] = ..., load_count: _Optional[int] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., load_options: _Optional[_Union[_common_pb2.Options, _Mapping]] = ..., slots_busy: _Optional[int] = ..., queue: _Optional[_Union[QueueDepth, _Mapping]] = ..., tokens_per_second: _Optional[float] = ..., devices: _Optional[_Iterable[_Union[DeviceMemory, _Mapping]]] = ...) -> None: ...

class DeviceMemory(_message.Message):
    __slots__ = ("device", "bytes")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    device: str
    bytes: int
    def __init__(self, device: _Optional[str] = ..., bytes: _Optional[int] = ...) -> None: ...

class QueueDepth(_message.Message):
    __slots__ = ("admitted_interactive", "admitted_batch", "waiting_interactive", "waiting_batch", "running_interactive", "running_batch", "preemptions")
    ADMITTED_INTERACTIVE_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_BATCH_FIELD_NUMBER: _ClassVar[int]
    WAITING_INTERACTIVE_FIELD_NUMBER: _ClassVar[int]
    WAITING_BATCH_FIELD_NUMBER: _ClassVar[int]
    RUNNING_INTERACTIVE_FIELD_NUMBER: _ClassVar[int]
    RUNNING_BATCH_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIONS_FIELD_NUMBER: _ClassVar[int]
    admitted_interactive: int
    admitted_batch: int
    waiting_interactive: int
    waiting_batch: int
    running_interactive: int
    running_batch: int
    preemptions: int
    def __init__(self, admitted_interactive: _Optional[int] = ..., admitted_batch: _Optional[int] = ..., waiting_interactive: _Optional[int] = ..., waiting_batch: _Optional[int] = ..., running_interactive: _Optional[int] = ..., running_batch: _Optional[int] = ..., preemptions: _Optional[int] = ...) -> None: ...

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

class WatchStatusRequest(_message.Message):
    __slots__ = ("root",)
    ROOT_FIELD_NUMBER: _ClassVar[int]
    root: str
    def __init__(self, root: _Optional[str] = ...) -> None: ...

class WatchStatusResponse(_message.Message):
    __slots__ = ("folders",)
    FOLDERS_FIELD_NUMBER: _ClassVar[int]
    folders: _containers.RepeatedCompositeFieldContainer[WatchedFolder]
    def __init__(self, folders: _Optional[_Iterable[_Union[WatchedFolder, _Mapping]]] = ...) -> None: ...

class WatchedFolder(_message.Message):
    __slots__ = ("root", "running", "in_daemon", "pid", "updated_at", "models", "orphans", "state_file")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    IN_DAEMON_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    ORPHANS_FIELD_NUMBER: _ClassVar[int]
    STATE_FILE_FIELD_NUMBER: _ClassVar[int]
    root: str
    running: bool
    in_daemon: bool
    pid: int
    updated_at: str
    models: _containers.RepeatedCompositeFieldContainer[WatchedModel]
    orphans: _containers.RepeatedCompositeFieldContainer[WatchOrphan]
    state_file: str
    def __init__(self, root: _Optional[str] = ..., running: _Optional[bool] = ..., in_daemon: _Optional[bool] = ..., pid: _Optional[int] = ..., updated_at: _Optional[str] = ..., models: _Optional[_Iterable[_Union[WatchedModel, _Mapping]]] = ..., orphans: _Optional[_Iterable[_Union[WatchOrphan, _Mapping]]] = ..., state_file: _Optional[str] = ...) -> None: ...

class WatchedModel(_message.Message):
    __slots__ = ("key", "source", "references", "digest", "built_at", "last_build_result", "pushes", "reload_result", "problems")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    BUILT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_BUILD_RESULT_FIELD_NUMBER: _ClassVar[int]
    PUSHES_FIELD_NUMBER: _ClassVar[int]
    RELOAD_RESULT_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    key: str
    source: str
    references: _containers.RepeatedScalarFieldContainer[str]
    digest: str
    built_at: str
    last_build_result: str
    pushes: _containers.RepeatedCompositeFieldContainer[WatchPush]
    reload_result: str
    problems: _containers.RepeatedCompositeFieldContainer[WatchProblem]
    def __init__(self, key: _Optional[str] = ..., source: _Optional[str] = ..., references: _Optional[_Iterable[str]] = ..., digest: _Optional[str] = ..., built_at: _Optional[str] = ..., last_build_result: _Optional[str] = ..., pushes: _Optional[_Iterable[_Union[WatchPush, _Mapping]]] = ..., reload_result: _Optional[str] = ..., problems: _Optional[_Iterable[_Union[WatchProblem, _Mapping]]] = ...) -> None: ...

class WatchPush(_message.Message):
    __slots__ = ("target", "result", "digest", "pushed_at", "attempts")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    PUSHED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    target: str
    result: str
    digest: str
    pushed_at: str
    attempts: int
    def __init__(self, target: _Optional[str] = ..., result: _Optional[str] = ..., digest: _Optional[str] = ..., pushed_at: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...

class WatchOrphan(_message.Message):
    __slots__ = ("reference", "digest", "source", "since")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    digest: str
    source: str
    since: str
    def __init__(self, reference: _Optional[str] = ..., digest: _Optional[str] = ..., source: _Optional[str] = ..., since: _Optional[str] = ...) -> None: ...

class WatchProblem(_message.Message):
    __slots__ = ("kind", "message", "hint", "file", "line", "column")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    hint: str
    file: str
    line: int
    column: int
    def __init__(self, kind: _Optional[str] = ..., message: _Optional[str] = ..., hint: _Optional[str] = ..., file: _Optional[str] = ..., line: _Optional[int] = ..., column: _Optional[int] = ...) -> None: ...
