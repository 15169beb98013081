"""The embedded default store: one SQLite file (WAL) in the node's data folder.

Design choices, in short:

- **One connection, one lock.** A :class:`SQLiteStore` opens a single connection
  (``check_same_thread=False``) and serialises every call with a :class:`threading.Lock`. The
  node calls the store from trio's worker threads, which come and go, so a connection per thread
  would leak connections or need its own bookkeeping. One connection is simple and correct; the
  price is that a read waits behind a write's commit, which is fine for calls this short.
- **One transaction per write.** Every method that writes checks and copies its arguments first,
  then runs ``BEGIN IMMEDIATE ... COMMIT`` and rolls back on any exception (KeyboardInterrupt
  included). IMMEDIATE takes the write lock up front, so a read-check-write (a record's sequence,
  the next log seq, ``delivered_seq``) cannot race with another connection to the same file,
  whose wait is bounded by ``busy_timeout``. Reads run in a deferred transaction, so a read of
  several statements sees one snapshot.
- **Durability.** ``journal_mode=WAL`` and, by default, ``synchronous=FULL``: the WAL is fsynced
  at every commit, before the call returns. A storage peer acknowledges what it stored to other
  peers, and a publisher trusts that an appended message or a replica's acknowledgement is kept;
  an acknowledgement lost to a power cut would be a lie. ``synchronous="NORMAL"`` saves that
  fsync and is still consistent after any crash, but a power loss may undo the last commits; use
  it only where that is acceptable (e.g. a reader-only node, whose state a re-sync restores).
- **Schema versioning.** ``PRAGMA user_version`` holds the schema version and
  ``PRAGMA application_id`` marks the file as rlp2p's. A new file gets the schema on first open; a
  newer version than this code knows, or somebody else's database, is refused with StoreError
  rather than misread. An older file migrates forward inside the opening transaction, one step of
  ``_MIGRATIONS`` per version, so a data folder written by any earlier release opens and keeps
  working (a crash mid-migration leaves the old version, which migrates again on the next open).
- **Unsigned sequences.** IPNS sequences are uint64 but SQLite integers are int64, so record
  sequences are stored as their two's complement int64 (every realistic value reads the same in
  the file) and compared in Python, never in SQL.

Every :class:`sqlite3.Error` and :class:`OSError` is re-raised as :class:`StoreError` with the
original chained as its cause.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal

from rlp2p.core.publish import Holding
from rlp2p.core.private import PrivateState
from rlp2p.errors import NotFound, StaleRecord, StoreError
from rlp2p.store.base import AdmitBlocks, AdmitRecord, PublishState, ReaderState, Store, StoredRecord

__all__ = ["APPLICATION_ID", "DB_FILENAME", "SCHEMA_VERSION", "SQLiteStore", "open_store"]

#: the database file inside a node's data folder
DB_FILENAME = "rlp2p.sqlite3"
#: the schema this code writes and reads (``PRAGMA user_version``)
SCHEMA_VERSION = 5
#: ``PRAGMA application_id`` of an rlp2p store: b"rlp2" as a big-endian int32
APPLICATION_ID = 0x726C7032

Synchronous = Literal["FULL", "NORMAL"]

_U64_LIMIT = 1 << 64
_I64_LIMIT = 1 << 63
#: bytes the WAL file is truncated to after a checkpoint
_WAL_SIZE_LIMIT = 32 * 1024 * 1024
#: addresses per ``IN (...)`` query, well under SQLite's variable limit on every version (999)
_CHUNK = 500

#: version 1 of the schema, one statement each (run inside the opening transaction)
_SCHEMA_V1 = (
    """CREATE TABLE blocks (
        address BLOB PRIMARY KEY NOT NULL,
        data    BLOB NOT NULL,
        size    INTEGER NOT NULL                -- length(data): block_stats never reads data
    )""",
    """CREATE TABLE records (
        name       TEXT PRIMARY KEY NOT NULL,
        record     BLOB NOT NULL,
        sequence   INTEGER NOT NULL,            -- uint64 as two's complement int64
        updated_at REAL NOT NULL                -- Unix seconds
    )""",
    """CREATE TABLE log_messages (
        log  TEXT NOT NULL,
        seq  INTEGER NOT NULL CHECK (seq >= 1),
        data BLOB NOT NULL,
        PRIMARY KEY (log, seq)
    )""",
    """CREATE TABLE publish_state (
        log              TEXT PRIMARY KEY NOT NULL,
        record_seq       INTEGER NOT NULL,      -- uint64 as two's complement int64
        head             BLOB,
        published_length INTEGER NOT NULL CHECK (published_length >= 0)
    )""",
    """CREATE TABLE replicas (
        log     TEXT NOT NULL,
        peer_id TEXT NOT NULL,
        address BLOB NOT NULL,
        PRIMARY KEY (log, peer_id, address)
    ) WITHOUT ROWID""",
    """CREATE TABLE reader_state (
        log           TEXT PRIMARY KEY NOT NULL,
        record        BLOB,
        record_seq    INTEGER NOT NULL DEFAULT 0,  -- uint64 as two's complement int64
        head          BLOB,
        delivered_seq INTEGER NOT NULL DEFAULT 0 CHECK (delivered_seq >= 0)
    )""",
    """CREATE TABLE inbox (
        log        TEXT NOT NULL REFERENCES reader_state (log) ON DELETE CASCADE,
        seq        INTEGER NOT NULL CHECK (seq >= 1),
        message_id BLOB NOT NULL,
        data       BLOB NOT NULL,
        PRIMARY KEY (log, seq)
    )""",
)


#: forward migrations: ``_MIGRATIONS[i]`` takes a file from version ``i + 1`` to ``i + 2``, one
#: statement each, run inside the opening transaction. A step is never edited once released.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1 -> 2: the publisher keeps a high-water mark per replica instead of every block address it
    # acknowledged, and reserves a record sequence before sending it. The old acknowledgements are
    # dropped (each replica gets the log once more on the next publish: correct, one re-upload).
    (
        "ALTER TABLE publish_state ADD COLUMN reserved_seq INTEGER NOT NULL DEFAULT 0",
        "UPDATE publish_state SET reserved_seq = record_seq",
        "DROP TABLE replicas",
        """CREATE TABLE replica_holdings (
            log       TEXT NOT NULL,
            peer_id   TEXT NOT NULL,
            mode      TEXT NOT NULL,                -- core.publish.mode_key
            length    INTEGER NOT NULL CHECK (length >= 1),
            head      BLOB NOT NULL,
            open_page INTEGER NOT NULL CHECK (open_page >= 0),
            open_tail BLOB,                         -- NULL exactly when open_page = 0
            PRIMARY KEY (log, peer_id)
        )""",
    ),
    # 2 -> 3: the reader's application cursor (at-least-once delivery); what was delivered before
    # counts as acknowledged, as it was handed to the application under the old contract
    (
        "ALTER TABLE reader_state ADD COLUMN "
        "acked_seq INTEGER NOT NULL DEFAULT 0 CHECK (acked_seq >= 0)",
        "UPDATE reader_state SET acked_seq = delivered_seq",
    ),
    # 3 -> 4: a storage peer's usage accounting (admission quotas) and retention
    (
        # the peer that first stored the block and when (the storage peer's clock); NULL for blocks
        # stored before version 4 or by a local write: retention treats them as old
        "ALTER TABLE blocks ADD COLUMN writer TEXT",
        "ALTER TABLE blocks ADD COLUMN stored_at REAL",
        "CREATE INDEX blocks_by_stored_at ON blocks (stored_at)",
        # the peer whose update first created the name, and the bytes its head reached when
        # retention last walked it
        "ALTER TABLE records ADD COLUMN creator TEXT",
        "ALTER TABLE records ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX records_by_updated_at ON records (updated_at)",
        """CREATE TABLE peer_usage (
            peer_id TEXT PRIMARY KEY NOT NULL,
            bytes   INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
            names   INTEGER NOT NULL DEFAULT 0 CHECK (names >= 0)
        ) WITHOUT ROWID""",
        # the sum of peer_usage, kept beside it: an O(1) read for the all-peers quotas
        """CREATE TABLE usage_total (
            id    INTEGER PRIMARY KEY CHECK (id = 1),
            bytes INTEGER NOT NULL CHECK (bytes >= 0),
            names INTEGER NOT NULL CHECK (names >= 0)
        )""",
        "INSERT INTO usage_total (id, bytes, names) VALUES (1, 0, 0)",
    ),
    # 4 -> 5: private logs (rlp2p.core.private): the publisher's seed and where each epoch starts;
    # a log with no row here is public
    (
        """CREATE TABLE private_epochs (
            log       TEXT NOT NULL,
            epoch     INTEGER NOT NULL CHECK (epoch >= 0),
            first_seq INTEGER NOT NULL CHECK (first_seq >= 1),
            seed      BLOB NOT NULL,                -- the same in every row of a log
            PRIMARY KEY (log, epoch)
        ) WITHOUT ROWID""",
    ),
)

assert SCHEMA_VERSION == len(_MIGRATIONS) + 1, "every schema version needs its migration step"


def open_store(
    data_dir: Path | str,
    *,
    synchronous: Synchronous = "FULL",
    busy_timeout: float = 5.0,
) -> SQLiteStore:
    """Open (creating if needed) the store in a node's data folder, ``data_dir/rlp2p.sqlite3``.

    The folder is created owner-only (0700) if missing: a reader's inbox holds private messages.
    """
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the data folder {data_dir}: {exc}") from exc
    return SQLiteStore(data_dir / DB_FILENAME, synchronous=synchronous, busy_timeout=busy_timeout)


class SQLiteStore(Store):
    """:class:`~rlp2p.store.base.Store` over one SQLite file. Thread-safe; see the module doc."""

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 5.0,
    ) -> None:
        """Open the database file at ``path``, creating it and its schema if needed.

        ``busy_timeout`` (seconds) is how long a write waits for another connection to the same
        file to release its lock before failing with StoreError.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be >= 0, not {busy_timeout}")
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self._lock = threading.Lock()
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                # autocommit at the driver level: we issue BEGIN/COMMIT ourselves
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            self._configure(conn, busy_timeout)
            self._migrate(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open {self.path}: {exc}") from exc
            raise
        self._conn: sqlite3.Connection | None = conn

    def _configure(self, conn: sqlite3.Connection, busy_timeout: float) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        # the first statement that reads the file: a file that is not a database fails here
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":  # pragma: no cover - only on filesystems without WAL
            raise StoreError(f"{self.path}: cannot use WAL (journal mode is {mode!r})")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        # a WAL file grown by a big transaction (8 MiB blocks) is truncated back after checkpoints
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create the schema on a new file, refuse what this code cannot read."""
        conn.execute("BEGIN IMMEDIATE")  # two processes opening a new file: one creates
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            (app_id,) = conn.execute("PRAGMA application_id").fetchone()
            (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if version == 0 and app_id == 0 and tables == 0:
                # one by one: executescript() would COMMIT the transaction first
                for statement in _SCHEMA_V1:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                version, app_id = 1, APPLICATION_ID
            if app_id != APPLICATION_ID:
                raise StoreError(f"{self.path} is not an rlp2p store (application_id {app_id:#x})")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this rlp2p reads "
                    f"({SCHEMA_VERSION}); upgrade rlp2p"
                )
            if version < 1:
                raise StoreError(f"{self.path} has no valid schema version ({version})")
            # a new file is created at version 1 and migrated like an old one, so both end equal
            for step in _MIGRATIONS[version - 1 :]:
                for statement in step:
                    conn.execute(statement)
            if version != SCHEMA_VERSION or tables == 0:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()  # the last connection to close checkpoints the WAL
                except sqlite3.Error as exc:  # pragma: no cover - close only fails on a bug
                    raise StoreError(f"closing {self.path}: {exc}") from exc

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._conn is None

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one transaction; commit on success, roll back on anything else."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"{self.path}: the store is closed")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                # SQLite may already have rolled back (e.g. on a full disk); don't fail again
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:  # pragma: no cover - the original error matters more
                        pass
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"{self.path}: {exc}") from exc
                raise

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction(write=True)

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction(write=False)

    # --- blocks (CAS) ------------------------------------------------------------------------

    def put_blocks(self, items: Iterable[tuple[bytes, bytes]]) -> int:
        # built before the transaction: a bad item fails before anything is locked or written
        rows = [_block_row(address, data) for address, data in items]
        with self._write() as conn:
            cur = conn.executemany(
                "INSERT OR IGNORE INTO blocks (address, data, size) VALUES (?, ?, ?)", rows
            )
            # rowcount sums the rows inserted; ignored duplicates count 0
            return max(cur.rowcount, 0)

    def get_block(self, address: bytes) -> bytes:
        address = _blob(address, "address")
        with self._read() as conn:
            row = _one(conn, "SELECT data FROM blocks WHERE address = ?", (address,))
        if row is None:
            raise NotFound(f"no block {address.hex()}")
        return bytes(row[0])

    def get_blocks(self, addresses: Iterable[bytes]) -> dict[bytes, bytes]:
        wanted = _unique_blobs(addresses)
        found: dict[bytes, bytes] = {}
        with self._read() as conn:
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT address, data FROM blocks WHERE address IN ({marks})"
                for address, data in conn.execute(sql, chunk).fetchall():
                    found[bytes(address)] = bytes(data)
        return found

    def block_sizes(self, addresses: Iterable[bytes]) -> dict[bytes, int]:
        wanted = _unique_blobs(addresses)
        sizes: dict[bytes, int] = {}
        with self._read() as conn:
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT address, size FROM blocks WHERE address IN ({marks})"
                sizes.update((bytes(a), int(n)) for a, n in conn.execute(sql, chunk).fetchall())
        return sizes

    def has_blocks(self, addresses: Iterable[bytes]) -> set[bytes]:
        wanted = _unique_blobs(addresses)
        held: set[bytes] = set()
        with self._read() as conn:
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT address FROM blocks WHERE address IN ({marks})"
                held.update(bytes(a) for (a,) in conn.execute(sql, chunk).fetchall())
        return held

    def block_stats(self) -> tuple[int, int]:
        with self._read() as conn:
            count, total = _one(conn, "SELECT count(*), coalesce(sum(size), 0) FROM blocks")
        return int(count), int(total)

    # --- records (NS) ------------------------------------------------------------------------

    def get_record(self, name: str) -> StoredRecord | None:
        name = _text(name, "name")
        with self._read() as conn:
            row = _one(
                conn, "SELECT record, sequence, updated_at FROM records WHERE name = ?", (name,)
            )
        if row is None:
            return None
        return StoredRecord(bytes(row[0]), _u64_from_db(row[1]), float(row[2]))

    def put_record(self, name: str, record: bytes, sequence: int, *, now: float | None = None) -> None:
        name = _text(name, "name")
        updated_at = time.time() if now is None else float(now)
        record = _blob(record, "record")
        stored_seq = _u64_to_db(sequence, "sequence")
        with self._write() as conn:
            row = _one(conn, "SELECT sequence FROM records WHERE name = ?", (name,))
            if row is not None:
                have = _u64_from_db(row[0])
                if sequence <= have:
                    raise StaleRecord(
                        f"record for {name}: sequence {sequence} does not beat {have}",
                        have=have,
                        got=sequence,
                    )
            conn.execute(
                "INSERT INTO records (name, record, sequence, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET record = excluded.record, "
                "sequence = excluded.sequence, updated_at = excluded.updated_at",
                (name, record, stored_seq, updated_at),
            )

    def record_names(self) -> list[str]:
        with self._read() as conn:
            rows = conn.execute("SELECT name FROM records ORDER BY name").fetchall()
        return [name for (name,) in rows]

    # --- a storage peer's usage and retention ------------------------------------------------

    def peer_usage(self, peer_id: str) -> tuple[int, int]:
        peer_id = _text(peer_id, "peer_id")
        with self._read() as conn:
            row = _one(conn, "SELECT bytes, names FROM peer_usage WHERE peer_id = ?", (peer_id,))
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def total_usage(self) -> tuple[int, int]:
        with self._read() as conn:
            row = _one(conn, "SELECT bytes, names FROM usage_total WHERE id = 1")
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def top_usage(self, limit: int) -> list[tuple[str, int, int]]:
        lim = _limit(limit)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT peer_id, bytes, names FROM peer_usage ORDER BY bytes DESC, peer_id LIMIT ?", (lim,)
            ).fetchall()
        return [(str(p), int(b), int(n)) for p, b, n in rows]

    def _others(self, conn: sqlite3.Connection, exempt: Iterable[str]) -> tuple[int, int]:
        """What all writers but ``exempt`` hold together."""
        row = _one(conn, "SELECT bytes, names FROM usage_total WHERE id = 1")
        nbytes, names = (0, 0) if row is None else (int(row[0]), int(row[1]))
        for peer in exempt:
            held = _one(conn, "SELECT bytes, names FROM peer_usage WHERE peer_id = ?", (_text(peer, "peer"),))
            if held is not None:
                nbytes, names = nbytes - int(held[0]), names - int(held[1])
        return max(nbytes, 0), max(names, 0)

    def put_blocks_as(
        self, items: Iterable[tuple[bytes, bytes]], writer: str, now: float, admit: AdmitBlocks, exempt: Iterable[str] = ()
    ) -> int:
        writer = _text(writer, "writer")
        rows = {}
        for address, data in items:
            row = _block_row(address, data)
            rows[row[0]] = row
        exempt = list(exempt)
        with self._write() as conn:
            held: set[bytes] = set()
            for chunk in _chunks(list(rows)):
                marks = ",".join("?" * len(chunk))
                held.update(bytes(a) for (a,) in conn.execute(f"SELECT address FROM blocks WHERE address IN ({marks})", chunk))
            new = [row for address, row in rows.items() if address not in held]
            added = sum(row[2] for row in new)
            usage = _one(conn, "SELECT bytes, names FROM peer_usage WHERE peer_id = ?", (writer,))
            admit((0, 0) if usage is None else (int(usage[0]), int(usage[1])), self._others(conn, exempt), added)
            conn.executemany(
                "INSERT INTO blocks (address, data, size, writer, stored_at) VALUES (?, ?, ?, ?, ?)",
                [(*row, writer, float(now)) for row in new],
            )
            if added:
                _charge(conn, writer, added, 0)
        return len(new)

    def put_record_as(
        self,
        name: str,
        record: bytes,
        sequence: int,
        writer: str | None,
        now: float,
        admit: AdmitRecord,
        exempt: Iterable[str] = (),
    ) -> None:
        name = _text(name, "name")
        record = _blob(record, "record")
        stored_seq = _u64_to_db(sequence, "sequence")
        writer = None if writer is None else _text(writer, "writer")
        exempt = list(exempt)
        with self._write() as conn:
            row = _one(conn, "SELECT sequence, creator, log_bytes FROM records WHERE name = ?", (name,))
            if row is not None and sequence <= (have := _u64_from_db(row[0])):
                raise StaleRecord(f"record for {name}: sequence {sequence} does not beat {have}", have=have, got=sequence)
            usage = None if writer is None else _one(conn, "SELECT bytes, names FROM peer_usage WHERE peer_id = ?", (writer,))
            admit(
                row is None,
                (0, 0) if usage is None else (int(usage[0]), int(usage[1])),
                self._others(conn, exempt),
                0 if row is None else int(row[2]),
            )
            conn.execute(
                "INSERT INTO records (name, record, sequence, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET record = excluded.record, "
                "sequence = excluded.sequence, updated_at = excluded.updated_at",
                (name, record, stored_seq, float(now)),
            )
            if writer is not None and (row is None or row[1] is None):
                conn.execute("UPDATE records SET creator = ? WHERE name = ?", (writer, name))
                _charge(conn, writer, 0, 1)

    def log_bytes(self, name: str) -> int:
        name = _text(name, "name")
        with self._read() as conn:
            row = _one(conn, "SELECT log_bytes FROM records WHERE name = ?", (name,))
        return 0 if row is None else int(row[0])

    def set_log_bytes(self, sizes: dict[str, int]) -> None:
        rows = [(_int(size, "size"), _text(name, "name")) for name, size in sizes.items()]
        with self._write() as conn:
            conn.executemany("UPDATE records SET log_bytes = ? WHERE name = ?", rows)

    def heads(self) -> dict[str, tuple[bytes, float]]:
        """``name -> (record, updated_at)`` of every record held."""
        with self._read() as conn:
            rows = conn.execute("SELECT name, record, updated_at FROM records").fetchall()
        return {str(n): (bytes(r), float(u)) for n, r, u in rows}

    def stale_names(self, updated_before: float, limit: int) -> list[str]:
        lim = _limit(limit)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name FROM records WHERE updated_at < ? ORDER BY updated_at, name LIMIT ?",
                (float(updated_before), lim),
            ).fetchall()
        return [str(n) for (n,) in rows]

    def drop_records(self, names: Iterable[str], updated_before: float) -> list[str]:
        wanted = [_text(n, "name") for n in names]
        dropped = []
        with self._write() as conn:
            for name in wanted:
                # checked again in the transaction: an update that just arrived keeps the log
                row = _one(conn, "SELECT creator FROM records WHERE name = ? AND updated_at < ?", (name, float(updated_before)))
                if row is None:
                    continue
                conn.execute("DELETE FROM records WHERE name = ?", (name,))
                if row[0] is not None:
                    _charge(conn, row[0], 0, -1)
                dropped.append(name)
        return dropped

    def blocks_stored_before(self, cutoff: float, after: bytes, limit: int) -> list[bytes]:
        """Addresses (ordered, from just after ``after``) of blocks stored before ``cutoff`` or at
        an unknown time; for a sweep that resumes where it stopped."""
        after = _blob(after, "after")
        lim = _limit(limit)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT address FROM blocks WHERE address > ? AND (stored_at IS NULL OR stored_at < ?) "
                "ORDER BY address LIMIT ?",
                (after, float(cutoff), lim),
            ).fetchall()
        return [bytes(a) for (a,) in rows]

    def delete_blocks(
        self, addresses: Iterable[bytes], cutoff: float, records: dict[str, bytes] | None = None
    ) -> tuple[int, int] | None:
        """Delete blocks among ``addresses`` still stored before ``cutoff``; give back their
        bytes to their writers' usage. Returns ``(blocks, bytes)`` deleted, or None (nothing
        deleted) if ``records`` is given and is no longer exactly the records held."""
        wanted = _unique_blobs(addresses)
        count = total = 0
        with self._write() as conn:
            if records is not None:
                held = {str(n): bytes(r) for n, r in conn.execute("SELECT name, record FROM records")}
                if held != records:
                    return None
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                where = f"address IN ({marks}) AND (stored_at IS NULL OR stored_at < ?)"
                args = (*chunk, float(cutoff))
                for writer, size in conn.execute(
                    f"SELECT writer, sum(size) FROM blocks WHERE {where} GROUP BY writer", args
                ).fetchall():
                    total += int(size)
                    if writer is not None:
                        _charge(conn, writer, -int(size), 0)
                count += conn.execute(f"DELETE FROM blocks WHERE {where}", args).rowcount
        return count, total

    def record_count(self) -> int:
        with self._read() as conn:
            (count,) = _one(conn, "SELECT count(*) FROM records")
        return int(count)

    # --- the publisher's local log -----------------------------------------------------------

    def append_messages(self, log: str, datas: Sequence[bytes]) -> list[int]:
        log = _text(log, "log")
        blobs = [_blob(d, "data") for d in datas]
        if not blobs:
            return []
        with self._write() as conn:
            (last,) = _one(
                conn, "SELECT coalesce(max(seq), 0) FROM log_messages WHERE log = ?", (log,)
            )
            seqs = list(range(last + 1, last + 1 + len(blobs)))
            conn.executemany(
                "INSERT INTO log_messages (log, seq, data) VALUES (?, ?, ?)",
                [(log, seq, data) for seq, data in zip(seqs, blobs, strict=True)],
            )
        return seqs

    def log_length(self, log: str) -> int:
        log = _text(log, "log")
        with self._read() as conn:
            (last,) = _one(
                conn, "SELECT coalesce(max(seq), 0) FROM log_messages WHERE log = ?", (log,)
            )
        return int(last)

    def log_entries(
        self, log: str, after_seq: int = 0, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        log = _text(log, "log")
        after, lim = _int(after_seq, "after_seq"), _limit(limit)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, data FROM log_messages WHERE log = ? AND seq > ? ORDER BY seq LIMIT ?",
                (log, after, lim),
            ).fetchall()
        return [(int(seq), bytes(data)) for seq, data in rows]

    def local_logs(self) -> list[str]:
        """The logs with messages in the local log, sorted: one index probe per log (skip-scan)."""
        with self._read() as conn:
            rows = conn.execute(
                "WITH RECURSIVE l(log) AS (SELECT min(log) FROM log_messages UNION ALL "
                "SELECT (SELECT min(log) FROM log_messages WHERE log > l.log) FROM l WHERE l.log IS NOT NULL) "
                "SELECT log FROM l WHERE log IS NOT NULL"
            ).fetchall()
        return [name for (name,) in rows]

    def reader_logs(self) -> list[str]:
        """The logs this node has reader state for, sorted."""
        with self._read() as conn:
            rows = conn.execute("SELECT log FROM reader_state ORDER BY log").fetchall()
        return [name for (name,) in rows]

    def get_publish_state(self, log: str) -> PublishState | None:
        log = _text(log, "log")
        with self._read() as conn:
            row = _one(
                conn,
                "SELECT record_seq, published_length, reserved_seq FROM publish_state "
                "WHERE log = ?",
                (log,),
            )
        if row is None:
            return None
        return PublishState(_u64_from_db(row[0]), int(row[1]), _u64_from_db(row[2]))

    def set_publish_state(self, log: str, state: PublishState) -> None:
        log = _text(log, "log")
        if not isinstance(state, PublishState):
            raise TypeError(f"state must be a PublishState, not {type(state).__name__}")
        record_seq = _u64_to_db(state.record_seq, "record_seq")
        length = _int(state.published_length, "published_length")
        _u64_to_db(state.reserved_seq, "reserved_seq")
        with self._write() as conn:
            # reserved_seq only grows: a sequence that may have left is never handed out again
            reserved = max(state.reserved_seq, state.record_seq, _reserved(conn, log))
            conn.execute(
                # the head column is unused (replica holdings know each head): left NULL
                "INSERT INTO publish_state (log, record_seq, head, published_length, reserved_seq) "
                "VALUES (?, ?, NULL, ?, ?) ON CONFLICT (log) DO UPDATE SET "
                "record_seq = excluded.record_seq, head = NULL, "
                "published_length = excluded.published_length, "
                "reserved_seq = excluded.reserved_seq",
                (log, record_seq, length, _u64_to_db(reserved, "reserved_seq")),
            )

    def reserve_sequence(self, log: str, sequence: int) -> None:
        log = _text(log, "log")
        stored = _u64_to_db(sequence, "sequence")
        with self._write() as conn:
            if sequence <= _reserved(conn, log):
                return
            conn.execute(
                "INSERT INTO publish_state (log, record_seq, head, published_length, reserved_seq) "
                "VALUES (?, 0, NULL, 0, ?) ON CONFLICT (log) DO UPDATE SET "
                "reserved_seq = excluded.reserved_seq",
                (log, stored),
            )

    def private_state(self, log: str) -> PrivateState | None:
        log = _text(log, "log")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT epoch, first_seq, seed FROM private_epochs WHERE log = ? ORDER BY epoch", (log,)
            ).fetchall()
        if not rows:
            return None
        if [int(r[0]) for r in rows] != list(range(len(rows))):
            raise StoreError(f"the epochs of private log {log} are not 0..{len(rows) - 1}")
        return PrivateState(bytes(rows[0][2]), tuple(int(r[1]) for r in rows))

    def set_private_state(self, log: str, state: PrivateState) -> None:
        log = _text(log, "log")
        if not isinstance(state, PrivateState):
            raise TypeError(f"state must be a PrivateState, not {type(state).__name__}")
        with self._write() as conn:
            rows = conn.execute(
                "SELECT first_seq, seed FROM private_epochs WHERE log = ? ORDER BY epoch", (log,)
            ).fetchall()
            if rows and (bytes(rows[0][1]) != state.seed or tuple(int(r[0]) for r in rows) != state.starts[: len(rows)]):
                raise StoreError(f"private log {log}: epochs only ever get added, under the same seed")
            conn.executemany(
                "INSERT INTO private_epochs (log, epoch, first_seq, seed) VALUES (?, ?, ?, ?)",
                [(log, e, state.starts[e], state.seed) for e in range(len(rows), len(state.starts))],
            )

    def replica_holding(self, log: str, peer_id: str) -> Holding | None:
        log, peer_id = _text(log, "log"), _text(peer_id, "peer_id")
        with self._read() as conn:
            row = _one(
                conn,
                "SELECT mode, length, head, open_page, open_tail FROM replica_holdings "
                "WHERE log = ? AND peer_id = ?",
                (log, peer_id),
            )
        if row is None:
            return None
        return Holding(str(row[0]), int(row[1]), bytes(row[2]), int(row[3]), _opt_bytes(row[4]))

    def replica_lengths(self, log: str) -> dict[str, int]:
        log = _text(log, "log")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT peer_id, length FROM replica_holdings WHERE log = ? ORDER BY peer_id", (log,)
            ).fetchall()
        return {str(peer): int(length) for peer, length in rows}

    def set_replica_holding(self, log: str, peer_id: str, holding: Holding) -> None:
        log, peer_id = _text(log, "log"), _text(peer_id, "peer_id")
        if not isinstance(holding, Holding):
            raise TypeError(f"holding must be a Holding, not {type(holding).__name__}")
        row = (
            log,
            peer_id,
            _text(holding.mode, "mode"),
            _int(holding.length, "length"),
            _blob(holding.head, "head"),
            _int(holding.open_page, "open_page"),
            None if holding.open_tail is None else _blob(holding.open_tail, "open_tail"),
        )
        with self._write() as conn:
            conn.execute(
                "INSERT INTO replica_holdings (log, peer_id, mode, length, head, open_page, open_tail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (log, peer_id) DO UPDATE SET "
                "mode = excluded.mode, length = excluded.length, head = excluded.head, "
                "open_page = excluded.open_page, open_tail = excluded.open_tail",
                row,
            )

    def forget_replica(self, log: str, peer_id: str) -> None:
        log, peer_id = _text(log, "log"), _text(peer_id, "peer_id")
        with self._write() as conn:
            conn.execute(
                "DELETE FROM replica_holdings WHERE log = ? AND peer_id = ?", (log, peer_id)
            )

    # --- the reader's sync state -------------------------------------------------------------

    def get_reader_state(self, log: str) -> ReaderState:
        log = _text(log, "log")
        with self._read() as conn:
            row = _one(
                conn,
                "SELECT record, record_seq, head, delivered_seq, acked_seq FROM reader_state "
                "WHERE log = ?",
                (log,),
            )
        if row is None:
            return ReaderState()
        return ReaderState(
            _opt_bytes(row[0]), _u64_from_db(row[1]), _opt_bytes(row[2]), int(row[3]), int(row[4])
        )

    def set_reader_record(
        self, log: str, record: bytes, record_seq: int, head: bytes | None
    ) -> None:
        log = _text(log, "log")
        record = _blob(record, "record")
        stored_seq = _u64_to_db(record_seq, "record_seq")
        head = None if head is None else _blob(head, "head")
        with self._write() as conn:
            row = _one(conn, "SELECT record_seq FROM reader_state WHERE log = ?", (log,))
            have = 0 if row is None else _u64_from_db(row[0])
            if record_seq < have:
                raise StaleRecord(
                    f"reader record for {log}: sequence {record_seq} is older than {have}",
                    have=have,
                    got=record_seq,
                )
            conn.execute(
                "INSERT INTO reader_state (log, record, record_seq, head) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (log) DO UPDATE SET record = excluded.record, "
                "record_seq = excluded.record_seq, head = excluded.head",
                (log, record, stored_seq, head),
            )

    def deliver(
        self, log: str, items: Sequence[tuple[int, bytes, bytes]], acked_seq: int | None = None
    ) -> None:
        log = _text(log, "log")
        rows = [
            (log, _int(seq, "seq"), _blob(mid, "message_id"), _blob(data, "data"))
            for seq, mid, data in items
        ]
        ack = None if acked_seq is None else _int(acked_seq, "acked_seq")
        if not rows:
            if ack is not None:
                self.ack(log, ack)
            return
        with self._write() as conn:
            row = _one(conn, "SELECT delivered_seq FROM reader_state WHERE log = ?", (log,))
            delivered = 0 if row is None else int(row[0])
            for expected, (_, seq, _, _) in enumerate(rows, start=delivered + 1):
                if seq != expected:
                    raise StoreError(
                        f"deliver to {log}: expected seq {expected} (delivered up to "
                        f"{delivered}), got {seq}; nothing delivered"
                    )
            last = rows[-1][1]
            if ack is not None and ack > last:
                raise StoreError(f"deliver to {log}: cannot ack seq {ack} beyond {last}; nothing delivered")
            # the inbox row references reader_state: make sure the log has one
            conn.execute("INSERT OR IGNORE INTO reader_state (log) VALUES (?)", (log,))
            conn.executemany(
                "INSERT INTO inbox (log, seq, message_id, data) VALUES (?, ?, ?, ?)", rows
            )
            conn.execute(
                "UPDATE reader_state SET delivered_seq = ?, acked_seq = max(acked_seq, ?) "
                "WHERE log = ?",
                (last, ack or 0, log),
            )

    def ack(self, log: str, seq: int) -> int:
        log = _text(log, "log")
        seq = _int(seq, "seq")
        with self._write() as conn:
            row = _one(conn, "SELECT delivered_seq, acked_seq FROM reader_state WHERE log = ?", (log,))
            delivered, acked = (0, 0) if row is None else (int(row[0]), int(row[1]))
            if seq > delivered:
                raise StoreError(
                    f"ack of {log}: seq {seq} was never delivered (delivered up to {delivered})"
                )
            if seq <= acked:
                return acked  # monotonic: an older ack changes nothing
            conn.execute("UPDATE reader_state SET acked_seq = ? WHERE log = ?", (seq, log))
            return seq

    def delivered(
        self, log: str, after_seq: int = 0, limit: int | None = None
    ) -> list[tuple[int, bytes, bytes]]:
        log = _text(log, "log")
        after, lim = _int(after_seq, "after_seq"), _limit(limit)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, message_id, data FROM inbox WHERE log = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (log, after, lim),
            ).fetchall()
        return [(int(seq), bytes(mid), bytes(data)) for seq, mid, data in rows]


# --- helpers ---------------------------------------------------------------------------------


def _charge(conn: sqlite3.Connection, peer_id: str, nbytes: int, names: int) -> None:
    """Add to (or, negative, give back from) a writer's usage and the total, never below 0."""
    conn.execute(
        "INSERT INTO peer_usage (peer_id, bytes, names) VALUES (?, max(?, 0), max(?, 0)) "
        "ON CONFLICT (peer_id) DO UPDATE SET bytes = max(bytes + ?, 0), names = max(names + ?, 0)",
        (peer_id, nbytes, names, nbytes, names),
    )
    conn.execute(
        "UPDATE usage_total SET bytes = max(bytes + ?, 0), names = max(names + ?, 0) WHERE id = 1",
        (nbytes, names),
    )


