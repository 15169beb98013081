from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RemoteLog(_message.Message):
    __slots__ = ("pair", "tail", "cas", "sealed")
    class Pair(_message.Message):
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
    PAIR_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    CAS_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    pair: _containers.RepeatedCompositeFieldContainer[RemoteLog.Pair]
    tail: bytes
    cas: _containers.RepeatedScalarFieldContainer[bytes]
    sealed: int
    def __init__(self, pair: _Optional[_Iterable[_Union[RemoteLog.Pair, _Mapping]]] = ..., tail: _Optional[bytes] = ..., cas: _Optional[_Iterable[bytes]] = ..., sealed: _Optional[int] = ...) -> None: ...
