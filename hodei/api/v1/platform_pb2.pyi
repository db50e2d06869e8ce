import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hodei.api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetQueueRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class QueuedJob(_message.Message):
    __slots__ = ("job_id", "enqueued_at", "attempts", "name")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    enqueued_at: _timestamp_pb2.Timestamp
    attempts: int
    name: str
    def __init__(self, job_id: _Optional[str] = ..., enqueued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class JobStateCount(_message.Message):
    __slots__ = ("state", "count")
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    state: _common_pb2.JobState
    count: int
    def __init__(self, state: _Optional[_Union[_common_pb2.JobState, str]] = ..., count: _Optional[int] = ...) -> None: ...

class GetQueueResponse(_message.Message):
    __slots__ = ("depth", "oldest_age_seconds", "jobs", "job_counts")
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    OLDEST_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    JOB_COUNTS_FIELD_NUMBER: _ClassVar[int]
    depth: int
    oldest_age_seconds: float
    jobs: _containers.RepeatedCompositeFieldContainer[QueuedJob]
    job_counts: _containers.RepeatedCompositeFieldContainer[JobStateCount]
    def __init__(self, depth: _Optional[int] = ..., oldest_age_seconds: _Optional[float] = ..., jobs: _Optional[_Iterable[_Union[QueuedJob, _Mapping]]] = ..., job_counts: _Optional[_Iterable[_Union[JobStateCount, _Mapping]]] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoResponse(_message.Message):
    __slots__ = ("version", "server_id", "started_at", "dispatcher_enabled", "outbox_relay_enabled", "dispatcher_last_cycle_at", "connected_workers", "schema_version", "insecure")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DISPATCHER_ENABLED_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_RELAY_ENABLED_FIELD_NUMBER: _ClassVar[int]
    DISPATCHER_LAST_CYCLE_AT_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_WORKERS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    INSECURE_FIELD_NUMBER: _ClassVar[int]
    version: str
    server_id: str
    started_at: _timestamp_pb2.Timestamp
    dispatcher_enabled: bool
    outbox_relay_enabled: bool
    dispatcher_last_cycle_at: _timestamp_pb2.Timestamp
    connected_workers: int
    schema_version: int
    insecure: bool
    def __init__(self, version: _Optional[str] = ..., server_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dispatcher_enabled: _Optional[bool] = ..., outbox_relay_enabled: _Optional[bool] = ..., dispatcher_last_cycle_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connected_workers: _Optional[int] = ..., schema_version: _Optional[int] = ..., insecure: _Optional[bool] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Provider(_message.Message):
    __slots__ = ("name", "type", "priority", "max_workers", "tags", "healthy", "detail", "circuit_open", "last_error", "last_error_at", "checked_at", "workers")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_WORKERS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_OPEN_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_AT_FIELD_NUMBER: _ClassVar[int]
    CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    priority: int
    max_workers: int
    tags: _containers.ScalarMap[str, str]
    healthy: bool
    detail: str
    circuit_open: bool
    last_error: str
    last_error_at: _timestamp_pb2.Timestamp
    checked_at: _timestamp_pb2.Timestamp
    workers: int
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., priority: _Optional[int] = ..., max_workers: _Optional[int] = ..., tags: _Optional[_Mapping[str, str]] = ..., healthy: _Optional[bool] = ..., detail: _Optional[str] = ..., circuit_open: _Optional[bool] = ..., last_error: _Optional[str] = ..., last_error_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., checked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., workers: _Optional[int] = ...) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers",)
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[Provider]
    def __init__(self, providers: _Optional[_Iterable[_Union[Provider, _Mapping]]] = ...) -> None: ...
