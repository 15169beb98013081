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


async def test_v1_reader_syncs_on_from_where_it_stopped(v1, nursery):
    """Alice (her v1 folder) publishes two more through the v1 storage peer; Bob, opened from his
    v1 folder, gets exactly those: nothing handed over again, nothing fetched that he holds."""
    from rlp2p.core.keys import load_key
    from rlp2p.core.page import LogMode
    from rlp2p.node.swarm import LocalSwarm

    name = (v1 / "name.txt").read_text().strip()
    swarm = LocalSwarm(v1, nursery, timeout=5.0)
    try:
        await swarm.start_node("storage0", storage=True, bootstrap=())
        alice = await swarm.start_node("alice")
        publisher = alice.publisher(load_key(v1 / "alice.key"), mode=LogMode.paged(2, embed=1), replicas=1)
        assert publisher.name == name
        await publisher.append([b"m6", b"m7"])
        await publisher.publish()
        await swarm.stop(alice)
        bob = await swarm.start_node("bob")
        got: list = []
        report = await bob.reader().sync(name, on_message=got.append)
        assert [(d.seq, d.message.body) for d in got] == [(6, b"m6"), (7, b"m7")]
        assert report.redelivered == 0 and (report.delivered_seq, report.acked_seq) == (7, 7)
        assert [seq for seq, _, _ in bob.store.delivered(name)] == list(range(1, 8))
    finally:
        await swarm.close()