def _reserved(conn: sqlite3.Connection, log: str) -> int:
    row = _one(conn, "SELECT reserved_seq FROM publish_state WHERE log = ?", (log,))
    return 0 if row is None else _u64_from_db(row[0])


def _one(conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> Any:
    """The first row of a query, or None; fetchall so no statement is left half-read."""
    rows = conn.execute(sql, args).fetchall()
    return rows[0] if rows else None


def _blob(value: Any, what: str) -> bytes:
    # sqlite3 would store a str as TEXT, which never equals the BLOB of the same bytes
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _block_row(address: Any, data: Any) -> tuple[bytes, bytes, int]:
    data = _blob(data, "data")
    return _blob(address, "address"), data, len(data)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    return value


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    if not 0 <= value < _I64_LIMIT:
        raise ValueError(f"{what} must be in 0..2**63-1, not {value}")
    return value


def _limit(limit: int | None) -> int:
    return -1 if limit is None else _int(limit, "limit")  # LIMIT -1: no limit


def _u64_to_db(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    if not 0 <= value < _U64_LIMIT:
        raise ValueError(f"{what} must be a uint64, not {value}")
    return value - _U64_LIMIT if value >= _I64_LIMIT else value


def _u64_from_db(value: int) -> int:
    return value + _U64_LIMIT if value < 0 else value


def _opt_bytes(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)


def _unique_blobs(addresses: Iterable[bytes]) -> list[bytes]:
    return list(dict.fromkeys(_blob(a, "address") for a in addresses))


def _chunks(items: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
