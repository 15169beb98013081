"""Data folders written by older releases open with today's code and keep their contents."""

import shutil
import sqlite3
from pathlib import Path

import pytest

from rlp2p.store import open_store
from rlp2p.store.sqlite import DB_FILENAME, SCHEMA_VERSION
from tests.store.helpers import peer_usage

V1 = Path(__file__).parent.parent / "fixtures" / "store-v1"


@pytest.fixture
def v1(tmp_path):
    root = tmp_path / "v1"
    shutil.copytree(V1, root)
    return root


def test_v1_fixture_is_version_1():
    conn = sqlite3.connect(f"file:{V1 / 'alice' / DB_FILENAME}?mode=ro&immutable=1", uri=True)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    finally:
        conn.close()


def test_v1_folders_open_and_keep_their_contents(v1):
    name = (v1 / "name.txt").read_text().strip()
    with open_store(v1 / "alice") as alice:
        assert alice.log_length(name) == 5
        state = alice.get_publish_state(name)
        assert state is not None and state.record_seq == 1
    with open_store(v1 / "storage0") as storage:
        held = storage.get_record(name)
        assert held is not None and held.sequence == 1
    with open_store(v1 / "bob") as bob:
        state = bob.get_reader_state(name)
        # version 2: what a reader delivered before counts as acknowledged by the application
        assert (state.delivered_seq, state.acked_seq) == (5, 5)
    for who in ("alice", "storage0", "bob"):
        conn = sqlite3.connect(v1 / who / DB_FILENAME)
        try:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        finally:
            conn.close()


def test_v1_storage_folder_gets_usage_accounting_and_keeps_serving(v1):
    """Version 4 (usage accounting): v1 blocks and records have no writer and an unknown time;
    they are served as before, nobody is charged for them, and new writes are accounted."""
    from rlp2p.node.storage import head_of

    name = (v1 / "name.txt").read_text().strip()
    with open_store(v1 / "storage0") as storage:
        count, size = storage.block_stats()
        assert count > 0
        held = storage.get_record(name)
        head = head_of(held.record)
        assert head is not None and storage.get_blocks([head])[head]
        assert storage.top_usage(10) == []
        assert storage.heads() == {name: (held.record, held.updated_at)}
        assert storage.log_bytes(name) == 0  # not measured yet
        # v1 blocks were stored at an unknown time: retention may consider all of them
        assert len(storage.blocks_stored_before(0.0, b"", count + 1)) == count
        # a re-upload of a v1 block is nobody's new bytes; a new block is its writer's
        asked = []
        stored = storage.put_blocks_as(
            [(head, storage.get_block(head)), (b"new-address", b"new")], "writer", 1.0, lambda *a: asked.append(a)
        )
        assert stored == 1 and asked == [((0, 0), (0, 0), 3)]
        assert peer_usage(storage, "writer") == (3, 0)
        assert storage.total_usage() == (3, 0)  # the v1 blocks are nobody's
        # the v1 record's creator is unknown: the first writer to update it becomes its creator
        storage.put_record_as(name, b"newer", held.sequence + 1, "writer", 2.0, lambda *a: asked.append(a))
        assert asked[-1] == (False, (3, 0), (3, 0), 0)
        assert peer_usage(storage, "writer") == (3, 1)
        assert storage.block_stats() == (count + 1, size + 3)
def test_v1_publisher_state_becomes_holdings_and_a_reserved_sequence(v1):
    name = (v1 / "name.txt").read_text().strip()
    with open_store(v1 / "storage0") as storage:
        replica = storage.get_record(name)
    with open_store(v1 / "alice") as alice:
        state = alice.get_publish_state(name)
        assert state is not None and state.reserved_seq == state.record_seq == 1
        # the per-block acknowledgements are dropped: "nothing held", one re-upload, correct
        assert alice.replica_holding(name, "anyone") is None
    conn = sqlite3.connect(v1 / "alice" / DB_FILENAME)
    try:
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert "replicas" not in tables and "replica_holdings" in tables
    assert replica is not None


async def test_v1_folders_publish_and_sync_on(v1, nursery):
    """Alice (her v1 folder) publishes two more through the v1 storage peer; Bob, opened from his
    v1 folder, gets exactly those: nothing handed over again, nothing fetched that he holds."""
    from rlp2p.core.keys import load_key
    from rlp2p.core.page import LogMode
    from rlp2p.node.swarm import LocalSwarm

    name = (v1 / "name.txt").read_text().strip()
    swarm = LocalSwarm(v1, nursery, timeout=5.0)
    try:
        storage = await swarm.start_node("storage0", storage=True, bootstrap=())
        alice = await swarm.start_node("alice")
        publisher = alice.publisher(load_key(v1 / "alice.key"), mode=LogMode.paged(2, embed=1), replicas=1)
        assert publisher.name == name
        assert await publisher.append([b"m6", b"m7"]) == [6, 7]
        published = await publisher.publish()
        assert published.sequence == 2 and published.stored_on == [storage.peer_id.to_string()]
        await swarm.stop(alice)
        bob = await swarm.start_node("bob")
        got: list = []
        report = await bob.reader().sync(name, on_message=got.append)
        assert [(d.seq, d.message.body) for d in got] == [(6, b"m6"), (7, b"m7")]
        assert report.redelivered == 0 and (report.delivered_seq, report.acked_seq) == (7, 7)
        assert [seq for seq, _, _ in bob.store.delivered(name)] == list(range(1, 8))
    finally:
        await swarm.close()


def test_v1_folders_take_private_logs(v1):
    """Version 5 (private logs): every v1 log is public; a log becomes private with its seed, and
    its epochs are only ever added."""
    from rlp2p.core.private import PrivateState, new_seed
    from rlp2p.errors import StoreError

    name = (v1 / "name.txt").read_text().strip()
    with open_store(v1 / "alice") as alice:
        assert alice.private_state(name) is None
        state = PrivateState(new_seed())
        alice.set_private_state("other-log", state)
        alice.set_private_state("other-log", state.rotated(4))
        assert alice.private_state("other-log") == PrivateState(state.seed, (1, 5))
        with pytest.raises(StoreError):
            alice.set_private_state("other-log", PrivateState(new_seed()))
        assert alice.log_length(name) == 5
    with open_store(v1 / "alice") as alice:
        assert alice.private_state("other-log") == PrivateState(state.seed, (1, 5))
