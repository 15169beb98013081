"""Store.deliver_head: a pushed record's whole next state in one transaction, or nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlp2p.store import ReaderState, SQLiteStore, open_store

LOG = "12D3KooWLogName"


def addr(n: int | str) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with open_store(tmp_path / "node") as s:
        s.set_reader_record(LOG, b"rec1", 1, addr("h1"))
        s.deliver(LOG, [(1, b"id1", b"m1"), (2, b"id2", b"m2")], acked_seq=2)
        yield s


def item(seq: int) -> tuple[int, bytes, bytes]:
    return (seq, f"id{seq}".encode(), f"m{seq}".encode())


def test_the_next_state_goes_in_at_once(store: SQLiteStore) -> None:
    assert store.deliver_head(LOG, b"rec2", 2, addr("h2"), b"page2", [item(3), item(4)], after_head=addr("h1"))
    assert store.get_reader_state(LOG) == ReaderState(b"rec2", 2, addr("h2"), 4, 2)
    assert [seq for seq, _, _ in store.delivered(LOG)] == [1, 2, 3, 4]
    assert store.get_blocks([addr("h2")]) == {addr("h2"): b"page2"}


@pytest.mark.parametrize(
    "why",
    ["another head held", "not newer", "a gap", "not from delivered + 1", "unacknowledged", "unknown log", "nothing"],
)
def test_anything_else_writes_nothing(store: SQLiteStore, why: str) -> None:
    log, seq, after, items = LOG, 2, addr("h1"), [item(3)]
    if why == "another head held":
        after = addr("h0")
    elif why == "not newer":
        seq = 1
    elif why == "a gap":
        items = [item(3), item(5)]
    elif why == "not from delivered + 1":
        items = [item(4)]
    elif why == "unacknowledged":
        store.deliver(LOG, [item(3)])
        items = [item(4)]
    elif why == "unknown log":
        log = "12D3KooWOther"
    else:
        items = []
    before = store.get_reader_state(log), store.delivered(log)
    assert not store.deliver_head(log, b"rec2", seq, addr("h2"), b"page2", items, after_head=after)
    assert (store.get_reader_state(log), store.delivered(log)) == before
    assert store.get_blocks([addr("h2")]) == {}
