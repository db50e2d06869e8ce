import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogLine(_message.Message):
    __slots__ = ("job_id", "sequence", "is_stderr", "line", "timestamp", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IS_STDERR_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sequence: int
    is_stderr: bool
    line: str
    timestamp: _timestamp_pb2.Timestamp
    attempt: int
    def __init__(self, job_id: _Optional[str] = ..., sequence: _Optional[int] = ..., is_stderr: _Optional[bool] = ..., line: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...

class SubscribeLogsRequest(_message.Message):
    __slots__ = ("job_id", "include_history", "tail_lines", "after_sequence", "columnar")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    TAIL_LINES_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    COLUMNAR_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    include_history: bool
    tail_lines: int
    after_sequence: int
    columnar: bool
    def __init__(self, job_id: _Optional[str] = ..., include_history: _Optional[bool] = ..., tail_lines: _Optional[int] = ..., after_sequence: _Optional[int] = ..., columnar: _Optional[bool] = ...) -> None: ...

class LogColumns(_message.Message):
    __slots__ = ("job_id", "sequences", "is_stderr", "texts", "unix_micros", "attempts")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    IS_STDERR_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sequences: _containers.RepeatedScalarFieldContainer[int]
    is_stderr: _containers.RepeatedScalarFieldContainer[bool]
    texts: _containers.RepeatedScalarFieldContainer[str]
    unix_micros: _containers.RepeatedScalarFieldContainer[int]
    attempts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, job_id: _Optional[str] = ..., sequences: _Optional[_Iterable[int]] = ..., is_stderr: _Optional[_Iterable[bool]] = ..., texts: _Optional[_Iterable[str]] = ..., unix_micros: _Optional[_Iterable[int]] = ..., attempts: _Optional[_Iterable[int]] = ...) -> None: ...

class LogLines(_message.Message):
    __slots__ = ("lines", "columns")
    LINES_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[LogLine]
    columns: LogColumns
    def __init__(self, lines: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ..., columns: _Optional[_Union[LogColumns, _Mapping]] = ...) -> None: ...

class GetLogsRequest(_message.Message):
    __slots__ = ("job_id", "after_sequence", "limit")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_sequence: int
    limit: int
    def __init__(self, job_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GetLogsResponse(_message.Message):
    __slots__ = ("lines", "complete")
    LINES_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[LogLine]
    complete: bool
    def __init__(self, lines: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ..., complete: _Optional[bool] = ...) -> None: ...
