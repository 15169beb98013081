from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Invitation(_message.Message):
    __slots__ = ("issuer", "subject", "quota_bytes", "expires", "nonce")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    issuer: bytes
    subject: str
    quota_bytes: int
    expires: int
    nonce: bytes
    def __init__(self, issuer: _Optional[bytes] = ..., subject: _Optional[str] = ..., quota_bytes: _Optional[int] = ..., expires: _Optional[int] = ..., nonce: _Optional[bytes] = ...) -> None: ...

class SignedInvitation(_message.Message):
    __slots__ = ("invitation", "signature")
    INVITATION_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    invitation: bytes
    signature: bytes
    def __init__(self, invitation: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class InviteResponse(_message.Message):
    __slots__ = ("status", "message")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OK: _ClassVar[InviteResponse.Status]
        INVALID: _ClassVar[InviteResponse.Status]
        EXPIRED: _ClassVar[InviteResponse.Status]
    OK: InviteResponse.Status
    INVALID: InviteResponse.Status
    EXPIRED: InviteResponse.Status
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: InviteResponse.Status
    message: str
    def __init__(self, status: _Optional[_Union[InviteResponse.Status, str]] = ..., message: _Optional[str] = ...) -> None: ...
