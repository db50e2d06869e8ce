import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hodei.api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_OUTCOME_UNSPECIFIED: _ClassVar[JobOutcome]
    JOB_OUTCOME_SUCCEEDED: _ClassVar[JobOutcome]
    JOB_OUTCOME_FAILED: _ClassVar[JobOutcome]
    JOB_OUTCOME_TIMED_OUT: _ClassVar[JobOutcome]
    JOB_OUTCOME_CANCELLED: _ClassVar[JobOutcome]
JOB_OUTCOME_UNSPECIFIED: JobOutcome
JOB_OUTCOME_SUCCEEDED: JobOutcome
JOB_OUTCOME_FAILED: JobOutcome
JOB_OUTCOME_TIMED_OUT: JobOutcome
JOB_OUTCOME_CANCELLED: JobOutcome

class RegisterRequest(_message.Message):
    __slots__ = ("name", "hostname", "pid", "slots", "version", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    hostname: str
    pid: int
    slots: int
    version: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., hostname: _Optional[str] = ..., pid: _Optional[int] = ..., slots: _Optional[int] = ..., version: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("worker_id", "heartbeat_interval_ms", "session_secret")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    heartbeat_interval_ms: int
    session_secret: str
    def __init__(self, worker_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., session_secret: _Optional[str] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("worker_id", "running", "slots", "batches", "session_secret", "sent_at", "prefetch")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    PREFETCH_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    running: _containers.RepeatedCompositeFieldContainer[_common_pb2.JobRef]
    slots: int
    batches: bool
    session_secret: str
    sent_at: _timestamp_pb2.Timestamp
    prefetch: int
    def __init__(self, worker_id: _Optional[str] = ..., running: _Optional[_Iterable[_Union[_common_pb2.JobRef, _Mapping]]] = ..., slots: _Optional[int] = ..., batches: _Optional[bool] = ..., session_secret: _Optional[str] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prefetch: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("running", "free_slots", "sent_at", "prefetch")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    FREE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    PREFETCH_FIELD_NUMBER: _ClassVar[int]
    running: _containers.RepeatedCompositeFieldContainer[_common_pb2.JobRef]
    free_slots: int
    sent_at: _timestamp_pb2.Timestamp
    prefetch: int
    def __init__(self, running: _Optional[_Iterable[_Union[_common_pb2.JobRef, _Mapping]]] = ..., free_slots: _Optional[int] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prefetch: _Optional[int] = ...) -> None: ...

class JobAck(_message.Message):
    __slots__ = ("ref", "accepted", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.JobRef
    accepted: bool
    reason: str
    def __init__(self, ref: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., accepted: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("ref", "pid", "started_at")
    REF_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.JobRef
    pid: int
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, ref: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., pid: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("is_stderr", "line", "timestamp")
    IS_STDERR_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    is_stderr: bool
    line: str
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, is_stderr: _Optional[bool] = ..., line: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LogSegment(_message.Message):
    __slots__ = ("is_stderr", "timestamp", "lines")
    IS_STDERR_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    is_stderr: bool
    timestamp: _timestamp_pb2.Timestamp
    lines: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, is_stderr: _Optional[bool] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lines: _Optional[_Iterable[str]] = ...) -> None: ...

class LogBatch(_message.Message):
    __slots__ = ("ref", "first_line", "entries", "segments")
    REF_FIELD_NUMBER: _ClassVar[int]
    FIRST_LINE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.JobRef
    first_line: int
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    segments: _containers.RepeatedCompositeFieldContainer[LogSegment]
    def __init__(self, ref: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., first_line: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ..., segments: _Optional[_Iterable[_Union[LogSegment, _Mapping]]] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("ref", "outcome", "has_exit_code", "exit_code", "error", "total_lines", "has_output_read", "lines_read", "bytes_read", "trace_context", "started_at", "pid")
    REF_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LINES_FIELD_NUMBER: _ClassVar[int]
    HAS_OUTPUT_READ_FIELD_NUMBER: _ClassVar[int]
    LINES_READ_FIELD_NUMBER: _ClassVar[int]
    BYTES_READ_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.JobRef
    outcome: JobOutcome
    has_exit_code: bool
    exit_code: int
    error: str
    total_lines: int
    has_output_read: bool
    lines_read: int
    bytes_read: int
    trace_context: str
    started_at: _timestamp_pb2.Timestamp
    pid: int
    def __init__(self, ref: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., outcome: _Optional[_Union[JobOutcome, str]] = ..., has_exit_code: _Optional[bool] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., total_lines: _Optional[int] = ..., has_output_read: _Optional[bool] = ..., lines_read: _Optional[int] = ..., bytes_read: _Optional[int] = ..., trace_context: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pid: _Optional[int] = ...) -> None: ...

class Draining(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Goodbye(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class WorkerMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "ack", "started", "logs", "result", "batch", "draining", "goodbye")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    ack: JobAck
    started: JobStarted
    logs: LogBatch
    result: JobResult
    batch: WorkerBatch
    draining: Draining
    goodbye: Goodbye
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., ack: _Optional[_Union[JobAck, _Mapping]] = ..., started: _Optional[_Union[JobStarted, _Mapping]] = ..., logs: _Optional[_Union[LogBatch, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., batch: _Optional[_Union[WorkerBatch, _Mapping]] = ..., draining: _Optional[_Union[Draining, _Mapping]] = ..., goodbye: _Optional[_Union[Goodbye, _Mapping]] = ...) -> None: ...

class WorkerBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[WorkerMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[WorkerMessage, _Mapping]]] = ...) -> None: ...

class RunJob(_message.Message):
    __slots__ = ("ref", "command", "env", "working_dir", "timeout_seconds", "correlation_id", "secret_env", "trace_context")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SecretEnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REF_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_ENV_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.JobRef
    command: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    working_dir: str
    timeout_seconds: float
    correlation_id: str
    secret_env: _containers.ScalarMap[str, str]
    trace_context: str
    def __init__(self, ref: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., command: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., working_dir: _Optional[str] = ..., timeout_seconds: _Optional[float] = ..., correlation_id: _Optional[str] = ..., secret_env: _Optional[_Mapping[str, str]] = ..., trace_context: _Optional[str] = ...) -> None: ...

class CancelJob(_message.Message):
    __slots__ = ("ref", "force", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.JobRef
    force: bool
    reason: str
    def __init__(self, ref: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., force: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class Persisted(_message.Message):
    __slots__ = ("ref", "next_line", "result_persisted")
    REF_FIELD_NUMBER: _ClassVar[int]
    NEXT_LINE_FIELD_NUMBER: _ClassVar[int]
    RESULT_PERSISTED_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.JobRef
    next_line: int
    result_persisted: bool
    def __init__(self, ref: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., next_line: _Optional[int] = ..., result_persisted: _Optional[bool] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("worker_id", "server_id", "superseded", "batches")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    server_id: str
    superseded: _containers.RepeatedCompositeFieldContainer[_common_pb2.JobRef]
    batches: bool
    def __init__(self, worker_id: _Optional[str] = ..., server_id: _Optional[str] = ..., superseded: _Optional[_Iterable[_Union[_common_pb2.JobRef, _Mapping]]] = ..., batches: _Optional[bool] = ...) -> None: ...

class Rejected(_message.Message):
    __slots__ = ("ref", "code", "message")
    REF_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.JobRef
    code: str
    message: str
    def __init__(self, ref: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("welcome", "run", "cancel", "persisted", "rejected", "batch")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    PERSISTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    run: RunJob
    cancel: CancelJob
    persisted: Persisted
    rejected: Rejected
    batch: ServerBatch
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., run: _Optional[_Union[RunJob, _Mapping]] = ..., cancel: _Optional[_Union[CancelJob, _Mapping]] = ..., persisted: _Optional[_Union[Persisted, _Mapping]] = ..., rejected: _Optional[_Union[Rejected, _Mapping]] = ..., batch: _Optional[_Union[ServerBatch, _Mapping]] = ...) -> None: ...

class ServerBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ServerMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[ServerMessage, _Mapping]]] = ...) -> None: ...

class Worker(_message.Message):
    __slots__ = ("id", "name", "hostname", "pid", "state", "slots", "running_job_ids", "last_heartbeat", "registered_at", "connected", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    hostname: str
    pid: int
    state: _common_pb2.WorkerState
    slots: int
    running_job_ids: _containers.RepeatedScalarFieldContainer[str]
    last_heartbeat: _timestamp_pb2.Timestamp
    registered_at: _timestamp_pb2.Timestamp
    connected: bool
    version: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., hostname: _Optional[str] = ..., pid: _Optional[int] = ..., state: _Optional[_Union[_common_pb2.WorkerState, str]] = ..., slots: _Optional[int] = ..., running_job_ids: _Optional[_Iterable[str]] = ..., last_heartbeat: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connected: _Optional[bool] = ..., version: _Optional[str] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ("include_gone",)
    INCLUDE_GONE_FIELD_NUMBER: _ClassVar[int]
    include_gone: bool
    def __init__(self, include_gone: _Optional[bool] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    def __init__(self, workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ...) -> None: ...
