"""The publisher role of the SQLite store: the local log Alice appends to, her publish state,
what each replica holds, and a private log's epochs."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from rlp2p.core.private import PrivateState
from rlp2p.core.publish import Holding
from rlp2p.errors import StoreError
from rlp2p.store.base import PublisherLogStore, PublishState
from rlp2p.store.db import SQLiteDb, _blob, _int, _limit, _one, _opt_bytes, _text, _u64_from_db, _u64_to_db

__all__ = ["SQLitePublisherLog"]


class SQLitePublisherLog(SQLiteDb, PublisherLogStore):
    """:class:`~rlp2p.store.base.PublisherLogStore` over the shared connection."""

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

    def forget_messages(self, log: str, before_seq: int) -> int:
        log, before = _text(log, "log"), _int(before_seq, "before_seq")
        with self._write() as conn:
            cur = conn.execute("DELETE FROM log_messages WHERE log = ? AND seq < ?", (log, before))
        return int(cur.rowcount)

    def local_logs(self) -> list[str]:
        """The logs with messages in the local log, sorted: one index probe per log (skip-scan)."""
        with self._read() as conn:
            rows = conn.execute(
                "WITH RECURSIVE l(log) AS (SELECT min(log) FROM log_messages UNION ALL "
                "SELECT (SELECT min(log) FROM log_messages WHERE log > l.log) FROM l WHERE l.log IS NOT NULL) "
                "SELECT log FROM l WHERE log IS NOT NULL"
            ).fetchall()
        return [name for (name,) in rows]

    # --- publish state, replica holdings, private epochs -------------------------------------

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
        row = _publish_state_row(state)  # checked before the transaction
        with self._write() as conn:
            _put_publish_state(conn, log, row)

    def record_publish(self, log: str, holdings: dict[str, Holding], state: PublishState | None = None) -> None:
        log = _text(log, "log")
        rows = [_holding_row(log, peer_id, holding) for peer_id, holding in holdings.items()]
        state_row = None if state is None else _publish_state_row(state)
        with self._write() as conn:
            conn.executemany(_HOLDING_UPSERT, rows)
            if state_row is not None:
                _put_publish_state(conn, log, state_row)

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
        row = _holding_row(_text(log, "log"), peer_id, holding)
        with self._write() as conn:
            conn.execute(_HOLDING_UPSERT, row)

    def forget_replica(self, log: str, peer_id: str) -> None:
        log, peer_id = _text(log, "log"), _text(peer_id, "peer_id")
        with self._write() as conn:
            conn.execute(
                "DELETE FROM replica_holdings WHERE log = ? AND peer_id = ?", (log, peer_id)
            )


# --- helpers ---------------------------------------------------------------------------------


def _reserved(conn: sqlite3.Connection, log: str) -> int:
    row = _one(conn, "SELECT reserved_seq FROM publish_state WHERE log = ?", (log,))
    return 0 if row is None else _u64_from_db(row[0])


_HOLDING_UPSERT = (
    "INSERT INTO replica_holdings (log, peer_id, mode, length, head, open_page, open_tail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (log, peer_id) DO UPDATE SET "
    "mode = excluded.mode, length = excluded.length, head = excluded.head, "
    "open_page = excluded.open_page, open_tail = excluded.open_tail"
)


def _holding_row(log: str, peer_id: str, holding: Holding) -> tuple[object, ...]:
    if not isinstance(holding, Holding):
        raise TypeError(f"holding must be a Holding, not {type(holding).__name__}")
    return (
        log,
        _text(peer_id, "peer_id"),
        _text(holding.mode, "mode"),
        _int(holding.length, "length"),
        _blob(holding.head, "head"),
        _int(holding.open_page, "open_page"),
        None if holding.open_tail is None else _blob(holding.open_tail, "open_tail"),
    )


def _publish_state_row(state: PublishState) -> tuple[int, int, int, int]:
    """The state's columns, checked before a transaction, and the sequence reserved_seq must reach."""
    if not isinstance(state, PublishState):
        raise TypeError(f"state must be a PublishState, not {type(state).__name__}")
    return (
        _u64_to_db(state.record_seq, "record_seq"),
        _int(state.published_length, "published_length"),
        _u64_to_db(state.reserved_seq, "reserved_seq"),
        max(state.reserved_seq, state.record_seq),
    )


def _put_publish_state(conn: sqlite3.Connection, log: str, row: tuple[int, int, int, int]) -> None:
    record_seq, length, _, wanted = row
    # reserved_seq only grows: a sequence that may have left is never handed out again
    reserved = max(wanted, _reserved(conn, log))
    conn.execute(
        # the head column is unused (replica holdings know each head): left NULL
        "INSERT INTO publish_state (log, record_seq, head, published_length, reserved_seq) "
        "VALUES (?, ?, NULL, ?, ?) ON CONFLICT (log) DO UPDATE SET "
        "record_seq = excluded.record_seq, head = NULL, "
        "published_length = excluded.published_length, "
        "reserved_seq = excluded.reserved_seq",
        (log, record_seq, length, _u64_to_db(reserved, "reserved_seq")),
    )
