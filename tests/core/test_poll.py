"""rlp2p.core.poll: which peers a poll asks, and what their answers mean (no network)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name, name_to_peer_id
from rlp2p.core.poll import (
    NOT_HELD,
    OLDER,
    UNCHANGED,
    PeerAnswer,
    State,
    assign,
    combine,
    held_sequence,
    needs_more,
    settles,
    split,
)
from rlp2p.core.record import create_record, verify_record

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)
KEY = generate_log_key()
NAME = log_name(KEY.public_key)


def info(sequence: int, head: bytes = b"head", at: datetime = NOW):
    raw = create_record(KEY, address_of(head), sequence, now=at)
    return verify_record(NAME, raw, now=NOW)


def changed(sequence: int, head: bytes = b"head", at: datetime = NOW) -> PeerAnswer:
    return PeerAnswer(State.CHANGED, info(sequence, head, at))


def test_assign_asks_each_peer_once_for_all_its_logs():
    peers_of = {"a": ["p1", "p2", "p3", "p4"], "b": ["p2", "p1"], "c": ["p4"]}
    plan = assign(peers_of, {}, fanout=3)
    assert plan == {"p1": ["a", "b"], "p2": ["a", "b"], "p3": ["a"], "p4": ["c"]}
    # the next round goes past the peers asked, only for the logs named
    asked = {"a": {"p1", "p2", "p3"}, "b": {"p1", "p2"}, "c": {"p4"}}
    assert assign(peers_of, asked, fanout=3, only=["a", "b"]) == {"p4": ["a"]}
    assert assign(peers_of, asked, fanout=3, only=["b", "c"]) == {}
    with pytest.raises(ValueError):
        assign(peers_of, {}, fanout=0)


def test_all_unchanged_is_not_changed():
    result = combine(NAME, 4, {"p1": UNCHANGED, "p2": UNCHANGED, "p3": NOT_HELD}, ["p1", "p2", "p3"])
    assert not result.changed and result.best is None and result.answered == 3 and not result.behind
    assert not needs_more(result)


def test_caught_up_needs_a_peer_holding_the_same_sequence():
    same = combine(NAME, 4, {"p1": OLDER, "p2": UNCHANGED}, ["p1", "p2"])
    assert same.caught_up and same.same == 1 and same.older == ["p1"] and settles(same, NOW)
    # only older or no records: a sync asks with Fetch, whose rules say why (StaleRecord)
    behind = combine(NAME, 4, {"p1": OLDER, "p2": NOT_HELD}, ["p1", "p2"])
    assert not behind.caught_up and not behind.changed and not settles(behind, NOW)
    # a newer record settles it while it is fresh; an expired one goes by Fetch (looks further)
    newer = combine(NAME, 4, {"p1": changed(5)}, ["p1"])
    assert settles(newer, NOW) and not settles(newer, NOW + timedelta(days=8))


def test_a_withholding_replica_is_caught_by_another_with_newer():
    answers = {"p1": UNCHANGED, "p2": changed(5), "p3": NOT_HELD}
    result = combine(NAME, 4, answers, ["p1", "p2", "p3"])
    assert result.changed and result.best is not None and result.best.sequence == 5
    assert result.holders == ["p2"] and result.behind == ["p1", "p3"]


def test_best_record_wins_and_holders_are_those_with_its_head():
    answers = {"p1": changed(5, b"old"), "p2": changed(6, b"new"), "p3": changed(6, b"new", NOW - timedelta(hours=1))}
    result = combine(NAME, None, answers, ["p1", "p2", "p3"])
    assert result.best is not None and result.best.sequence == 6 and result.best.validity == NOW + timedelta(days=7)
    assert result.holders == ["p2", "p3"] and result.behind == ["p1"]


def test_a_changed_answer_not_above_what_is_held_is_a_failure():
    result = combine(NAME, 5, {"p1": changed(5), "p2": UNCHANGED}, ["p1", "p2"])
    assert not result.changed and "p1" in result.failed and result.answered == 1


def test_no_usable_answer_needs_more_peers():
    failed = PeerAnswer(State.FAILED, error="unreachable")
    result = combine(NAME, None, {"p1": failed}, ["p1", "p2"])
    assert needs_more(result) and result.failed == {"p1": "unreachable"}
    assert needs_more(combine(NAME, None, {}, ["p1"]))


def test_split_by_count_and_bytes_keeps_order():
    entries = [(bytes(38), None)] * 10
    assert split(entries, 4, 10_000) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert split(entries, 100, 3 * 54) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert split([], 10, 10) == []
    assert split([(bytes(500), 1)], 10, 10) == [[0]]  # one oversize entry still goes, alone


def test_held_sequence_reads_a_stored_record():
    raw = create_record(KEY, address_of(b"x"), 2**64 - 1, now=NOW)
    assert held_sequence(raw) == 2**64 - 1
    assert held_sequence(create_record(KEY, address_of(b"x"), 0, now=NOW, v1_compatible=True)) == 0
    assert held_sequence(b"\xff\x00garbage") is None


def test_names_travel_as_binary_peer_ids():
    assert len(name_to_peer_id(NAME).to_bytes()) == 38 < len(NAME)
