"""Unit tests of the SQLite store: every method, its refusals, threads, reopening, bad files."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlp2p.errors import NotFound, Rlp2pError, StaleRecord, StoreError
from rlp2p.core.publish import Holding
from rlp2p.store import PublishState, ReaderState, SQLiteStore, Store, StoredRecord, open_store
from rlp2p.store.sqlite import APPLICATION_ID, DB_FILENAME, SCHEMA_VERSION
from tests.store.helpers import logs_held, put_block

LOG = "12D3KooWLogName"
U64_MAX = (1 << 64) - 1


def addr(n: int | str) -> bytes:
    """A stand-in address: the store treats addresses as opaque bytes."""
    return hashlib.sha256(str(n).encode()).digest()


HOLDING = Holding("paged:4 none", 6, addr("h6"), 1, addr("p0"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with open_store(tmp_path / "node") as s:
        yield s


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to a store's file, for looking behind the interface."""
    return sqlite3.connect(path / DB_FILENAME if path.is_dir() else path, isolation_level=None)


# --- opening ---------------------------------------------------------------------------------


def test_open_creates_folder_file_and_schema(tmp_path: Path) -> None:
    data_dir = tmp_path / "a" / "b"
    with open_store(data_dir) as s:
        assert isinstance(s, Store)
        assert s.path == data_dir / DB_FILENAME
    assert (data_dir / DB_FILENAME).is_file()
    conn = raw(data_dir)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"blocks", "records", "log_messages", "publish_state", "replica_holdings"} <= tables
    assert {"reader_state", "inbox"} <= tables
    conn.close()


def test_connection_pragmas(tmp_path: Path) -> None:
    def pragma(s: SQLiteStore, name: str) -> object:
        assert s._conn is not None
        return s._conn.execute(f"PRAGMA {name}").fetchone()[0]

    with open_store(tmp_path / "full") as s:
        assert s.synchronous == "FULL"
        assert pragma(s, "synchronous") == 2
        assert pragma(s, "foreign_keys") == 1
        assert pragma(s, "busy_timeout") == 5000
    with open_store(tmp_path / "normal", synchronous="NORMAL", busy_timeout=0.25) as s:
        assert pragma(s, "synchronous") == 1
        assert pragma(s, "busy_timeout") == 250


def test_bad_options_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        open_store(tmp_path, synchronous="OFF")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        open_store(tmp_path, busy_timeout=-1)


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(StoreError) as info:
        open_store(tmp_path / "file")
    assert isinstance(info.value.__cause__, OSError)


def test_unopenable_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        SQLiteStore(tmp_path / "missing-folder" / DB_FILENAME)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        s.put_blocks([(addr(1), b"one"), (addr(2), b"two")])
        s.put_record("name", b"rec", 7)
        s.append_messages(LOG, [b"m1", b"m2", b"m3"])
        s.set_publish_state(LOG, PublishState(7, 3))
        s.set_replica_holding(LOG, "peerA", HOLDING)
        s.set_reader_record(LOG, b"rrec", 5, addr("rhead"))
        s.deliver(LOG, [(1, b"id1", b"m1"), (2, b"id2", b"m2")])
        before = s.get_record("name")
    with open_store(tmp_path) as s:
        assert s.block_stats() == (2, 6)
        assert s.get_block(addr(2)) == b"two"
        assert s.get_record("name") == before
        assert s.log_entries(LOG) == [(1, b"m1"), (2, b"m2"), (3, b"m3")]
        # a record with seq 7 left the process: 7 is reserved too
        assert s.get_publish_state(LOG) == PublishState(7, 3, reserved_seq=7)
        assert s.replica_holding(LOG, "peerA") == HOLDING
        assert s.get_reader_state(LOG) == ReaderState(b"rrec", 5, addr("rhead"), 2)
        assert s.delivered(LOG) == [(1, b"id1", b"m1"), (2, b"id2", b"m2")]
        # and it goes on where it stopped
        assert s.append_messages(LOG, [b"m4"]) == [4]
        s.deliver(LOG, [(3, b"id3", b"m3")])


