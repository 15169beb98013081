"""The store's split by role: each role interface has its own SQLite class, all on one connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlp2p.store import BlockStore, PublisherLogStore, ReaderStateStore, RecordStore, SQLiteStore, Store, open_store
from rlp2p.store.blocks import SQLiteBlocks
from rlp2p.store.publisher_log import SQLitePublisherLog
from rlp2p.store.reader_state import SQLiteReaderState
from rlp2p.store.records import SQLiteRecords

ROLES = [
    (BlockStore, SQLiteBlocks),
    (RecordStore, SQLiteRecords),
    (PublisherLogStore, SQLitePublisherLog),
    (ReaderStateStore, SQLiteReaderState),
]


def test_every_abstract_method_has_exactly_one_role() -> None:
    owners: dict[str, list[str]] = {}
    for role, _ in ROLES:
        for name in role.__abstractmethods__:
            owners.setdefault(name, []).append(role.__name__)
    assert {n: o for n, o in owners.items() if len(o) > 1} == {}
    assert set(Store.__abstractmethods__) == set(owners) | {"close"}


@pytest.mark.parametrize(("role", "impl"), ROLES, ids=[r.__name__ for r, _ in ROLES])
def test_each_sqlite_role_implements_its_whole_interface(role: type, impl: type) -> None:
    assert issubclass(impl, role)
    assert impl.__abstractmethods__ == frozenset()  # type: ignore[attr-defined]
    assert issubclass(SQLiteStore, impl)


def test_roles_share_one_connection_and_transactions(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.put_blocks([(b"a", b"one")])
        store.put_record("log", b"rec", 1, now=1.0)
        # delete_blocks (blocks role) checks the records role's table inside its own transaction
        assert store.delete_blocks([b"a"], cutoff=2.0, records={"log": b"other"}) is None
        assert store.block_stats() == (1, 3)
        assert store.delete_blocks([b"a"], cutoff=2.0, records={"log": b"rec"}) == (1, 3)


def test_test_only_calls_are_not_on_the_store() -> None:
    for name in ("put_block", "logs_held", "peer_usage"):
        assert not hasattr(SQLiteStore, name), name
