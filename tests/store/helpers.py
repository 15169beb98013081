"""Store calls only tests make: kept out of :mod:`rlp2p.store` so the store holds what rlp2p uses."""

from __future__ import annotations

from rlp2p.store import SQLiteStore, Store


def put_block(store: Store, address: bytes, data: bytes) -> bool:
    """Store one block; True if it was new."""
    return store.put_blocks([(address, data)]) == 1


def logs_held(store: Store) -> list[str]:
    """The logs a storage peer holds: those it keeps a record for."""
    return store.record_names()


def peer_usage(store: SQLiteStore, peer_id: str) -> tuple[int, int]:
    """``(bytes, names)`` the writer ``peer_id`` has stored here (``total_usage`` is their sum)."""
    with store._read() as conn:
        rows = conn.execute("SELECT bytes, names FROM peer_usage WHERE peer_id = ?", (peer_id,)).fetchall()
    return (0, 0) if not rows else (int(rows[0][0]), int(rows[0][1]))
