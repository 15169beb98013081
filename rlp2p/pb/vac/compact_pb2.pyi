from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CompactRecord(_message.Message):
    __slots__ = ("signature", "sequence", "validity_us", "validity_text", "value", "ttl")
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_US_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_TEXT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    sequence: int
    validity_us: int
    validity_text: bytes
    value: bytes
    ttl: int
    def __init__(self, signature: _Optional[bytes] = ..., sequence: _Optional[int] = ..., validity_us: _Optional[int] = ..., validity_text: _Optional[bytes] = ..., value: _Optional[bytes] = ..., ttl: _Optional[int] = ...) -> None: ...

class CompactPush(_message.Message):
    __slots__ = ("log", "whole", "compact")
    LOG_FIELD_NUMBER: _ClassVar[int]
    WHOLE_FIELD_NUMBER: _ClassVar[int]
    COMPACT_FIELD_NUMBER: _ClassVar[int]
    log: int
    whole: bytes
    compact: CompactRecord
    def __init__(self, log: _Optional[int] = ..., whole: _Optional[bytes] = ..., compact: _Optional[_Union[CompactRecord, _Mapping]] = ...) -> None: ...
