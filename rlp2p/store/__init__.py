"""Durable storage of a node: the :class:`Store` interface and its SQLite backend.

``open_store(data_dir)`` is what a node uses: one data folder, one SQLite file in it.
"""

from rlp2p.store.base import (
    BlockStore,
    PublisherLogStore,
    PublishState,
    ReaderState,
    ReaderStateStore,
    RecordStore,
    Store,
    StoredRecord,
)
from rlp2p.store.sqlite import SQLiteStore, open_store

__all__ = [
    "BlockStore",
    "PublishState",
    "PublisherLogStore",
    "ReaderState",
    "ReaderStateStore",
    "RecordStore",
    "SQLiteStore",
    "Store",
    "StoredRecord",
    "open_store",
]
