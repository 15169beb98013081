"""The /rlp2p/push/1.0.0 and 1.1.0 frames, without a network: what a hostile peer may send is refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.record import create_record, verify_record
from rlp2p.errors import DecodeError, RecordError
from rlp2p.limits import DEFAULT_LIMITS
from rlp2p.wire.push import MAX_PUSH_NAMES, decode_names, decode_push, encode_names, encode_push

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def test_names_round_trip_and_refuse_what_is_not_a_log_name():
    names = [log_name(generate_log_key().public_key) for _ in range(3)]
    assert decode_names(encode_names(names), DEFAULT_LIMITS) == names
    for bad in (b"\xff", b"not-a-peer-id", "\n".join(names[:1] * (MAX_PUSH_NAMES + 1)).encode()):
        with pytest.raises(DecodeError):
            decode_names(bad, DEFAULT_LIMITS)
    with pytest.raises(ValueError):
        encode_names([])


def test_a_pushed_record_is_verified_and_must_be_of_a_log_asked_for():
    key = generate_log_key()
    name = log_name(key.public_key)
    raw = create_record(key, address_of(b"head page"), 3, now=NOW, validity=timedelta(days=1))
    info = verify_record(name, raw, now=NOW)
    frame = encode_push(info)
    assert decode_push(frame, {name}, now=NOW, limits=DEFAULT_LIMITS).sequence == 3
    with pytest.raises(DecodeError):
        decode_push(frame, {"someone-else"}, now=NOW, limits=DEFAULT_LIMITS)
    with pytest.raises(DecodeError):
        decode_push(raw, {name}, now=NOW, limits=DEFAULT_LIMITS)  # no name
    with pytest.raises(RecordError):
        decode_push(frame[:-1] + bytes([frame[-1] ^ 1]), {name}, now=NOW, limits=DEFAULT_LIMITS)


def test_messages_frames_round_trip_and_refuse_what_is_out_of_bounds():
    from rlp2p.errors import LimitExceeded
    from rlp2p.wire.push import MAX_PUSH_MESSAGES, PUSH_MESSAGES_BYTES, decode_messages, encode_messages

    limits = DEFAULT_LIMITS
    messages = [(5, b"a" * 300), (6, b""), (200, b"b")]
    assert decode_messages(encode_messages(messages), limits) == messages
    assert decode_messages(b"", limits) == []
    with pytest.raises(DecodeError):
        decode_messages(b"\x05\x10abc", limits)  # says 16 bytes, holds 3
    with pytest.raises(DecodeError):
        decode_messages(b"\x00\x01a", limits)  # seq 0
    with pytest.raises(DecodeError):
        decode_messages(b"\xff" * 11, limits)  # a varint that never ends
    with pytest.raises(LimitExceeded):
        decode_messages(encode_messages([(i, b"x") for i in range(1, MAX_PUSH_MESSAGES + 2)]), limits)
    with pytest.raises(LimitExceeded):
        decode_messages(b"\x00" * (PUSH_MESSAGES_BYTES + 1), limits)


def test_a_storage_peer_picks_the_embedded_messages_a_stream_has_not_carried():
    from rlp2p.core.message import Message
    from rlp2p.core.page import LogEntry, LogMode, build_log
    from rlp2p.wire.push import embedded_messages, pick_messages

    def new_messages(page, after):
        embedded, newest = embedded_messages(page, DEFAULT_LIMITS)
        return pick_messages(embedded, newest, after), newest

    log = [LogEntry.from_message(i, Message(group_id=b"g", timestamp=i, body=b"x" * i)) for i in range(1, 6)]
    built = build_log(log, LogMode.paged(16, embed=3))
    head = dict(built.pages)[built.head]
    assert embedded_messages(head, DEFAULT_LIMITS) == ([(5, log[4].data), (4, log[3].data), (3, log[2].data)], 5)
    assert new_messages(head, None) == ([(5, log[4].data)], 5)  # first push: the newest
    assert new_messages(head, 3) == ([(4, log[3].data), (5, log[4].data)], 5)
    assert new_messages(head, 1) == ([(3, log[2].data), (4, log[3].data), (5, log[4].data)], 5)  # embedded only
    assert new_messages(head, 5) == ([], 5)
    assert new_messages(b"junk", None) == ([], 0)
