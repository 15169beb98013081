from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NameUpdate(_message.Message):
    __slots__ = ("name", "content")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Content(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("data", "status", "error")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OK: _ClassVar[Response.Status]
        INVALID_RECORD: _ClassVar[Response.Status]
        STALE: _ClassVar[Response.Status]
        TOO_LARGE: _ClassVar[Response.Status]
        BAD_REQUEST: _ClassVar[Response.Status]
        UNAVAILABLE: _ClassVar[Response.Status]
        QUOTA: _ClassVar[Response.Status]
        NOT_ALLOWED: _ClassVar[Response.Status]
        INCOMPLETE: _ClassVar[Response.Status]
    OK: Response.Status
    INVALID_RECORD: Response.Status
    STALE: Response.Status
    TOO_LARGE: Response.Status
    BAD_REQUEST: Response.Status
    UNAVAILABLE: Response.Status
    QUOTA: Response.Status
    NOT_ALLOWED: Response.Status
    INCOMPLETE: Response.Status
    DATA_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    status: Response.Status
    error: str
    def __init__(self, data: _Optional[bytes] = ..., status: _Optional[_Union[Response.Status, str]] = ..., error: _Optional[str] = ...) -> None: ...

class NsRequest(_message.Message):
    __slots__ = ("update", "fetch", "poll", "forward")
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    FETCH_FIELD_NUMBER: _ClassVar[int]
    POLL_FIELD_NUMBER: _ClassVar[int]
    FORWARD_FIELD_NUMBER: _ClassVar[int]
    update: NameUpdate
    fetch: Query
    poll: PollQuery
    forward: ForwardRequest
    def __init__(self, update: _Optional[_Union[NameUpdate, _Mapping]] = ..., fetch: _Optional[_Union[Query, _Mapping]] = ..., poll: _Optional[_Union[PollQuery, _Mapping]] = ..., forward: _Optional[_Union[ForwardRequest, _Mapping]] = ...) -> None: ...

class NsResponse(_message.Message):
    __slots__ = ("response", "content", "error", "polled", "forwarded")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    POLLED_FIELD_NUMBER: _ClassVar[int]
    FORWARDED_FIELD_NUMBER: _ClassVar[int]
    response: Response
    content: Content
    error: Error
    polled: PollAnswer
    forwarded: ForwardResponse
    def __init__(self, response: _Optional[_Union[Response, _Mapping]] = ..., content: _Optional[_Union[Content, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., polled: _Optional[_Union[PollAnswer, _Mapping]] = ..., forwarded: _Optional[_Union[ForwardResponse, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[Error.Code]
        BAD_REQUEST: _ClassVar[Error.Code]
        TOO_LARGE: _ClassVar[Error.Code]
        NOT_FOUND: _ClassVar[Error.Code]
        UNAVAILABLE: _ClassVar[Error.Code]
    UNKNOWN: Error.Code
    BAD_REQUEST: Error.Code
    TOO_LARGE: Error.Code
    NOT_FOUND: Error.Code
    UNAVAILABLE: Error.Code
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: Error.Code
    message: str
    def __init__(self, code: _Optional[_Union[Error.Code, str]] = ..., message: _Optional[str] = ...) -> None: ...

class PollQuery(_message.Message):
    __slots__ = ("logs", "compact")
    LOGS_FIELD_NUMBER: _ClassVar[int]
    COMPACT_FIELD_NUMBER: _ClassVar[int]
    logs: _containers.RepeatedCompositeFieldContainer[PollLog]
    compact: bool
    def __init__(self, logs: _Optional[_Iterable[_Union[PollLog, _Mapping]]] = ..., compact: bool = ...) -> None: ...

class PollLog(_message.Message):
    __slots__ = ("log", "sequence", "sequence_only")
    LOG_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    log: bytes
    sequence: int
    sequence_only: bool
    def __init__(self, log: _Optional[bytes] = ..., sequence: _Optional[int] = ..., sequence_only: bool = ...) -> None: ...

class PollAnswer(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PollResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PollResult, _Mapping]]] = ...) -> None: ...

class PollResult(_message.Message):
    __slots__ = ("state", "record", "sequence", "compact")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNCHANGED: _ClassVar[PollResult.State]
        CHANGED: _ClassVar[PollResult.State]
        NOT_HELD: _ClassVar[PollResult.State]
        OLDER: _ClassVar[PollResult.State]
    UNCHANGED: PollResult.State
    CHANGED: PollResult.State
    NOT_HELD: PollResult.State
    OLDER: PollResult.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    COMPACT_FIELD_NUMBER: _ClassVar[int]
    state: PollResult.State
    record: bytes
    sequence: int
    compact: bytes
    def __init__(self, state: _Optional[_Union[PollResult.State, str]] = ..., record: _Optional[bytes] = ..., sequence: _Optional[int] = ..., compact: _Optional[bytes] = ...) -> None: ...

class ForwardRequest(_message.Message):
    __slots__ = ("name", "sequence", "targets", "blocks")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    name: str
    sequence: int
    targets: _containers.RepeatedCompositeFieldContainer[ForwardTarget]
    blocks: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, name: _Optional[str] = ..., sequence: _Optional[int] = ..., targets: _Optional[_Iterable[_Union[ForwardTarget, _Mapping]]] = ..., blocks: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ForwardTarget(_message.Message):
    __slots__ = ("peer", "addrs", "lacks", "blocks", "hint")
    class Lacks(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SHARED: _ClassVar[ForwardTarget.Lacks]
        WHOLE: _ClassVar[ForwardTarget.Lacks]
        OWN: _ClassVar[ForwardTarget.Lacks]
    SHARED: ForwardTarget.Lacks
    WHOLE: ForwardTarget.Lacks
    OWN: ForwardTarget.Lacks
    PEER_FIELD_NUMBER: _ClassVar[int]
    ADDRS_FIELD_NUMBER: _ClassVar[int]
    LACKS_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    peer: bytes
    addrs: _containers.RepeatedScalarFieldContainer[bytes]
    lacks: ForwardTarget.Lacks
    blocks: _containers.RepeatedScalarFieldContainer[bytes]
    hint: int
    def __init__(self, peer: _Optional[bytes] = ..., addrs: _Optional[_Iterable[bytes]] = ..., lacks: _Optional[_Union[ForwardTarget.Lacks, str]] = ..., blocks: _Optional[_Iterable[bytes]] = ..., hint: _Optional[int] = ...) -> None: ...

class ForwardResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ForwardResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ForwardResult, _Mapping]]] = ...) -> None: ...

class ForwardResult(_message.Message):
    __slots__ = ("peer", "status", "error", "held_seq", "blocks_sent", "ack_seq", "ack")
    PEER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    HELD_SEQ_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_SENT_FIELD_NUMBER: _ClassVar[int]
    ACK_SEQ_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    peer: bytes
    status: Response.Status
    error: str
    held_seq: int
    blocks_sent: int
    ack_seq: int
    ack: bytes
    def __init__(self, peer: _Optional[bytes] = ..., status: _Optional[_Union[Response.Status, str]] = ..., error: _Optional[str] = ..., held_seq: _Optional[int] = ..., blocks_sent: _Optional[int] = ..., ack_seq: _Optional[int] = ..., ack: _Optional[bytes] = ...) -> None: ...