def test_newer_schema_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    conn = raw(tmp_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(tmp_path)


def test_missing_schema_version_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    conn = raw(tmp_path)
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    with pytest.raises(StoreError, match="schema version"):
        open_store(tmp_path)


def test_foreign_database_refused(tmp_path: Path) -> None:
    conn = raw(tmp_path / DB_FILENAME)
    conn.execute("CREATE TABLE someone_elses (x)")
    conn.close()
    with pytest.raises(StoreError, match="not an rlp2p store"):
        open_store(tmp_path)
    # and it was left as it was
    conn = raw(tmp_path)
    assert conn.execute("PRAGMA user_version").fetchone() == (0,)
    conn.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"this is not a database at all" * 200,
        bytes(range(256)) * 64,
        b"SQLite format 3\x00" + b"\xff" * 4080,  # the right magic, then nonsense
    ],
)
def test_corrupt_file_gives_store_error(tmp_path: Path, garbage: bytes) -> None:
    (tmp_path / DB_FILENAME).write_bytes(garbage)
    with pytest.raises(StoreError) as info:
        open_store(tmp_path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert isinstance(info.value, Rlp2pError)


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    assert not s.closed
    s.close()
    s.close()
    assert s.closed
    with pytest.raises(StoreError, match="closed"):
        s.get_block(addr(1))
    with pytest.raises(StoreError, match="closed"):
        put_block(s, addr(1), b"x")


def test_context_manager_closes(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        pass
    assert s.closed


def test_locked_database_is_a_store_error_and_writes_nothing(tmp_path: Path) -> None:
    with open_store(tmp_path, busy_timeout=0.05) as s:
        other = raw(tmp_path)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            with pytest.raises(StoreError) as info:
                s.put_blocks([(addr(1), b"x")])
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            assert s.block_stats() == (0, 0)  # reads still work under WAL
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert s.put_blocks([(addr(1), b"x")]) == 1


class FailingConnection:
    """Delegates to a real connection but raises ``exc`` on the statement starting ``at``."""

    def __init__(self, conn: sqlite3.Connection, at: str, exc: BaseException) -> None:
        self.conn, self.at, self.exc = conn, at, exc

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith(self.at):
            raise self.exc
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith(self.at):
            raise self.exc
        return self.conn.executemany(sql, *args)


WRITES = {
    "put_blocks": lambda s: s.put_blocks([(addr(1), b"x"), (addr(2), b"y")]),
    "append_messages": lambda s: s.append_messages(LOG, [b"a", b"b"]),
    "deliver": lambda s: s.deliver(LOG, [(1, b"i", b"d"), (2, b"i", b"d")]),
}


@pytest.mark.parametrize(
    ("write", "at", "exc"),
    [
        # interrupted at the very end: all of it rolls back
        ("put_blocks", "COMMIT", KeyboardInterrupt()),
        ("put_blocks", "COMMIT", sqlite3.OperationalError("disk I/O error")),
        ("append_messages", "INSERT INTO log_messages", sqlite3.OperationalError("disk full")),
        ("deliver", "COMMIT", KeyboardInterrupt()),
        # the inbox rows are written, delivered_seq is not: the rows go too
        ("deliver", "UPDATE reader_state", RuntimeError("boom")),
    ],
)
def test_failure_inside_a_write_rolls_all_of_it_back(
    store: SQLiteStore, write: str, at: str, exc: BaseException
) -> None:
    real = store._conn
    assert real is not None
    store._conn = FailingConnection(real, at, exc)  # type: ignore[assignment]
    try:
        with pytest.raises((type(exc), StoreError)) as info:
            WRITES[write](store)
    finally:
        store._conn = real
    if isinstance(exc, sqlite3.Error):  # wrapped, with the cause chained
        assert isinstance(info.value, StoreError) and info.value.__cause__ is exc
    else:
        assert info.value is exc
    assert not real.in_transaction
    assert store.block_stats() == (0, 0)
    assert store.log_length(LOG) == 0
    assert store.get_reader_state(LOG) == ReaderState()
    assert store.delivered(LOG) == []
    WRITES[write](store)  # and the store goes on working


def test_sqlite_error_mid_transaction_rolls_back(store: SQLiteStore) -> None:
    store.append_messages(LOG, [b"a"])
    # break an invariant behind the store's back: an inbox row without its reader_state row
    assert store._conn is not None
    store._conn.execute("PRAGMA foreign_keys = OFF")
    store._conn.execute(
        "INSERT INTO inbox (log, seq, message_id, data) VALUES (?, 1, x'00', x'00')", (LOG,)
    )
    store._conn.execute("PRAGMA foreign_keys = ON")
    # deliver(1) passes the seq check (delivered_seq is 0) and then hits the primary key
    with pytest.raises(StoreError) as info:
        store.deliver(LOG, [(1, b"id", b"data")])
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    assert store.get_reader_state(LOG) == ReaderState()  # the reader_state insert rolled back


# --- blocks ----------------------------------------------------------------------------------


def test_put_and_get_blocks(store: SQLiteStore) -> None:
    assert store.block_stats() == (0, 0)
    assert store.put_blocks([(addr(1), b"one"), (addr(2), b"twotwo")]) == 2
    assert store.put_blocks([(addr(2), b"twotwo"), (addr(3), b"")]) == 1  # idempotent
    assert store.put_blocks([]) == 0
    assert store.block_stats() == (3, 9)
    assert store.get_block(addr(1)) == b"one"
    assert store.get_block(addr(3)) == b""
    assert put_block(store, addr(4), b"four") is True
    assert put_block(store, addr(4), b"four") is False
    assert store.block_stats() == (4, 13)


def test_duplicates_inside_one_batch(store: SQLiteStore) -> None:
    assert store.put_blocks([(addr(1), b"x"), (addr(1), b"x"), (addr(2), b"y")]) == 2
    assert store.block_stats() == (2, 2)


def test_first_write_wins_and_hashes_are_not_checked(store: SQLiteStore) -> None:
    # content addressing makes a second write of an address a no-op; checking is the caller's job
    put_block(store, b"not-a-cid", b"first")
    put_block(store, b"not-a-cid", b"second")
    assert store.get_block(b"not-a-cid") == b"first"


def test_get_block_not_found(store: SQLiteStore) -> None:
    with pytest.raises(NotFound) as info:
        store.get_block(addr(404))
    assert isinstance(info.value, KeyError)
    assert addr(404).hex() in str(info.value)


def test_get_and_has_blocks_return_only_those_held(store: SQLiteStore) -> None:
    held = {addr(i): f"data {i}".encode() for i in range(0, 1200, 2)}
    store.put_blocks(held.items())
    asked = [addr(i) for i in range(1200)] + [addr(0)]  # over several query chunks, a duplicate
    assert store.get_blocks(asked) == held
    assert store.has_blocks(asked) == set(held)
    assert store.get_blocks([]) == {}
    assert store.has_blocks(iter([addr(1), addr(3)])) == set()


def test_bytes_like_accepted_text_refused(store: SQLiteStore) -> None:
    store.put_blocks([(bytearray(b"addr"), memoryview(b"data"))])  # type: ignore[list-item]
    assert store.get_block(b"addr") == b"data"
    assert store.has_blocks([memoryview(b"addr")]) == {b"addr"}  # type: ignore[list-item]
    with pytest.raises(TypeError):
        put_block(store, "addr", b"data")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        put_block(store, b"addr2", "data")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.get_block("addr")  # type: ignore[arg-type]


def test_put_blocks_is_one_transaction(store: SQLiteStore) -> None:
    def items() -> Iterator[tuple[bytes, bytes]]:
        yield addr(1), b"one"
        yield addr(2), b"two"
        raise RuntimeError("the caller's iterable fails half-way")

    with pytest.raises(RuntimeError):
        store.put_blocks(items())
    assert store.block_stats() == (0, 0)
    with pytest.raises(TypeError):
        store.put_blocks([(addr(1), b"one"), (addr(2), 2)])  # type: ignore[list-item]
    assert store.block_stats() == (0, 0)


# --- records ---------------------------------------------------------------------------------


def test_record_put_get(store: SQLiteStore) -> None:
    assert store.get_record("n") is None
    before = time.time()
    store.put_record("n", b"rec0", 0)  # IPNS sequences start at 0
    after = time.time()
    got = store.get_record("n")
    assert isinstance(got, StoredRecord)
    assert (got.record, got.sequence) == (b"rec0", 0)
    assert before - 1 <= got.updated_at <= after + 1
    store.put_record("n", b"rec5", 5)
    got = store.get_record("n")
    assert got is not None and (got.record, got.sequence) == (b"rec5", 5)


@pytest.mark.parametrize("sequence", [5, 4, 0])
def test_stale_record_refused(store: SQLiteStore, sequence: int) -> None:
    store.put_record("n", b"rec5", 5)
    with pytest.raises(StaleRecord) as info:
        store.put_record("n", b"other", sequence)
    assert (info.value.have, info.value.got) == (5, sequence)
    assert store.get_record("n").record == b"rec5"  # type: ignore[union-attr]


def test_record_sequences_are_uint64(store: SQLiteStore) -> None:
    # across the int64 boundary, where a naive SQL comparison would go wrong
    store.put_record("n", b"a", (1 << 63) - 1)
    store.put_record("n", b"b", 1 << 63)
    assert store.get_record("n").sequence == 1 << 63  # type: ignore[union-attr]
    with pytest.raises(StaleRecord):
        store.put_record("n", b"c", (1 << 63) - 1)
    store.put_record("n", b"d", U64_MAX)
    assert store.get_record("n").sequence == U64_MAX  # type: ignore[union-attr]
    with pytest.raises(StaleRecord):
        store.put_record("n", b"e", U64_MAX)
    for bad in (-1, 1 << 64):
        with pytest.raises(ValueError):
            store.put_record("m", b"x", bad)
    with pytest.raises(TypeError):
        store.put_record("m", b"x", True)
    with pytest.raises(TypeError):
        store.put_record(b"m", b"x", 1)  # type: ignore[arg-type]
    assert store.get_record("m") is None


def test_record_names(store: SQLiteStore) -> None:
    assert store.record_names() == [] == logs_held(store)
    for name in ("b", "a", "c"):
        store.put_record(name, b"r", 1)
    store.put_record("a", b"r", 2)
    assert store.record_names() == ["a", "b", "c"]
    assert logs_held(store) == ["a", "b", "c"]


def test_concurrent_record_writers_exactly_one_wins(tmp_path: Path) -> None:
    # two connections to one file (as two processes would have): BEGIN IMMEDIATE serialises them
    a, b = open_store(tmp_path), open_store(tmp_path)
    try:
        for sequence in range(1, 21):
            barrier = threading.Barrier(2)
            outcomes: list[str] = []

            def write(
                s: SQLiteStore, payload: bytes, barrier: threading.Barrier, sequence: int, outcomes: list[str]
            ) -> None:
                barrier.wait(timeout=10)
                try:
                    s.put_record("n", payload, sequence)
                    outcomes.append("won")
                except StaleRecord:
                    outcomes.append("stale")

            threads = [
                threading.Thread(target=write, args=(s, p, barrier, sequence, outcomes))
                for s, p in ((a, b"A"), (b, b"B"))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=10)
            assert sorted(outcomes) == ["stale", "won"]
            assert a.get_record("n").sequence == sequence  # type: ignore[union-attr]
    finally:
        a.close()
        b.close()


# --- the publisher's log ---------------------------------------------------------------------


def test_append_and_read_log(store: SQLiteStore) -> None:
    assert store.log_length(LOG) == 0
    assert store.log_entries(LOG) == []
    assert store.append_messages(LOG, []) == []
    assert store.append_messages(LOG, [b"a", b"b"]) == [1, 2]
    assert store.append_messages(LOG, [b"c"]) == [3]
    assert store.append_messages("other", [b"x"]) == [1]  # logs are independent
    assert store.log_length(LOG) == 3
    assert store.log_entries(LOG) == [(1, b"a"), (2, b"b"), (3, b"c")]
    assert store.log_entries(LOG, after_seq=1) == [(2, b"b"), (3, b"c")]
    assert store.log_entries(LOG, after_seq=1, limit=1) == [(2, b"b")]
    assert store.log_entries(LOG, limit=0) == []
    assert store.log_entries(LOG, after_seq=3) == []
    assert store.log_entries("other") == [(1, b"x")]


def test_append_is_one_transaction(store: SQLiteStore) -> None:
    with pytest.raises(TypeError):
        store.append_messages(LOG, [b"a", "b"])  # type: ignore[list-item]
    assert store.log_length(LOG) == 0
    for bad in (-1, True, 1 << 63):
        with pytest.raises((TypeError, ValueError)):
            store.log_entries(LOG, after_seq=bad)
    with pytest.raises(ValueError):
        store.log_entries(LOG, limit=-1)


def test_publish_state(store: SQLiteStore) -> None:
    assert store.get_publish_state(LOG) is None
    store.set_publish_state(LOG, PublishState(record_seq=0, published_length=0))
    assert store.get_publish_state(LOG) == PublishState(0, 0)
    store.set_publish_state(LOG, PublishState(U64_MAX, 10))
    state = store.get_publish_state(LOG)
    assert state == PublishState(U64_MAX, 10, reserved_seq=U64_MAX)
    assert store.get_publish_state("other") is None
    with pytest.raises(TypeError):
        store.set_publish_state(LOG, (1, 0))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.set_publish_state(LOG, PublishState(1, -1))
    assert store.get_publish_state(LOG) == PublishState(U64_MAX, 10, reserved_seq=U64_MAX)


def test_reserved_sequence_only_grows(store: SQLiteStore) -> None:
    store.reserve_sequence(LOG, 3)  # before the first publish: a state with no head
    assert store.get_publish_state(LOG) == PublishState(0, 0, reserved_seq=3)
    store.reserve_sequence(LOG, 2)
    assert store.get_publish_state(LOG).reserved_seq == 3  # type: ignore[union-attr]
    store.set_publish_state(LOG, PublishState(2, 5))  # an older success: still 3
    assert store.get_publish_state(LOG) == PublishState(2, 5, reserved_seq=3)
    store.set_publish_state(LOG, PublishState(4, 5))
    assert store.get_publish_state(LOG).reserved_seq == 4  # type: ignore[union-attr]
    store.reserve_sequence(LOG, U64_MAX)
    assert store.get_publish_state(LOG).reserved_seq == U64_MAX  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        store.reserve_sequence(LOG, U64_MAX + 1)
    assert store.get_publish_state("other") is None


def test_replica_holdings(store: SQLiteStore) -> None:
    assert store.replica_holding(LOG, "A") is None
    later = Holding("paged:4 none", 9, addr("h9"), 2, addr("p1"))
    store.set_replica_holding(LOG, "A", HOLDING)
    store.set_replica_holding(LOG, "B", HOLDING)
    store.set_replica_holding("other", "A", later)
    store.set_replica_holding(LOG, "A", later)  # replaces
    assert store.replica_holding(LOG, "A") == later
    assert store.replica_holding(LOG, "B") == HOLDING
    assert store.replica_holding("other", "A") == later
    store.forget_replica(LOG, "A")
    assert store.replica_holding(LOG, "A") is None
    assert store.replica_holding(LOG, "B") == HOLDING
    assert store.replica_holding("other", "A") == later
    store.forget_replica(LOG, "nobody")
    with pytest.raises(TypeError):
        store.set_replica_holding(LOG, "A", ("paged:4 none", 3))  # type: ignore[arg-type]
    assert store.replica_holding(LOG, "A") is None


# --- the reader's state ----------------------------------------------------------------------


def test_reader_state_starts_at_zero(store: SQLiteStore) -> None:
    state = store.get_reader_state(LOG)
    assert state == ReaderState(record=None, record_seq=0, head=None, delivered_seq=0)
    assert store.delivered(LOG) == []


def test_set_reader_record(store: SQLiteStore) -> None:
    store.set_reader_record(LOG, b"r0", 0, None)
    assert store.get_reader_state(LOG) == ReaderState(b"r0", 0, None, 0)
    store.set_reader_record(LOG, b"r3", 3, addr("h3"))
    store.set_reader_record(LOG, b"r3", 3, addr("h3"))  # the same again is fine
    assert store.get_reader_state(LOG) == ReaderState(b"r3", 3, addr("h3"), 0)
    with pytest.raises(StaleRecord) as info:
        store.set_reader_record(LOG, b"r2", 2, addr("h2"))
    assert (info.value.have, info.value.got) == (3, 2)
    assert store.get_reader_state(LOG) == ReaderState(b"r3", 3, addr("h3"), 0)
    store.set_reader_record(LOG, b"big", U64_MAX, None)
    assert store.get_reader_state(LOG).record_seq == U64_MAX
    with pytest.raises(StaleRecord):
        store.set_reader_record(LOG, b"r", 1 << 63, None)


def test_deliver(store: SQLiteStore) -> None:
    store.set_reader_record(LOG, b"r", 1, addr("h"))
    store.deliver(LOG, [])
    store.deliver(LOG, [(1, b"i1", b"d1"), (2, b"i2", b"d2")])
    store.deliver(LOG, [(3, b"i3", b"d3")])
    assert store.get_reader_state(LOG) == ReaderState(b"r", 1, addr("h"), 3)
    assert store.delivered(LOG) == [(1, b"i1", b"d1"), (2, b"i2", b"d2"), (3, b"i3", b"d3")]
    assert store.delivered(LOG, after_seq=1, limit=1) == [(2, b"i2", b"d2")]
    assert store.delivered(LOG, after_seq=3) == []
    # a newer record leaves what was delivered alone
    store.set_reader_record(LOG, b"r2", 2, addr("h2"))
    assert store.get_reader_state(LOG) == ReaderState(b"r2", 2, addr("h2"), 3)


def test_deliver_without_a_record_first(store: SQLiteStore) -> None:
    store.deliver(LOG, [(1, b"i1", b"d1")])
    assert store.get_reader_state(LOG) == ReaderState(None, 0, None, 1)
    assert store.get_reader_state("other") == ReaderState()


@pytest.mark.parametrize(
    "items",
    [
        [(4, b"i", b"d")],  # a gap after delivered_seq
        [(2, b"i", b"d")],  # a repeat of the last one
        [(1, b"i", b"d")],  # from the start again
        [(3, b"i", b"d"), (5, b"i", b"d")],  # a gap inside
        [(3, b"i", b"d"), (3, b"i", b"d")],  # a duplicate inside
        [(4, b"i", b"d"), (3, b"i", b"d")],  # out of order
    ],
)
def test_deliver_refuses_what_does_not_continue(store: SQLiteStore, items: list) -> None:
    store.deliver(LOG, [(1, b"i1", b"d1"), (2, b"i2", b"d2")])
    with pytest.raises(StoreError, match="expected seq"):
        store.deliver(LOG, items)
    assert store.get_reader_state(LOG).delivered_seq == 2
    assert [seq for seq, _, _ in store.delivered(LOG)] == [1, 2]


def test_deliver_to_a_new_log_must_start_at_one(store: SQLiteStore) -> None:
    with pytest.raises(StoreError):
        store.deliver(LOG, [(2, b"i", b"d")])
    assert store.get_reader_state(LOG) == ReaderState()
    assert store.delivered(LOG) == []


def test_deliver_refuses_bad_types(store: SQLiteStore) -> None:
    with pytest.raises(TypeError):
        store.deliver(LOG, [(1, b"i", "text")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        store.deliver(LOG, [("1", b"i", b"d")])  # type: ignore[list-item]
    assert store.delivered(LOG) == []


# --- threads ---------------------------------------------------------------------------------


def test_threads_writing_concurrently(store: SQLiteStore) -> None:
    threads_n, rounds, blocks_per_round, messages_per_round = 8, 25, 8, 4
    seqs: list[list[int]] = [[] for _ in range(threads_n)]
    new_counts = [0] * threads_n
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def work(t: int) -> None:
        try:
            barrier.wait(timeout=10)
            for r in range(rounds):
                blocks = [(addr(f"{t}/{r}/{i}"), b"x" * (i + 1)) for i in range(blocks_per_round)]
                new_counts[t] += store.put_blocks(blocks)
                new_counts[t] += put_block(store, addr("shared"), b"s")  # every thread races on one
                seqs[t] += store.append_messages(LOG, [b"m"] * messages_per_round)
                store.set_replica_holding(LOG, f"peer{t}", Holding("linked none", r + 1, addr(r), 0, None))
                store.get_blocks([addr(f"{t}/{r}/1")])
        except BaseException as exc:  # reported below, so a failure cannot pass silently
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert not any(w.is_alive() for w in workers)
    assert errors == []

    unique_blocks = threads_n * rounds * blocks_per_round + 1
    block_bytes = threads_n * rounds * sum(range(1, blocks_per_round + 1)) + 1
    assert store.block_stats() == (unique_blocks, block_bytes)
    assert sum(new_counts) == unique_blocks  # each block counted new exactly once

    total = threads_n * rounds * messages_per_round
    assert store.log_length(LOG) == total
    assert [seq for seq, _ in store.log_entries(LOG)] == list(range(1, total + 1))
    all_seqs = sorted(s for per_thread in seqs for s in per_thread)
    assert all_seqs == list(range(1, total + 1))  # no seq handed out twice
    for per_thread in seqs:  # each call got a consecutive run
        for start in range(0, len(per_thread), messages_per_round):
            run = per_thread[start : start + messages_per_round]
            assert run == list(range(run[0], run[0] + messages_per_round))
    assert all(store.replica_holding(LOG, f"peer{t}").length == rounds for t in range(threads_n))  # type: ignore[union-attr]


def test_ack_is_monotonic_and_bounded_by_delivered(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="never delivered"):
        store.ack(LOG, 1)
    assert store.ack(LOG, 0) == 0
    store.deliver(LOG, [(1, b"i1", b"d1"), (2, b"i2", b"d2"), (3, b"i3", b"d3")])
    assert store.get_reader_state(LOG).acked_seq == 0  # delivered is not acknowledged
    assert store.ack(LOG, 2) == 2
    assert store.ack(LOG, 1) == 2  # never backwards
    with pytest.raises(StoreError, match="never delivered"):
        store.ack(LOG, 4)
    state = store.get_reader_state(LOG)
    assert (state.delivered_seq, state.acked_seq) == (3, 2)


def test_deliver_acks_in_the_same_transaction(store: SQLiteStore) -> None:
    store.deliver(LOG, [(1, b"i1", b"d1"), (2, b"i2", b"d2")])
    store.deliver(LOG, [(3, b"i3", b"d3")], acked_seq=2)
    assert store.get_reader_state(LOG).acked_seq == 2
    with pytest.raises(StoreError, match="cannot ack"):
        store.deliver(LOG, [(4, b"i4", b"d4")], acked_seq=5)
    assert store.get_reader_state(LOG).delivered_seq == 3  # nothing written
    store.deliver(LOG, [(4, b"i4", b"d4")], acked_seq=1)  # an older ack changes nothing
    assert store.get_reader_state(LOG).acked_seq == 2
    store.deliver(LOG, [], acked_seq=4)
    assert store.get_reader_state(LOG).acked_seq == 4
