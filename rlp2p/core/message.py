"""MVDS messages (RFC 2/MVDS) and their id, H1 in 3/REMOTE-LOG.

H1 is the MVDS message id: ``sha256(b"MESSAGE_ID" + group_id + timestamp + body)``, the timestamp
as 8 bytes little-endian (two's complement, as Go's ``uint64(int64)``). This is the encoding of the
reference implementation, vacp2p/mvds ``protobuf/messageid.go``; we keep the raw 32-byte digest.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from google.protobuf.message import DecodeError as _PbDecodeError

from rlp2p.errors import DecodeError, LimitExceeded
from rlp2p.limits import DEFAULT_LIMITS, Limits
from rlp2p.pb.vac import mvds_pb2

MESSAGE_ID_PREFIX = b"MESSAGE_ID"
MESSAGE_ID_SIZE = 32
_INT64 = struct.Struct("<q")


def message_id(group_id: bytes, timestamp: int, body: bytes) -> bytes:
    """H1: the MVDS id of a message, 32 bytes."""
    try:
        ts = _INT64.pack(timestamp)
    except struct.error as exc:
        raise ValueError(f"timestamp {timestamp} does not fit in int64") from exc
    return hashlib.sha256(MESSAGE_ID_PREFIX + group_id + ts + body).digest()


@dataclass(frozen=True, slots=True)
class Message:
    """A ``vac.mvds.Message``: what Alice's log holds and Bob receives."""

    group_id: bytes
    timestamp: int
    body: bytes

    @property
    def id(self) -> bytes:
        return message_id(self.group_id, self.timestamp, self.body)

    def encode(self) -> bytes:
        pb = mvds_pb2.Message(group_id=self.group_id, timestamp=self.timestamp, body=self.body)
        return pb.SerializeToString(deterministic=True)

    @classmethod
    def decode(cls, data: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
        if len(data) > limits.max_message:
            raise LimitExceeded("message size", len(data), limits.max_message)
        pb = mvds_pb2.Message()
        try:
            pb.ParseFromString(data)
        except _PbDecodeError as exc:
            raise DecodeError(f"not a vac.mvds.Message: {exc}") from exc
        return cls(group_id=pb.group_id, timestamp=pb.timestamp, body=pb.body)
