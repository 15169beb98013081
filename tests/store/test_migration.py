"""Data folders written by older releases open with today's code and keep their contents."""

import shutil
import sqlite3
from pathlib import Path

import pytest

from rlp2p.store import open_store
from rlp2p.store.sqlite import DB_FILENAME, SCHEMA_VERSION

V1 = Path(__file__).parent.parent / "fixtures" / "store-v1"


@pytest.fixture
def v1(tmp_path):
    root = tmp_path / "v1"
    shutil.copytree(V1, root)
    return root


def test_v1_fixture_is_version_1():
    conn = sqlite3.connect(f"file:{V1 / 'alice' / DB_FILENAME}?mode=ro", uri=True)
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
        assert bob.get_reader_state(name).delivered_seq == 5
    for who in ("alice", "storage0", "bob"):
        conn = sqlite3.connect(v1 / who / DB_FILENAME)
        try:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        finally:
            conn.close()


def test_v1_storage_folder_gets_usage_accounting_and_keeps_serving(v1):
    """Version 2 (usage accounting): v1 blocks and records have no writer and an unknown time;
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
        assert storage.peer_usage("writer") == (3, 0)
        assert storage.total_usage() == (3, 0)  # the v1 blocks are nobody's
        # the v1 record's creator is unknown: the first writer to update it becomes its creator
        storage.put_record_as(name, b"newer", held.sequence + 1, "writer", 2.0, lambda *a: asked.append(a))
        assert asked[-1] == (False, (3, 0), (3, 0), 0)
        assert storage.peer_usage("writer") == (3, 1)
        assert storage.block_stats() == (count + 1, size + 3)
