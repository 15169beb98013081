"""``rlp2p publish`` signs compact records (221 B) unless ``--record-v1`` asks for V1 fields (435 B)."""

from __future__ import annotations

import sqlite3

from rlp2p.store.sqlite import DB_FILENAME


def test_publish_signs_compact_records_unless_record_v1(cli) -> None:
    storage = cli.serve("storage")
    addr = storage.address()
    sizes = {}
    for i, flags in enumerate(([], ["--record-v1"])):
        key, name = cli.keygen(f"log{i}.key")
        done = cli.run("publish", "--key", str(key), "--data", "alice", "--bootstrap", addr, "--replicas", "1", *flags, stdin=b"hello\n")
        assert done.returncode == 0, done.describe()
        # the storage peer's own file, read beside it (SQLite WAL: readers do not block it)
        conn = sqlite3.connect(f"file:{storage.data / DB_FILENAME}?mode=ro", uri=True)
        try:
            (record,) = conn.execute("SELECT record FROM records WHERE name = ?", (name,)).fetchone()
        finally:
            conn.close()
        sizes[" ".join(flags)] = len(record)
    assert sizes == {"": 221, "--record-v1": 435}
