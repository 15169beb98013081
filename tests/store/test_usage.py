"""A storage peer's usage accounting and retention queries on a real SQLite file."""

from __future__ import annotations

import pytest

from rlp2p.errors import QuotaExceeded, StaleRecord
from rlp2p.store import open_store
from tests.store.helpers import peer_usage


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "s") as s:
        yield s


def blocks(*datas: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"addr-" + d, d) for d in datas]


class Admit:
    """Records what the store asked; refuses past ``limit`` new bytes or names."""

    def __init__(self, limit: int = 10**9) -> None:
        self.limit = limit
        self.asked: list[tuple] = []

    def blocks(self, usage, others, new_bytes):
        self.asked.append((usage, others, new_bytes))
        if usage[0] + new_bytes > self.limit:
            raise QuotaExceeded("over")

    def record(self, new_name, usage, others, log_bytes):
        self.asked.append((new_name, usage, others, log_bytes))
        if new_name and usage[1] + 1 > self.limit:
            raise QuotaExceeded("over")


def test_blocks_are_charged_once_to_their_first_writer(store):
    admit = Admit()
    assert store.put_blocks_as(blocks(b"aaaa", b"bb"), "p1", 100.0, admit.blocks) == 2
    # bb is p1's already; only c is new for p2, who is told everyone else's usage
    assert store.put_blocks_as(blocks(b"bb", b"c"), "p2", 101.0, admit.blocks) == 1
    assert admit.asked == [((0, 0), (0, 0), 6), ((0, 0), (6, 0), 1)]
    assert peer_usage(store, "p1") == (6, 0)
    assert peer_usage(store, "p2") == (1, 0)
    assert peer_usage(store, "nobody") == (0, 0)
    assert store.top_usage(1) == [("p1", 6, 0)]
    assert store.total_usage() == (7, 0)
    store.put_blocks_as(blocks(b"d"), "p2", 102.0, admit.blocks, exempt=["p1"])
    assert admit.asked[-1] == ((1, 0), (1, 0), 1)  # p1's bytes are not in "others"


def test_a_refused_batch_stores_nothing(store):
    admit = Admit(limit=5)
    store.put_blocks_as(blocks(b"aaaa"), "p1", 1.0, admit.blocks)
    with pytest.raises(QuotaExceeded):
        store.put_blocks_as(blocks(b"x", b"yy"), "p1", 2.0, admit.blocks)
    assert store.has_blocks([b"addr-x", b"addr-yy"]) == set()
    assert peer_usage(store, "p1") == (4, 0) and store.total_usage() == (4, 0)


def test_deleting_blocks_gives_their_bytes_back(store):
    admit = Admit()
    store.put_blocks_as(blocks(b"old"), "p1", 10.0, admit.blocks)
    store.put_blocks_as(blocks(b"new"), "p1", 50.0, admit.blocks)
    assert store.blocks_stored_before(20.0, b"", 10) == [b"addr-old"]
    # only blocks still stored before the cut-off go, whatever the caller names
    assert store.delete_blocks([b"addr-old", b"addr-new"], cutoff=20.0) == (1, 3)
    assert peer_usage(store, "p1") == (3, 0)
    assert store.total_usage() == (3, 0)
    assert store.has_blocks([b"addr-old", b"addr-new"]) == {b"addr-new"}


def test_a_delete_checks_the_records_it_was_marked_from(store):
    store.put_blocks(blocks(b"x"))
    store.put_record("log", b"r1", 1)
    assert store.delete_blocks([b"addr-x"], cutoff=10.0, records={"log": b"r0"}) is None
    assert store.has_blocks([b"addr-x"]) == {b"addr-x"}
    assert store.delete_blocks([b"addr-x"], cutoff=10.0, records={"log": b"r1"}) == (1, 1)


def test_blocks_of_unknown_time_count_as_old_and_sweep_resumes_in_order(store):
    store.put_blocks(blocks(*(b"%03d" % i for i in range(7))))  # a local write: never charged
    first = store.blocks_stored_before(0.0, b"", 3)
    rest = store.blocks_stored_before(0.0, first[-1], 10)
    assert len(first) == 3 and len(rest) == 4 and first[-1] < rest[0]
    assert store.block_sizes([first[0], b"absent"]) == {first[0]: 3}
    assert store.total_usage() == (0, 0)


def test_records_charge_their_creator_one_name_and_stale_ones_are_dropped(store):
    admit = Admit(limit=2)
    store.put_record_as("log1", b"r1", 1, "p1", 100.0, admit.record)
    store.put_record_as("log1", b"r2", 2, "p2", 200.0, admit.record)  # an update: p1 stays creator
    with pytest.raises(StaleRecord):
        store.put_record_as("log1", b"r2", 2, "p2", 201.0, admit.record)
    store.put_record_as("log2", b"x", 1, "p1", 150.0, admit.record)
    with pytest.raises(QuotaExceeded):
        store.put_record_as("log3", b"x", 1, "p1", 160.0, admit.record)
    assert store.get_record("log3") is None
    assert admit.asked[:2] == [(True, (0, 0), (0, 0), 0), (False, (0, 0), (0, 1), 0)]
    assert peer_usage(store, "p1") == (0, 2) and peer_usage(store, "p2") == (0, 0)
    assert store.get_record("log1").updated_at == 200.0
    assert store.stale_names(180.0, 10) == ["log2"]
    assert store.drop_records(["log2", "log1"], updated_before=180.0) == ["log2"]
    assert peer_usage(store, "p1") == (0, 1)
    assert store.total_usage() == (0, 1)
    assert store.record_names() == ["log1"] and store.record_count() == 1
    store.set_log_bytes({"log1": 1234, "gone": 5})
    assert store.log_bytes("log1") == 1234 and store.log_bytes("gone") == 0
    store.put_record_as("log1", b"r3", 3, "p1", 300.0, admit.record)
    assert admit.asked[-1] == (False, (0, 1), (0, 1), 1234)  # the measured size goes to admission
    assert store.heads() == {"log1": (b"r3", 300.0)}
