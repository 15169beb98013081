from datetime import datetime, timedelta, timezone

import cbor2
import pytest

from rlp2p.core.address import address_of
from rlp2p.core.compact import compact_record, expand_record, standalone_compact
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.record import _IpnsEntry, create_record, verify_record
from rlp2p.errors import DecodeError, InvalidRecord, LimitExceeded
from rlp2p.pb.vac.compact_pb2 import CompactRecord

KEY = generate_log_key()
NAME = log_name(KEY.public_key)
NOW = datetime(2030, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
HEAD1 = address_of(b"page one")
HEAD2 = address_of(b"page two")
PREV = create_record(KEY, HEAD1, 1, now=NOW)
REC = create_record(KEY, HEAD2, 2, now=NOW + timedelta(seconds=3))


@pytest.mark.parametrize("with_value", [True, False])
def test_round_trip(with_value: bool) -> None:
    compact = compact_record(PREV, REC, with_value=with_value)
    assert compact is not None
    assert len(compact) < (80 if not with_value else 150) < len(REC)
    raw = expand_record(PREV, compact, None if with_value else HEAD2)
    assert raw == REC
    info = verify_record(NAME, raw, now=NOW)
    assert (info.sequence, info.head) == (2, HEAD2)


def test_sizes() -> None:
    bare = compact_record(PREV, REC, with_value=False)
    full = compact_record(PREV, REC, with_value=True)
    assert bare is not None and full is not None
    assert (len(REC), len(full), len(bare)) == (221, 144, 77)


def test_changed_ttl_is_carried() -> None:
    rec = create_record(KEY, HEAD2, 2, now=NOW, ttl=timedelta(minutes=5))
    compact = compact_record(PREV, rec, with_value=False)
    assert compact is not None and CompactRecord.FromString(compact).HasField("ttl")
    assert expand_record(PREV, compact, HEAD2) == rec
    assert not CompactRecord.FromString(compact_record(PREV, REC, with_value=False) or b"").HasField("ttl")


def test_non_canonical_validity_travels_as_text() -> None:
    entry = _IpnsEntry.FromString(REC)
    data = cbor2.loads(entry.data)
    data["Validity"] = b"2030-05-08T12:00:03.123456789Z"  # nanoseconds format_validity never writes
    entry.data = cbor2.dumps(data, canonical=True)
    rec = entry.SerializeToString(deterministic=True)
    compact = compact_record(PREV, rec, with_value=True)
    assert compact is not None and CompactRecord.FromString(compact).WhichOneof("validity") == "validity_text"
    assert expand_record(PREV, compact) == rec


@pytest.mark.parametrize(
    "record",
    [
        create_record(KEY, HEAD2, 2, now=NOW, v1_compatible=True),
        create_record(KEY, HEAD2, 2, now=NOW, pub_key=True),
        b"not a record",
    ],
)
def test_unusual_records_are_not_compacted(record: bytes) -> None:
    assert compact_record(PREV, record, with_value=True) is None
    assert compact_record(PREV, record, with_value=False) is None


def test_non_canonical_cbor_is_not_compacted() -> None:
    entry = _IpnsEntry.FromString(REC)
    data = cbor2.loads(entry.data)
    entry.data = cbor2.dumps(dict(reversed(list(data.items()))))  # keys out of DAG-CBOR order
    assert compact_record(PREV, entry.SerializeToString(deterministic=True), with_value=True) is None


def test_previous_must_be_ours() -> None:
    assert compact_record(create_record(KEY, HEAD1, 1, now=NOW, v1_compatible=True), REC, with_value=True) is None


def _tampered(field: str, value: object) -> bytes:
    message = CompactRecord.FromString(compact_record(PREV, REC, with_value=True) or b"")
    setattr(message, field, value)
    return message.SerializeToString()


@pytest.mark.parametrize(
    "compact",
    [
        _tampered("signature", bytes(64)),
        _tampered("sequence", 3),
        _tampered("validity_us", 1),
        _tampered("value", b"/ipfs/" + b"b" * 59),
        _tampered("ttl", 1),
    ],
)
def test_tampered_fails_verification(compact: bytes) -> None:
    raw = expand_record(PREV, compact)
    with pytest.raises(InvalidRecord):
        verify_record(NAME, raw, now=NOW)


def test_wrong_head_fails_verification() -> None:
    compact = compact_record(PREV, REC, with_value=False)
    assert compact is not None
    with pytest.raises(InvalidRecord):
        verify_record(NAME, expand_record(PREV, compact, HEAD1), now=NOW)


@pytest.mark.parametrize(
    "compact, head",
    [
        (b"\xff\xff", HEAD2),  # not protobuf
        (CompactRecord(sequence=2, validity_us=1).SerializeToString(), HEAD2),  # no signature
        (CompactRecord(signature=b"s" * 513, sequence=2, validity_us=1).SerializeToString(), HEAD2),
        (CompactRecord(signature=b"s" * 64, sequence=2).SerializeToString(), HEAD2),  # no validity
        (CompactRecord(signature=b"s" * 64, sequence=2, validity_us=2**63).SerializeToString(), HEAD2),
        (CompactRecord(signature=b"s" * 64, sequence=2, validity_us=1).SerializeToString(), None),  # no head
        (CompactRecord(signature=b"s" * 64, sequence=2, validity_us=1, value=b"/ipfs/x").SerializeToString(), HEAD2),
    ],
)
def test_malformed_is_refused(compact: bytes, head: bytes | None) -> None:
    with pytest.raises(DecodeError):
        expand_record(PREV, compact, head)


def test_sizes_are_checked_before_parsing() -> None:
    with pytest.raises(LimitExceeded):
        expand_record(PREV, b"\x0a" * (10 * 1024 + 1))


def test_previous_without_ttl_needs_one() -> None:
    compact = compact_record(PREV, REC, with_value=True)
    assert compact is not None
    with pytest.raises(DecodeError):
        expand_record(b"junk", compact)


def test_without_a_previous_record_the_ttl_travels() -> None:
    compact = compact_record(None, REC, with_value=True)
    assert compact is not None and CompactRecord.FromString(compact).HasField("ttl")
    assert len(compact) == 151
    assert expand_record(None, compact) == REC
    bare = compact_record(PREV, REC, with_value=True)
    assert bare is not None
    with pytest.raises(DecodeError):
        expand_record(None, bare)  # no TTL and nothing to take it from


def test_the_standalone_form_is_the_one_without_a_previous_record() -> None:
    # what an upload and a poll answer carry: Value and TTL, expandable from nothing else
    assert standalone_compact(REC) == compact_record(None, REC, with_value=True)
    assert expand_record(None, standalone_compact(REC)) == REC
    assert standalone_compact(create_record(KEY, HEAD2, 2, now=NOW, v1_compatible=True)) is None
