"""The data-folder lock (rlp2p/store/lock.py) and the store's listings the CLI reads."""

from __future__ import annotations

import os

import pytest

from rlp2p.node.node import Node
from rlp2p.store import open_store
from rlp2p.store.lock import LOCK_FILENAME, DataDirLocked, lock_data_dir


def test_one_holder_at_a_time_and_the_holder_is_named(tmp_path) -> None:
    lock = lock_data_dir(tmp_path / "d")
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "d" / LOCK_FILENAME).read_text().startswith(f"{os.getpid()} ")
    with pytest.raises(DataDirLocked, match="in use by this process"):
        lock_data_dir(tmp_path / "d")
    lock.release()
    lock.release()  # idempotent
    lock_data_dir(tmp_path / "d").release()


async def test_node_open_holds_the_folder_until_close_store(tmp_path) -> None:
    first = Node.open(tmp_path / "n")
    with pytest.raises(DataDirLocked):
        Node.open(tmp_path / "n")
    first.close_store()
    second = Node.open(tmp_path / "n")
    second.close_store()


def test_local_and_reader_logs_are_listed(tmp_path) -> None:
    with open_store(tmp_path) as store:
        assert store.local_logs() == [] and store.reader_logs() == []
        for log in ("b", "a", "c"):
            store.append_messages(log, [b"x", b"y"])
        store.deliver("r", [(1, b"i" * 32, b"data")])
        assert store.local_logs() == ["a", "b", "c"]
        assert store.reader_logs() == ["r"]
