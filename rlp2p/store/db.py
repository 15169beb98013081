"""The one SQLite connection every role of :class:`~rlp2p.store.sqlite.SQLiteStore` shares.

:class:`SQLiteDb` holds the connection, its lock and the transaction helpers (``_read``,
``_write``); the role classes (:mod:`.blocks`, :mod:`.records`, :mod:`.publisher_log`,
:mod:`.reader_state`) inherit it, so one call is one transaction whatever tables it touches.
The argument checks and row helpers below are shared by all roles. The schema, its migrations and
opening the file stay in :mod:`rlp2p.store.sqlite`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rlp2p.errors import StoreError

__all__ = ["INLINE_RUN", "SQLiteDb"]

T = TypeVar("T")

#: a reader's deliveries run on the caller's thread (``run_inline``) at most this many in a row:
#: the next write goes to a worker thread, where SQLite's WAL checkpoint (a few ms of fsync) may run
INLINE_RUN = 32

#: SQLite's default ``wal_autocheckpoint`` (pages), restored after an inline delivery
_AUTOCHECKPOINT = 1000
_U64_LIMIT = 1 << 64
_I64_LIMIT = 1 << 63
#: addresses per ``IN (...)`` query, well under SQLite's variable limit on every version (999)
_CHUNK = 500


class SQLiteDb:
    """The shared connection and its transactions; set up by ``SQLiteStore.__init__``."""

    path: Path
    _lock: threading.RLock
    _conn: sqlite3.Connection | None
    #: the connection's ``PRAGMA synchronous``, and the one of a reader's writes (``_delivery``)
    synchronous: str
    deliveries: str
    #: set while ``run_inline`` runs a delivery on the caller's thread (the lock held), and the
    #: deliveries run so since the last write in a worker thread
    _inline: bool = False
    _inline_run: int = 0

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
    def _transaction(self, *, write: bool, relaxed: bool = False) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one transaction; commit on success, roll back on anything else.
        ``relaxed``: commit without fsync when the store's ``deliveries`` is NORMAL (see
        SQLiteStore); the connection goes back to its own setting after."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"{self.path}: the store is closed")
            relax = relaxed and self.deliveries != self.synchronous
            if self._inline and write and not relax:
                raise StoreError("only a reader's deliveries without fsync run inline")
            if relax:
                conn.execute(f"PRAGMA synchronous = {self.deliveries}")
                if self._inline:  # the checkpoint is left to the next write in a worker thread
                    conn.execute("PRAGMA wal_autocheckpoint = 0")
            if write and not self._inline:
                self._inline_run = 0
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
            finally:
                if relax:
                    conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                    if self._inline:
                        conn.execute(f"PRAGMA wal_autocheckpoint = {_AUTOCHECKPOINT}")

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction(write=True)

    def _delivery(self) -> AbstractContextManager[sqlite3.Connection]:
        """A reader's write (inbox, delivered and acknowledged seqs, held record, cached pages):
        a power cut may undo it, and the next sync delivers the same messages again."""
        return self._transaction(write=True, relaxed=True)

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction(write=False)

    def run_inline(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[bool, T | None]:
        """Run a reader's delivery ``fn(*args, **kwargs)`` on the calling thread (an event loop)
        when that is quick: the store's deliveries commit without fsync (``deliveries`` NORMAL,
        FULL otherwise), no other call holds the store, and fewer than ``INLINE_RUN`` ran so in
        a row. ``(True, result)`` when it ran (its exceptions propagate), ``(False, None)`` when it
        did not: the caller runs it in a worker thread. The transaction leaves the WAL
        checkpoint to the next write that does not run inline, so the loop never waits on fsync."""
        if self.deliveries == self.synchronous or self._inline_run >= INLINE_RUN:
            return False, None
        if not self._lock.acquire(blocking=False):
            return False, None
        try:
            if self._inline:  # (re-entered from inside a delivery: not a quick call)
                return False, None
            self._inline = True
            try:
                result = fn(*args, **kwargs)
            finally:
                self._inline = False
                self._inline_run += 1
            return True, result
        finally:
            self._lock.release()

    # --- usage accounting shared by blocks and records (admission of remote writers) ----------

    def _others(self, conn: sqlite3.Connection, exempt: Iterable[str]) -> tuple[int, int]:
        """What all writers but ``exempt`` hold together."""
        row = _one(conn, "SELECT bytes, names FROM usage_total WHERE id = 1")
        nbytes, names = (0, 0) if row is None else (int(row[0]), int(row[1]))
        for peer in exempt:
            held = _one(conn, "SELECT bytes, names FROM peer_usage WHERE peer_id = ?", (_text(peer, "peer"),))
            if held is not None:
                nbytes, names = nbytes - int(held[0]), names - int(held[1])
        return max(nbytes, 0), max(names, 0)


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


#: a block row as :func:`_block_row` makes it (a block held already stays as it is)
_INSERT_BLOCK = "INSERT OR IGNORE INTO blocks (address, data, size) VALUES (?, ?, ?)"


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
