import hashlib

import pytest
from hypothesis import given, strategies as st

from rlp2p.core.message import Message, message_id
from rlp2p.errors import DecodeError, LimitExceeded
from rlp2p.limits import Limits


def test_message_id_is_the_mvds_rule():
    group, ts, body = b"\x01" * 32, 1_700_000_000, b"hello"
    expected = hashlib.sha256(b"MESSAGE_ID" + group + ts.to_bytes(8, "little") + body).digest()
    assert message_id(group, ts, body) == expected
    assert Message(group, ts, body).id == expected


def test_negative_timestamp_is_twos_complement_like_go():
    expected = hashlib.sha256(b"MESSAGE_ID" + b"g" + (2**64 - 1).to_bytes(8, "little") + b"b").digest()
    assert message_id(b"g", -1, b"b") == expected


def test_timestamp_out_of_int64_range_is_refused():
    with pytest.raises(ValueError):
        message_id(b"g", 2**63, b"b")


def test_encoding_uses_rfc_field_numbers():
    data = Message(b"g", 1, b"b").encode()
    # field 6001, wire type 2: key 6001 << 3 | 2 = 48010, as a varint 0x8a 0xf7 0x02
    assert data.startswith(bytes([0x8A, 0xF7, 0x02, 0x01]) + b"g")


@given(st.binary(max_size=64), st.integers(-(2**63), 2**63 - 1), st.binary(max_size=256))
def test_roundtrip(group, ts, body):
    m = Message(group, ts, body)
    assert Message.decode(m.encode()) == m


def test_decode_refuses_garbage_and_oversize():
    with pytest.raises(DecodeError):
        Message.decode(b"\xff\xff\xff")
    with pytest.raises(LimitExceeded):
        Message.decode(b"\x00" * 11, Limits(max_message=10))
