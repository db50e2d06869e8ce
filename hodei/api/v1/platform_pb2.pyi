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
