"""Compact records: a record sent as only what a receiver holding an earlier one cannot derive.

Every record rlp2p writes (rlp2p/core/record.py, V2 only) differs from the log's previous one
in its signature (64 B), sequence and validity, and in its Value, which a receiver that rebuilt
or holds the new head page derives as ``head_value(CID)``. ValidityType is always EOL, the TTL
rarely changes (it is carried when it does), the name is known to both sides. So a 221 B record
travels as about 80 B (``CompactRecord`` in proto/vac/compact.proto), plus the Value's 66 B
when the receiver cannot derive it.

:func:`compact_record` returns None unless :func:`expand_record` gives back exactly the
record's bytes (V1 fields, a pubKey, non-canonical CBOR, anything unusual): the caller then sends
the whole record. The expanded record is verified like any other (``verify_record``): the
signature covers it, so nothing in the compact form is trusted. Pure: bytes in, bytes out.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import cbor2
from google.protobuf.message import DecodeError as _PbDecodeError

from rlp2p.core.record import (
    VALIDITY_TYPE_EOL,
    _IpnsEntry,
    format_validity,
    head_value,
    parse_head_value,
    parse_validity,
)
from rlp2p.errors import DecodeError, LimitExceeded, Rlp2pError
from rlp2p.limits import DEFAULT_LIMITS, Limits
from rlp2p.pb.vac.compact_pb2 import CompactRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_KEYS = {"Value", "Validity", "ValidityType", "Sequence", "TTL"}
#: the signature a compact record may carry at most (Ed25519's is 64 B)
MAX_SIGNATURE = 512


def _fields(record: bytes) -> tuple[bytes, dict[str, Any]] | None:
    """``(signatureV2, data map)`` of a record rlp2p could have written, else None."""
    try:
        entry = _IpnsEntry.FromString(record)
        if {f.name for f, _ in entry.ListFields()} != {"signatureV2", "data"}:
            return None
        data = cbor2.loads(entry.data)
    except (_PbDecodeError, ValueError, cbor2.CBORDecodeError):
        return None
    if not isinstance(data, dict) or set(data) != _KEYS:
        return None
    if data["ValidityType"] != VALIDITY_TYPE_EOL or type(data["ValidityType"]) is not int:
        return None
    if not all(type(data[k]) is int and data[k] >= 0 for k in ("Sequence", "TTL")):
        return None
    if not all(type(data[k]) is bytes for k in ("Value", "Validity")):
        return None
    return entry.signatureV2, data


def compact_record(previous: bytes | None, record: bytes, *, with_value: bool) -> bytes | None:
    """``record`` in compact form relative to ``previous`` (a record of the same log the receiver
    holds; None: the receiver's record is not known, so the TTL is always carried), with its Value
    or without; None when the compact form would not expand back to exactly ``record``."""
    new = _fields(record)
    old = _fields(previous) if previous is not None else None
    if new is None or (previous is not None and old is None):
        return None
    signature, data = new
    compact = CompactRecord(signature=signature, sequence=data["Sequence"])
    text = data["Validity"]
    try:
        when = parse_validity(text)
        canonical = format_validity(when) == text and when >= _EPOCH
    except Rlp2pError:
        canonical = False
    if canonical:
        delta = when - _EPOCH
        compact.validity_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    else:
        compact.validity_text = text
    if with_value:
        compact.value = data["Value"]
    if old is None or data["TTL"] != old[1]["TTL"]:
        compact.ttl = data["TTL"]
    out: bytes = compact.SerializeToString(deterministic=True)
    head = None
    if not with_value:
        try:
            head = parse_head_value(data["Value"])
        except Rlp2pError:
            return None
    try:
        same = expand_record(previous, out, head) == record
    except Rlp2pError:
        return None
    return out if same else None


def standalone_compact(record: bytes) -> bytes | None:
    """``record`` in the compact form a receiver needs nothing else for (its Value and TTL
    carried: an uploaded record, a poll answer), when it has one smaller than the record."""
    compact = compact_record(None, record, with_value=True)
    return compact if compact is not None and len(compact) < len(record) else None


def expand_record(
    previous: bytes | None, compact: bytes, head: bytes | None = None, *, limits: Limits = DEFAULT_LIMITS
) -> bytes:
    """The exact record bytes a compact form stands for, relative to ``previous`` (None: the
    compact form must carry its TTL); ``head`` (the
    head page's CID) supplies the Value when the compact form has none. Not verified: the caller
    verifies the result (``verify_record``). :class:`DecodeError` for malformed input, or a
    compact form without Value when no ``head`` is given."""
    if len(compact) > limits.max_record:
        raise LimitExceeded("compact record", len(compact), limits.max_record)
    try:
        message = CompactRecord.FromString(compact)
    except _PbDecodeError as exc:
        raise DecodeError(f"not a compact record: {exc}") from exc
    if not 0 < len(message.signature) <= MAX_SIGNATURE:
        raise DecodeError(f"a compact record's signature has {len(message.signature)} bytes")
    if message.value:
        value = message.value
        if head is not None and value != head_value(head):
            raise DecodeError("a compact record's Value is not the head given")
    elif head is not None:
        value = head_value(head)
    else:
        raise DecodeError("a compact record without Value needs the head page's CID")
    kind = message.WhichOneof("validity")
    if kind == "validity_us":
        try:
            text = format_validity(_EPOCH + timedelta(microseconds=message.validity_us))
        except OverflowError as exc:
            raise DecodeError(f"a compact record's validity is out of range: {message.validity_us}") from exc
    elif kind == "validity_text":
        text = message.validity_text
    else:
        raise DecodeError("a compact record without validity")
    if message.HasField("ttl"):
        ttl = message.ttl
    else:
        old = _fields(previous) if previous is not None else None
        if old is None:
            raise DecodeError("the record a compact one is relative to is not one rlp2p writes")
        ttl = old[1]["TTL"]
    data = cbor2.dumps(
        {"Value": value, "Validity": text, "ValidityType": VALIDITY_TYPE_EOL, "Sequence": message.sequence, "TTL": ttl},
        canonical=True,
    )
    raw: bytes = _IpnsEntry(signatureV2=message.signature, data=data).SerializeToString(deterministic=True)
    if len(raw) > limits.max_record:
        raise LimitExceeded("expanded record", len(raw), limits.max_record)
    return raw


__all__ = ["MAX_SIGNATURE", "compact_record", "expand_record", "standalone_compact"]
