"""The records role of the SQLite store: the best signed name record per log name (NS), with a
storage peer's admission of record writers and record retention."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rlp2p.errors import StaleRecord
from rlp2p.store.base import AdmitRecord, RecordStore, StoredRecord
from rlp2p.store.db import SQLiteDb, _blob, _charge, _int, _limit, _one, _text, _u64_from_db, _u64_to_db

__all__ = ["SQLiteRecords"]


class SQLiteRecords(SQLiteDb, RecordStore):
    """:class:`~rlp2p.store.base.RecordStore` over the shared connection."""

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

    # --- a storage peer's admission and record retention -------------------------------------

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

    def record_count(self) -> int:
        with self._read() as conn:
            (count,) = _one(conn, "SELECT count(*) FROM records")
        return int(count)
