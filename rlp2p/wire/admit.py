"""The hook through which a storage peer's admission policy sees the write path of CAS and NS.

The servers know who wrote (the stream's remote peer) and what; when a server has a
:class:`WriteGate` (a storage peer's), the gate decides, stores and accounts each write in one
step instead of the server's backend. A refusal is a :class:`~rlp2p.errors.WriteRefused`,
answered on the wire with its ``code`` (``QUOTA``, ``NOT_ALLOWED``, ``INCOMPLETE``) in each
protocol's error envelope.
"""

from __future__ import annotations

from typing import Any, Protocol

from rlp2p.core.record import RecordInfo


class WriteGate(Protocol):
    async def put_blocks(self, writer: str | None, items: list[tuple[bytes, bytes]]) -> None:
        """Store ``(address, data)`` pairs from ``writer``, all or none; WriteRefused refuses them."""

    async def put_record(self, writer: str | None, info: RecordInfo) -> None:
        """Store a verified record from ``writer``; StaleRecord or WriteRefused refuse it."""


def peer_of(stream: Any) -> str | None:
    """The base58 peer id at the other end of a libp2p stream, or None if it cannot be told."""
    try:
        return str(stream.muxed_conn.peer_id.to_base58())
    except Exception:  # a stream without a connection (a test double): an anonymous writer
        return None
