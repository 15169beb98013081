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
