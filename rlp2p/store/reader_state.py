"""The reader role of the SQLite store: per log, the newest record Bob accepted, the inbox of
delivered messages and how far the application acknowledged them."""

from __future__ import annotations

from collections.abc import Sequence

from rlp2p.errors import StaleRecord, StoreError
from rlp2p.store.base import ReaderState, ReaderStateStore
from rlp2p.store.db import (
    _INSERT_BLOCK,
    SQLiteDb,
    _blob,
    _block_row,
    _int,
    _limit,
    _one,
    _opt_bytes,
    _text,
    _u64_from_db,
    _u64_to_db,
)

__all__ = ["SQLiteReaderState"]

_INSERT_INBOX = "INSERT INTO inbox (log, seq, message_id, data) VALUES (?, ?, ?, ?)"


def _inbox_rows(log: str, items: Sequence[tuple[int, bytes, bytes]]) -> list[tuple[str, int, bytes, bytes]]:
    """Inbox rows of ``(seq, message id, data)`` items, checked before any transaction."""
    return [(log, _int(seq, "seq"), _blob(mid, "message_id"), _blob(data, "data")) for seq, mid, data in items]


class SQLiteReaderState(SQLiteDb, ReaderStateStore):
    """:class:`~rlp2p.store.base.ReaderStateStore` over the shared connection."""

    # --- the reader's sync state -------------------------------------------------------------

    def reader_logs(self) -> list[str]:
        """The logs this node has reader state for, sorted."""
        with self._read() as conn:
            rows = conn.execute("SELECT log FROM reader_state ORDER BY log").fetchall()
        return [name for (name,) in rows]

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
        with self._delivery() as conn:
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
        self,
        log: str,
        items: Sequence[tuple[int, bytes, bytes]],
        acked_seq: int | None = None,
        *,
        gone_to: int | None = None,
    ) -> None:
        log = _text(log, "log")
        rows = _inbox_rows(log, items)
        ack = None if acked_seq is None else _int(acked_seq, "acked_seq")
        if not rows:
            if ack is not None:
                self.ack(log, ack)
            return
        with self._delivery() as conn:
            row = _one(conn, "SELECT delivered_seq FROM reader_state WHERE log = ?", (log,))
            delivered = 0 if row is None else int(row[0])
            if gone_to is not None:
                delivered = max(delivered, _int(gone_to, "gone_to"))  # truncated away: skipped
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
            conn.executemany(_INSERT_INBOX, rows)
            conn.execute(
                "UPDATE reader_state SET delivered_seq = ?, acked_seq = max(acked_seq, ?) "
                "WHERE log = ?",
                (last, ack or 0, log),
            )

    def deliver_head(
        self,
        log: str,
        record: bytes,
        record_seq: int,
        head: bytes,
        page: bytes,
        items: Sequence[tuple[int, bytes, bytes]],
        *,
        after_head: bytes,
    ) -> bool:
        log = _text(log, "log")
        record, head, after_head = _blob(record, "record"), _blob(head, "head"), _blob(after_head, "after_head")
        stored_seq = _u64_to_db(record_seq, "record_seq")
        block = _block_row(head, page)
        rows = _inbox_rows(log, items)
        if not rows:
            return False
        with self._delivery() as conn:
            row = _one(
                conn, "SELECT record_seq, head, delivered_seq, acked_seq FROM reader_state WHERE log = ?", (log,)
            )
            if row is None or _opt_bytes(row[1]) != after_head or record_seq <= _u64_from_db(row[0]):
                return False
            delivered, acked = int(row[2]), int(row[3])
            # nothing to hand over again first, and the items continue the inbox exactly
            if acked != delivered or [r[1] for r in rows] != list(range(delivered + 1, delivered + 1 + len(rows))):
                return False
            conn.executemany(_INSERT_INBOX, rows)
            conn.execute(_INSERT_BLOCK, block)
            conn.execute(
                "UPDATE reader_state SET record = ?, record_seq = ?, head = ?, delivered_seq = ? WHERE log = ?",
                (record, stored_seq, head, rows[-1][1], log),
            )
            return True

    def ack(self, log: str, seq: int) -> int:
        log = _text(log, "log")
        seq = _int(seq, "seq")
        with self._delivery() as conn:
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
