"""A storage peer's usage accounting and retention queries on a real SQLite file."""

from __future__ import annotations

import pytest

from rlp2p.errors import NotFound
from rlp2p.store import open_store


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "s") as s:
        yield s


def blocks(*datas: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"addr-" + d, d) for d in datas]


def test_blocks_are_charged_once_to_their_first_writer(store):
    store.put_blocks(blocks(b"aaaa", b"bb"))
    assert store.account_blocks("p1", [b"addr-aaaa", b"addr-bb"], now=100.0) == 6
    store.put_blocks(blocks(b"bb", b"c"))
    # bb is p1's already; only c is new for p2
    assert store.account_blocks("p2", [b"addr-bb", b"addr-c"], now=101.0) == 1
    assert store.peer_usage("p1") == (6, 0)
    assert store.peer_usage("p2") == (1, 0)
    assert store.peer_usage("nobody") == (0, 0)
    assert store.top_usage(1) == [("p1", 6, 0)]
    assert store.total_usage() == (7, 0)


def test_deleting_blocks_gives_their_bytes_back(store):
    store.put_blocks(blocks(b"old", b"new"))
    store.account_blocks("p1", [b"addr-old"], now=10.0)
    store.account_blocks("p1", [b"addr-new"], now=50.0)
    assert store.blocks_stored_before(20.0, b"", 10) == [b"addr-old"]
    # only blocks still stored before the cut-off go, whatever the caller names
    assert store.delete_blocks([b"addr-old", b"addr-new"], cutoff=20.0) == (1, 3)
    assert store.peer_usage("p1") == (3, 0)
    assert store.total_usage() == (3, 0)
    assert store.has_blocks([b"addr-old", b"addr-new"]) == {b"addr-new"}


def test_blocks_of_unknown_time_count_as_old_and_sweep_resumes_in_order(store):
    store.put_blocks(blocks(*(b"%03d" % i for i in range(7))))  # a local write: never accounted
    first = store.blocks_stored_before(0.0, b"", 3)
    rest = store.blocks_stored_before(0.0, first[-1], 10)
    assert len(first) == 3 and len(rest) == 4 and first[-1] < rest[0]
    assert store.block_sizes([first[0], b"absent"]) == {first[0]: 3}


def test_records_charge_their_creator_one_name_and_stale_ones_are_dropped(store):
    store.put_record("log1", b"r1", 1, now=100.0)
    assert store.account_record("log1", "p1", now=100.0) is True
    store.put_record("log1", b"r2", 2, now=200.0)
    assert store.account_record("log1", "p2", now=200.0) is False  # an update: p1 stays creator
    store.put_record("log2", b"x", 1, now=150.0)
    store.account_record("log2", "p1", now=150.0)
    assert store.peer_usage("p1") == (0, 2)
    assert store.get_record("log1").updated_at == 200.0
    assert store.stale_names(180.0, 10) == ["log2"]
    assert store.drop_records(["log2", "log1"], updated_before=180.0) == ["log2"]
    assert store.peer_usage("p1") == (0, 1)
    assert store.total_usage() == (0, 1)
    assert store.record_names() == ["log1"] and store.record_count() == 1
    store.set_log_bytes({"log1": 1234, "gone": 5})
    assert store.log_bytes("log1") == 1234 and store.log_bytes("gone") == 0
    assert store.heads() == {"log1": (b"r2", 200.0)}
    with pytest.raises(NotFound):
        store.account_record("gone", "p1", now=1.0)
