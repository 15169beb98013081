"""A reader's writes commit without fsync when the store's ``deliveries`` is NORMAL; every other
write keeps the store's own ``synchronous`` (FULL): a power cut may undo the last deliveries,
which the next sync delivers again, never a publisher's or a storage peer's write."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rlp2p.errors import StoreError
from rlp2p.node.node import Node, NodeConfig
from rlp2p.store import open_store

LOG = "12D3KooWLogName"


def addr(n: str) -> bytes:
    return hashlib.sha256(n.encode()).digest()


def traced(store) -> list[str]:
    """The statements the store's connection runs from now on."""
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    return seen


def synchronous(store) -> int:
    with store._read() as conn:
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def test_a_delivery_commits_without_fsync_and_the_connection_goes_back_to_full(tmp_path: Path) -> None:
    with open_store(tmp_path, deliveries="NORMAL") as store:
        seen = traced(store)
        store.set_reader_record(LOG, b"rec1", 1, addr("h1"))
        store.deliver(LOG, [(1, b"id1", b"m1")], acked_seq=1)
        begins = [i for i, s in enumerate(seen) if s.startswith("BEGIN IMMEDIATE")]
        assert len(begins) == 2
        for at in begins:  # NORMAL just before each write transaction, FULL again after it
            assert seen[at - 1] == "PRAGMA synchronous = NORMAL"
            commit = seen.index("COMMIT", at)
            assert seen[commit + 1] == "PRAGMA synchronous = FULL"
        assert synchronous(store) == 2  # FULL


def test_a_publisher_write_keeps_full(tmp_path: Path) -> None:
    with open_store(tmp_path, deliveries="NORMAL") as store:
        seen = traced(store)
        store.append_messages(LOG, [b"m1"])
        assert not any("synchronous" in s for s in seen)


def test_a_failed_delivery_still_gives_the_connection_back_full(tmp_path: Path) -> None:
    with open_store(tmp_path, deliveries="NORMAL") as store:
        store.set_reader_record(LOG, b"rec1", 1, addr("h1"))
        with pytest.raises(StoreError):
            store.ack(LOG, 5)  # never delivered: refused inside the transaction
        assert synchronous(store) == 2


def test_by_default_a_delivery_is_as_durable_as_the_rest(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        seen = traced(store)
        store.set_reader_record(LOG, b"rec1", 1, addr("h1"))
        assert not any("synchronous" in s for s in seen)
    with pytest.raises(ValueError):
        open_store(tmp_path / "other", deliveries="OFF")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (NodeConfig(), "NORMAL"),
        (NodeConfig(durable_deliveries=True), "FULL"),
        (NodeConfig(storage=True), "FULL"),
    ],
)
def test_node_open_relaxes_deliveries_only_off_storage_peers(tmp_path: Path, config, expected) -> None:
    node = Node.open(tmp_path, config=config)
    try:
        assert node.store.deliveries == expected and node.store.synchronous == "FULL"
    finally:
        node.close_store()
