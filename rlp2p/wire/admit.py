"""The hook through which a storage peer's admission policy sees the write path of CAS and NS.

The servers know who wrote (the stream's remote peer) and what; a :class:`WriteGate` (the node's)
decides and accounts. A refusal is a :class:`~rlp2p.errors.WriteRefused`, answered on the wire
with its ``code`` (``QUOTA`` or ``NOT_ALLOWED``) in each protocol's error envelope.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from rlp2p.core.record import RecordInfo


class WriteGate(Protocol):
    def blocks(self, writer: str | None, items: list[tuple[bytes, bytes]]) -> AbstractAsyncContextManager[None]:
        """Entered before the blocks are stored (raises WriteRefused to refuse them all), left
        after they were; a write that fails in between is not accounted."""

    def record(self, writer: str | None, info: RecordInfo) -> AbstractAsyncContextManager[None]:
        """The same for a verified record."""


def peer_of(stream: Any) -> str | None:
    """The base58 peer id at the other end of a libp2p stream, or None if it cannot be told."""
    try:
        return str(stream.muxed_conn.peer_id.to_base58())
    except Exception:  # a stream without a connection (a test double): an anonymous writer
        return None
