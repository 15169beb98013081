"""The embedded default store: one SQLite file (WAL) in the node's data folder.

Design choices, in short:

- **One connection, one lock.** A :class:`SQLiteStore` opens a single connection
  (``check_same_thread=False``) and serialises every call with a :class:`threading.RLock`. The
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
  ``deliveries`` sets the same for a reader's writes alone (inbox, delivered and acknowledged
  seqs, its held record and cached pages; ``Node.open`` uses NORMAL unless the node is a storage
  peer or ``NodeConfig.durable_deliveries``): a power cut may undo the last deliveries, which the
  next sync delivers again (exactly once across process crashes, at least once across power
  loss), never a publisher's or a storage peer's write. The WAL is written in order and each FULL
  commit fsyncs all of it, so what may be lost is only deliveries after the last FULL commit.
- **Schema versioning.** ``PRAGMA user_version`` holds the schema version and
  ``PRAGMA application_id`` marks the file as rlp2p's. A new file gets the schema on first open; a
  newer version than this code knows, or somebody else's database, is refused with StoreError
  rather than misread. An older file migrates forward inside the opening transaction, one step of
  ``_MIGRATIONS`` per version, so a data folder written by any earlier release opens and keeps
  working (a crash mid-migration leaves the old version, which migrates again on the next open).
- **Unsigned sequences.** IPNS sequences are uint64 but SQLite integers are int64, so record
  sequences are stored as their two's complement int64 (every realistic value reads the same in
  the file) and compared in Python, never in SQL.

- **Split by role, one connection.** :class:`SQLiteStore` is composed of one class per role, each
  in its own module and each implementing its role interface of :mod:`rlp2p.store.base`:
  :class:`~rlp2p.store.blocks.SQLiteBlocks` (blocks, usage accounting),
  :class:`~rlp2p.store.records.SQLiteRecords` (name records),
  :class:`~rlp2p.store.publisher_log.SQLitePublisherLog` (local log, publish state, replica
  holdings, private epochs) and :class:`~rlp2p.store.reader_state.SQLiteReaderState` (reader
  state, inbox, acks). They share :class:`~rlp2p.store.db.SQLiteDb` (the connection, its lock and
  the transaction helpers); this module keeps the schema, its migrations and opening the file.

Every :class:`sqlite3.Error` and :class:`OSError` is re-raised as :class:`StoreError` with the
original chained as its cause.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Literal

from rlp2p.errors import StoreError
from rlp2p.store.base import Store
from rlp2p.store.blocks import SQLiteBlocks
from rlp2p.store.publisher_log import SQLitePublisherLog
from rlp2p.store.reader_state import SQLiteReaderState
from rlp2p.store.records import SQLiteRecords

__all__ = ["APPLICATION_ID", "DB_FILENAME", "SCHEMA_VERSION", "SQLiteStore", "open_store"]

#: the database file inside a node's data folder
DB_FILENAME = "rlp2p.sqlite3"
#: the schema this code writes and reads (``PRAGMA user_version``)
SCHEMA_VERSION = 5
#: ``PRAGMA application_id`` of an rlp2p store: b"rlp2" as a big-endian int32
APPLICATION_ID = 0x726C7032

Synchronous = Literal["FULL", "NORMAL"]

#: bytes the WAL file is truncated to after a checkpoint
_WAL_SIZE_LIMIT = 32 * 1024 * 1024

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
    deliveries: Synchronous | None = None,
) -> SQLiteStore:
    """Open (creating if needed) the store in a node's data folder, ``data_dir/rlp2p.sqlite3``.

    The folder is created owner-only (0700) if missing: a reader's inbox holds private messages.
    """
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the data folder {data_dir}: {exc}") from exc
    return SQLiteStore(data_dir / DB_FILENAME, synchronous=synchronous, busy_timeout=busy_timeout, deliveries=deliveries)


class SQLiteStore(SQLiteBlocks, SQLiteRecords, SQLitePublisherLog, SQLiteReaderState, Store):
    """:class:`~rlp2p.store.base.Store` over one SQLite file, one role per base class (their
    modules hold the methods). Thread-safe; see the module doc."""

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 5.0,
        deliveries: Synchronous | None = None,
    ) -> None:
        """Open the database file at ``path``, creating it and its schema if needed.

        ``busy_timeout`` (seconds) is how long a write waits for another connection to the same
        file to release its lock before failing with StoreError. ``deliveries``: the
        ``synchronous`` of a reader's writes (default: ``synchronous``; see the module doc).
        """
        for setting in (synchronous, deliveries or synchronous):
            if setting not in ("FULL", "NORMAL"):
                raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {setting!r}")
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be >= 0, not {busy_timeout}")
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self.deliveries: Synchronous = deliveries or synchronous
        # re-entrant: run_inline holds it around a delivery that takes it again
        self._lock = threading.RLock()
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
