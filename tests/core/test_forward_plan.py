"""The upload-once plan: what a forward request lists, its limits, and what Alice believes."""

from __future__ import annotations

import pytest

from rlp2p.core.forward import (
    MAX_ADDR_BYTES,
    MAX_FORWARD_BLOCKS,
    MAX_FORWARD_TARGETS,
    Confirmation,
    Lacks,
    check_forward,
    confirm,
    plan_forward,
)
from rlp2p.errors import LimitExceeded


def addrs(*names: str) -> list[bytes]:
    return [n.encode() for n in names]


def test_replicas_in_step_share_one_list():
    shared, plans = plan_forward([addrs("m1", "p1"), addrs("m1", "p1")])
    assert shared == addrs("m1", "p1")
    assert [p.lacks for p in plans] == [Lacks.SHARED, Lacks.SHARED]
    assert all(p.blocks == [] for p in plans)


def test_a_replica_holding_nothing_gets_the_whole_log_and_a_lagging_one_its_own_list():
    shared, plans = plan_forward([addrs("m2", "p2"), None, addrs("m1", "m2", "p1", "p2"), addrs("m2", "p2")])
    assert shared == addrs("m2", "p2")
    assert [p.lacks for p in plans] == [Lacks.SHARED, Lacks.WHOLE, Lacks.OWN, Lacks.SHARED]
    assert plans[2].blocks == addrs("m1", "m2", "p1", "p2")


def test_lists_over_the_request_budget_become_whole():
    big = [bytes([i % 256, i // 256]) for i in range(MAX_FORWARD_BLOCKS + 1)]
    shared, plans = plan_forward([big])
    assert shared == [] and plans[0].lacks is Lacks.WHOLE
    shared, plans = plan_forward([addrs("a", "b"), addrs("a", "b"), addrs("c", "d", "e")], max_blocks=4)
    assert [p.lacks for p in plans] == [Lacks.SHARED, Lacks.SHARED, Lacks.WHOLE]
    assert len(shared) + sum(len(p.blocks) for p in plans) <= 4


def test_a_hostile_request_is_refused_before_any_work():
    check_forward(MAX_FORWARD_TARGETS, MAX_FORWARD_BLOCKS, [40] * MAX_FORWARD_TARGETS)
    with pytest.raises(LimitExceeded):
        check_forward(MAX_FORWARD_TARGETS + 1, 0, [])
    with pytest.raises(LimitExceeded):
        check_forward(2, MAX_FORWARD_BLOCKS + 1, [])
    with pytest.raises(LimitExceeded):
        check_forward(1, 0, [MAX_ADDR_BYTES + 1])
    with pytest.raises(LimitExceeded):
        check_forward(1, 0, [10] * 100)


def test_only_alices_own_fetch_confirms_a_replica():
    assert confirm(b"rec", 5, b"rec", 5) is Confirmation.STORED
    assert confirm(b"rec", 5, None, 0) is Confirmation.MISSING
    assert confirm(b"rec", 5, b"old", 4) is Confirmation.MISSING
    assert confirm(b"rec", 5, b"newer", 7) is Confirmation.HIGHER
