from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Address(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    def __init__(self, id: _Optional[bytes] = ...) -> None: ...

class Content(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class CasRequest(_message.Message):
    __slots__ = ("add", "get", "update", "ack", "get_delta", "add_delta")
    ADD_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    GET_DELTA_FIELD_NUMBER: _ClassVar[int]
    ADD_DELTA_FIELD_NUMBER: _ClassVar[int]
    add: Content
    get: Address
    update: UploadNameUpdate
    ack: AckRequest
    get_delta: DeltaGet
    add_delta: DeltaAdd
    def __init__(self, add: _Optional[_Union[Content, _Mapping]] = ..., get: _Optional[_Union[Address, _Mapping]] = ..., update: _Optional[_Union[UploadNameUpdate, _Mapping]] = ..., ack: _Optional[_Union[AckRequest, _Mapping]] = ..., get_delta: _Optional[_Union[DeltaGet, _Mapping]] = ..., add_delta: _Optional[_Union[DeltaAdd, _Mapping]] = ...) -> None: ...

class CasResponse(_message.Message):
    __slots__ = ("address", "content", "error", "updated", "acked", "delta")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    ACKED_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    address: Address
    content: Content
    error: Error
    updated: UploadNameResult
    acked: AckResult
    delta: PageDelta
    def __init__(self, address: _Optional[_Union[Address, _Mapping]] = ..., content: _Optional[_Union[Content, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., updated: _Optional[_Union[UploadNameResult, _Mapping]] = ..., acked: _Optional[_Union[AckResult, _Mapping]] = ..., delta: _Optional[_Union[PageDelta, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[Error.Code]
        BAD_REQUEST: _ClassVar[Error.Code]
        TOO_LARGE: _ClassVar[Error.Code]
        NOT_FOUND: _ClassVar[Error.Code]
        BAD_ADDRESS: _ClassVar[Error.Code]
        UNAVAILABLE: _ClassVar[Error.Code]
        QUOTA: _ClassVar[Error.Code]
        NOT_ALLOWED: _ClassVar[Error.Code]
    UNKNOWN: Error.Code
    BAD_REQUEST: Error.Code
    TOO_LARGE: Error.Code
    NOT_FOUND: Error.Code
    BAD_ADDRESS: Error.Code
    UNAVAILABLE: Error.Code
    QUOTA: Error.Code
    NOT_ALLOWED: Error.Code
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: Error.Code
    message: str
    def __init__(self, code: _Optional[_Union[Error.Code, str]] = ..., message: _Optional[str] = ...) -> None: ...

class UploadNameUpdate(_message.Message):
    __slots__ = ("name", "content", "compact")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    COMPACT_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    compact: bytes
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ..., compact: _Optional[bytes] = ...) -> None: ...

class UploadNameResult(_message.Message):
    __slots__ = ("status", "error")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    status: int
    error: str
    def __init__(self, status: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class AckResult(_message.Message):
    __slots__ = ("sequence", "signature")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    signature: bytes
    def __init__(self, sequence: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PageDelta(_message.Message):
    __slots__ = ("base", "pair", "skip", "keep", "strip", "tail", "new_cas", "cas", "first_seq", "sealed")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PAIR_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    KEEP_FIELD_NUMBER: _ClassVar[int]
    STRIP_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    NEW_CAS_FIELD_NUMBER: _ClassVar[int]
    CAS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    base: bytes
    pair: _containers.RepeatedCompositeFieldContainer[DeltaPair]
    skip: int
    keep: int
    strip: int
    tail: bytes
    new_cas: bool
    cas: _containers.RepeatedScalarFieldContainer[bytes]
    first_seq: int
    sealed: int
    def __init__(self, base: _Optional[bytes] = ..., pair: _Optional[_Iterable[_Union[DeltaPair, _Mapping]]] = ..., skip: _Optional[int] = ..., keep: _Optional[int] = ..., strip: _Optional[int] = ..., tail: _Optional[bytes] = ..., new_cas: bool = ..., cas: _Optional[_Iterable[bytes]] = ..., first_seq: _Optional[int] = ..., sealed: _Optional[int] = ...) -> None: ...

class DeltaPair(_message.Message):
    __slots__ = ("remoteHash", "localHash", "data", "seq")
    REMOTEHASH_FIELD_NUMBER: _ClassVar[int]
    LOCALHASH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    remoteHash: bytes
    localHash: bytes
    data: bytes
    seq: int
    def __init__(self, remoteHash: _Optional[bytes] = ..., localHash: _Optional[bytes] = ..., data: _Optional[bytes] = ..., seq: _Optional[int] = ...) -> None: ...

class DeltaGet(_message.Message):
    __slots__ = ("id", "bases")
    ID_FIELD_NUMBER: _ClassVar[int]
    BASES_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    bases: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, id: _Optional[bytes] = ..., bases: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DeltaAdd(_message.Message):
    __slots__ = ("id", "delta")
    ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    delta: PageDelta
    def __init__(self, id: _Optional[bytes] = ..., delta: _Optional[_Union[PageDelta, _Mapping]] = ...) -> None: ...
