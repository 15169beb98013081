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


# --- a reader's delivery on the event loop (run_inline) --------------------------------------


def wal_frames(store) -> int:
    """How far the WAL file ever grew, in frames (SQLite reuses it from the start after a
    checkpoint, so its size is its high-water mark)."""
    return Path(f"{store.path}-wal").stat().st_size // (4096 + 24)


def test_a_delivery_runs_inline_without_fsync_or_checkpoint_and_the_connection_is_restored(tmp_path: Path) -> None:
    with open_store(tmp_path, deliveries="NORMAL") as store:
        store.set_reader_record(LOG, b"rec1", 1, addr("h1"))
        seen = traced(store)
        ran, result = store.run_inline(store.deliver, LOG, [(1, b"id1", b"m1")], acked_seq=1)
        assert ran and result is None and store.get_reader_state(LOG).delivered_seq == 1
        begin = seen.index("BEGIN IMMEDIATE")
        assert seen[begin - 2 : begin] == ["PRAGMA synchronous = NORMAL", "PRAGMA wal_autocheckpoint = 0"]
        commit = seen.index("COMMIT", begin)
        assert seen[commit + 1 : commit + 3] == ["PRAGMA synchronous = FULL", "PRAGMA wal_autocheckpoint = 1000"]
        with store._read() as conn:
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_a_durable_store_never_runs_a_delivery_inline(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:  # deliveries FULL: each one fsyncs, so a worker thread
        assert store.run_inline(store.deliver, LOG, [(1, b"id1", b"m1")]) == (False, None)
        assert store.get_reader_state(LOG).delivered_seq == 0


def test_a_busy_store_is_not_waited_for_on_the_loop(tmp_path: Path) -> None:
    import threading

    with open_store(tmp_path, deliveries="NORMAL") as store:
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with store._read():
                held.set()
                release.wait(10)

        worker = threading.Thread(target=hold)
        worker.start()
        try:
            assert held.wait(10)
            assert store.run_inline(store.deliver, LOG, [(1, b"id1", b"m1")]) == (False, None)
        finally:
            release.set()
            worker.join(10)
        assert store.run_inline(store.deliver, LOG, [(1, b"id1", b"m1")])[0]


def test_only_deliveries_run_inline(tmp_path: Path) -> None:
    with open_store(tmp_path, deliveries="NORMAL") as store:
        with pytest.raises(StoreError, match="only a reader's deliveries"):
            store.run_inline(store.append_messages, LOG, [b"m1"])  # a publisher's write fsyncs
        assert store.log_length(LOG) == 0


def test_after_a_run_of_inline_deliveries_a_thread_write_comes_and_checkpoints(tmp_path: Path) -> None:
    from rlp2p.store.db import INLINE_RUN

    with open_store(tmp_path, deliveries="NORMAL") as store:
        body = b"x" * 20_000  # 5 pages or more a delivery: 40 runs would be 6,600 WAL frames
        seq = 0
        for _ in range(40):
            for _ in range(INLINE_RUN):
                seq += 1
                assert store.run_inline(store.deliver, LOG, [(seq, b"id%d" % seq, body)], acked_seq=seq)[0]
            # the next one is refused: the caller takes a worker thread, where it may checkpoint
            assert store.run_inline(store.deliver, LOG, [(seq + 1, b"id", body)]) == (False, None)
            seq += 1
            store.deliver(LOG, [(seq, b"id%d" % seq, body)], acked_seq=seq)
        assert store.get_reader_state(LOG).delivered_seq == seq
        # the plain calls checkpointed: the WAL never grew far past SQLite's 1000 pages
        assert 1000 < wal_frames(store) < 1000 + (INLINE_RUN + 1) * 8
