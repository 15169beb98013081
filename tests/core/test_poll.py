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
    claims_to_fetch,
    combine,
    held_sequence,
    needs_more,
    record_asks,
    resolve,
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


def newer(sequence: int) -> PeerAnswer:
    return PeerAnswer(State.NEWER, sequence=sequence)


def test_one_peer_per_log_is_asked_for_the_record_the_first_a_sync_would_go_to():
    peers_of = {"a": ["p1", "p2", "p3", "p4"], "b": ["p2", "p1"], "c": ["p4"]}
    plan = assign(peers_of, {}, fanout=3)
    assert record_asks(peers_of, plan) == {"a": "p1", "b": "p2", "c": "p4"}
    # a second round (the first peers all failed): the first of the next ones
    asked = {"a": {"p1", "p2", "p3"}}
    assert record_asks(peers_of, assign(peers_of, asked, fanout=3, only=["a"])) == {"a": "p4"}


def test_sequences_equal_to_the_record_received_are_holders_and_nothing_is_left_to_fetch():
    result = combine(NAME, 4, {"p1": changed(5), "p2": newer(5), "p3": UNCHANGED}, ["p1", "p2", "p3"])
    assert result.best.sequence == 5 and result.holders == ["p1", "p2"] and result.behind == ["p3"]
    assert not result.claims and claims_to_fetch(result, {"p1"}) is None and settles(result, NOW)
    # a peer holding a lower newer sequence is behind
    lagging = combine(NAME, 4, {"p1": changed(6), "p2": newer(5)}, ["p1", "p2"])
    assert lagging.holders == ["p1"] and lagging.behind == ["p2"] and not lagging.claims


def test_a_withholding_record_peer_leaves_a_claim_to_fetch_and_nothing_settles_before():
    # p1 (asked for the record) says "unchanged", p2 and p3 say they hold 6 and 7
    answers = {"p1": UNCHANGED, "p2": newer(6), "p3": newer(7)}
    result = combine(NAME, 4, answers, ["p1", "p2", "p3"])
    assert result.changed and result.best is None and result.claims == {"p2": 6, "p3": 7}
    assert not result.caught_up and not settles(result, NOW) and not needs_more(result)
    assert claims_to_fetch(result, {"p1"}) == "p3"  # the highest first
    assert claims_to_fetch(result, {"p1", "p3"}) == "p2" and claims_to_fetch(result, {"p1", "p2", "p3"}) is None
    # p3 backs its claim: its record is the best, p2 (6) is behind, p1 withheld
    answers["p3"] = resolve(answers["p3"], changed(7))
    after = combine(NAME, 4, answers, ["p1", "p2", "p3"])
    assert after.best.sequence == 7 and after.holders == ["p3"] and after.behind == ["p1", "p2"] and not after.claims
    # a record received below a claim: the claim is fetched too
    below = combine(NAME, 4, {"p1": changed(5), "p2": newer(7)}, ["p1", "p2"])
    assert below.best.sequence == 5 and below.claims == {"p2": 7} and claims_to_fetch(below, {"p1"}) == "p2"
    assert not settles(below, NOW)


def test_ties_between_claims_go_to_the_first_asked():
    result = combine(NAME, 4, {"p1": PeerAnswer(State.FAILED, error="x"), "p2": newer(6), "p3": newer(6)}, ["p1", "p2", "p3"])
    assert claims_to_fetch(result, {"p1"}) == "p2"


def test_a_claim_not_backed_is_a_typed_failure_and_a_newer_one_is_kept():
    claim = newer(7)
    assert resolve(claim, changed(7)).info.sequence == 7
    assert resolve(claim, changed(8)).info.sequence == 8  # it moved on meanwhile: better still
    lower = resolve(claim, changed(5))
    assert lower.state is State.FAILED and lower.error.startswith("UnbackedSequence") and "sequence 5" in lower.error
    bad = resolve(claim, PeerAnswer(State.FAILED, error="record: InvalidRecord: bad signature"))
    assert bad.state is State.FAILED and "UnbackedSequence" in bad.error and "InvalidRecord" in bad.error
    for answer in (UNCHANGED, OLDER, NOT_HELD, newer(7)):
        assert resolve(claim, answer).state is State.FAILED
    result = combine(NAME, 4, {"p1": changed(5), "p2": lower}, ["p1", "p2"])
    assert result.best.sequence == 5 and "p2" in result.failed and not result.claims


def test_a_newer_answer_not_above_what_is_held_is_a_failure():
    result = combine(NAME, 5, {"p1": newer(5), "p2": newer(3), "p3": UNCHANGED}, ["p1", "p2", "p3"])
    assert set(result.failed) == {"p1", "p2"} and not result.claims and result.caught_up
