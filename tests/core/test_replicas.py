from datetime import datetime, timedelta, timezone

import pytest

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.record import create_record, verify_record
from rlp2p.core.replicas import (
    MAX_HINTS,
    add_hints,
    fallover_order,
    hint_budget,
    judge_records,
    next_batch,
    write_quorum,
)

KEY = generate_log_key()
NAME = log_name(KEY.public_key)
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
HEAD_1, HEAD_2 = address_of(b"page one"), address_of(b"page two")


def info(seq, head=HEAD_1, validity=timedelta(days=7)):
    return verify_record(NAME, create_record(KEY, head, seq, validity=validity, now=NOW), now=NOW)


def test_write_quorum_is_a_majority_unless_given():
    assert [write_quorum(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    assert write_quorum(3, 1) == 1 and write_quorum(3, 3) == 3
    for replicas, quorum in ((0, None), (3, 4), (3, -1)):
        with pytest.raises(ValueError):
            write_quorum(replicas, quorum)


def test_each_failed_replica_is_replaced_by_the_next_candidate():
    assert next_batch(["a", "b", "c", "d", "e"], 0, 3) == (["a", "b", "c"], ["d", "e"])
    # one of the three stored: two more from the rest
    assert next_batch(["d", "e", "f"], 1, 3) == (["d", "e"], ["f"])
    assert next_batch(["d"], 3, 3) == ([], ["d"])
    assert next_batch([], 0, 3) == ([], [])


def test_the_best_record_wins_and_older_ones_are_named():
    found = {"a": info(1), "b": info(2, HEAD_2), "c": info(1, HEAD_2, validity=timedelta(days=1))}
    judged = judge_records(found, ["a", "b", "c", "d"])
    assert judged.best.sequence == 2 and judged.best.head == HEAD_2
    # c holds the same head under an older record (it missed a renewal): it holds the blocks
    assert judged.holders == ["b", "c"]
    assert list(judged.older) == ["a"] and "seq 1 < 2" in judged.older["a"]


def test_a_tie_goes_to_the_first_peer_asked_and_validity_breaks_equal_sequences():
    early, late = info(3, HEAD_1, timedelta(days=1)), info(3, HEAD_2, timedelta(days=2))
    judged = judge_records({"a": early, "b": late}, ["a", "b"])
    assert judged.best.head == HEAD_2 and "validity" in judged.older["a"]
    same = info(3, HEAD_1)
    assert judge_records({"x": same, "y": info(3, HEAD_1)}, ["y", "x"]).holders == ["y", "x"]
    with pytest.raises(ValueError):
        judge_records({}, ["a"])


def test_fallover_goes_to_holders_first_then_the_rest_once_each():
    assert fallover_order(["a", "b", "c", "d"], ["c", "a"]) == ["c", "a", "b", "d"]
    assert fallover_order(["a", "a", "b"], []) == ["a", "b"]


def test_hints_are_bounded_and_come_last_without_repeats():
    hints = [bytes([i]) for i in range(MAX_HINTS + 5)]
    assert hint_budget(hints) == hints[:MAX_HINTS]
    order = ["c"]
    add_hints(order, ["a", "x", "x", "y", "c"], known=["a", "b", "c"])
    assert order == ["c", "x", "y"]
