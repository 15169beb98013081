"""The announcement verdict: what may trigger a sync, what gossipsub must drop and score down."""

from datetime import datetime, timedelta, timezone

import pytest

from rlp2p.core.address import address_of
from rlp2p.core.announce import (
    TOPIC_PREFIX,
    announcement_id,
    judge_announcement,
    log_topic,
    topic_log,
)
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.record import create_record
from rlp2p.errors import DecodeError

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
KEY = generate_log_key()
OTHER = generate_log_key()
NAME = log_name(KEY.public_key)
HEAD = address_of(b"head page")


def record(seq: int, key=KEY, *, at: datetime = NOW, validity: timedelta = timedelta(days=7)) -> bytes:
    # with pubKey, so another key's record is told apart as WrongName
    return create_record(key, HEAD, seq, now=at, validity=validity, pub_key=True)


def judge(data: bytes, held_seq: int = 0, held_raw: bytes | None = None, topics=None, now=NOW, floor_seq=None):
    return judge_announcement(topics or [log_topic(NAME)], data, held_seq, held_raw, now=now, floor_seq=floor_seq)


def test_topic_is_the_prefix_and_the_name_and_back():
    assert log_topic(NAME) == "/rlp2p/log/" + NAME == TOPIC_PREFIX + NAME
    assert topic_log(log_topic(NAME)) == NAME
    for bad in ["/rlp2p/log/", "/rlp2p/log/nope", "/other/" + NAME, "/rlp2p/log/" + "1" * 300, 7]:
        with pytest.raises(DecodeError):
            topic_log(bad)


def test_a_newer_record_is_new_work():
    v = judge(record(3), held_seq=2, held_raw=record(2))
    assert v.accept and v.new and v.info is not None and v.info.sequence == 3 and v.info.name == NAME


def test_a_copy_of_the_record_held_is_passed_on_without_work():
    held = record(2)
    v = judge(held, held_seq=2, held_raw=held)
    assert v.accept and not v.new


@pytest.mark.parametrize(
    "data, held_seq, why",
    [
        (record(1), 2, "replay"),  # an older record, validly signed
        (record(2, at=NOW - timedelta(seconds=1)), 2, "replay"),  # same sequence, other bytes
        (record(3, OTHER), 0, "WrongName"),  # signed by another log's key
        (record(3)[:-3] + b"xyz", 0, "InvalidRecord"),  # altered
        (b"\x00" * 11 * 1024, 0, "RecordTooLarge"),
        (b"not a record", 0, "InvalidRecord"),
        (record(3, at=NOW - timedelta(days=8)), 0, "ExpiredRecord"),
    ],
)
def test_everything_else_is_rejected(data, held_seq, why):
    v = judge(data, held_seq=held_seq, held_raw=record(2) if held_seq else None)
    assert not v.accept and not v.new and why in v.reason


def test_an_announcement_for_several_topics_or_a_foreign_topic_is_rejected():
    assert not judge(record(1), topics=[log_topic(NAME), log_topic(NAME)]).accept
    assert not judge(record(1), topics=["/rlp2p/log/" + log_name(OTHER.public_key)]).accept
    assert not judge(record(1), topics=["chat"]).accept


def test_the_message_id_is_the_record_hash():
    assert announcement_id(record(1)) == announcement_id(record(1))
    assert announcement_id(record(1)) != announcement_id(record(2))


def test_a_late_copy_of_a_record_superseded_lately_is_passed_on_without_work():
    # held 2 a moment ago, 5 now: 2, 3 and 4 are late relays; 1 is a replay
    for seq in (2, 3, 4):
        v = judge(record(seq), held_seq=5, held_raw=record(5), floor_seq=2)
        assert v.accept and not v.new, seq
    v = judge(record(1), held_seq=5, held_raw=record(5), floor_seq=2)
    assert not v.accept and "replay" in v.reason
    # the same sequence as held, other bytes: never a late copy
    assert not judge(record(5, at=NOW - timedelta(seconds=1)), held_seq=5, held_raw=record(5), floor_seq=2).accept
