"""The storage interface of a node: what the core produces, kept durably.

One :class:`Store` holds everything a node keeps across restarts, whatever its role:

- **blocks**: the content-addressed store (CAS) a storage peer serves and a publisher uploads from;
- **records**: the best signed name record (IPNS) per log name, which a storage peer serves and
  republishes;
- **the publisher's local log**: the messages Alice wrote, her publish state and, per replica,
  what it holds (a :class:`~rlp2p.core.publish.Holding`: a high-water mark, not a set of blocks);
- **the reader's sync state**: the newest record Bob accepted and the messages he has delivered.

Each of the four is a role interface (:class:`BlockStore`, :class:`RecordStore`,
:class:`PublisherLogStore`, :class:`ReaderStateStore`); :class:`Store` is all four over one database,
so a collaborator that needs one role can be typed by it alone.

The interface is synchronous and thread-safe: the node calls it from worker threads
(``trio.to_thread.run_sync``), never on the trio loop. Every method that writes is one transaction:
either all of its effect is durable when it returns, or none of it is (on an error, or if the
process dies half-way).

The store trusts its caller: it does not check that a block hashes to its address, nor that a record
is signed (the core does both before calling). Addresses are opaque bytes to it. Everything it
raises on purpose is a :class:`~rlp2p.errors.StoreError` (storage failed or a request breaks an
invariant), a :class:`~rlp2p.errors.NotFound` or a :class:`~rlp2p.errors.StaleRecord`; a
:class:`TypeError` or :class:`ValueError` means the caller passed the wrong kind of argument.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from rlp2p.core.publish import Holding
from rlp2p.core.private import PrivateState

__all__ = [
    "BlockStore",
    "PublishState",
    "PublisherLogStore",
    "ReaderState",
    "ReaderStateStore",
    "RecordStore",
    "Store",
    "StoredRecord",
]


#: ``admit(writer's (bytes, names), all unexempted writers' (bytes, names), new bytes)``: raises to refuse
AdmitBlocks = Callable[[tuple[int, int], tuple[int, int], int], None]
#: ``admit(new name, writer's (bytes, names), all unexempted writers' (bytes, names), log bytes)``
AdmitRecord = Callable[[bool, tuple[int, int], tuple[int, int], int], None]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """The record held for a name."""

    #: the signed record, exactly as received
    record: bytes
    #: its sequence number (IPNS: uint64)
    sequence: int
    #: when it was stored, seconds since the Unix epoch
    updated_at: float


@dataclass(frozen=True, slots=True)
class PublishState:
    """How far the publisher got with a log: what the replicas were last told."""

    #: sequence of the newest record published (IPNS: uint64)
    record_seq: int
    #: how many messages of the local log (seq 1..published_length) that record covers
    published_length: int
    #: the highest sequence a record may have left this process with (a failed attempt's too):
    #: never signed again, so a retry cannot collide with a record a replica already holds
    reserved_seq: int = 0


@dataclass(frozen=True, slots=True)
class ReaderState:
    """How far a reader got with a log. All zero for a log never synced."""

    #: the newest record accepted for the log, None if none yet
    record: bytes | None = None
    #: its sequence number, 0 if none
    record_seq: int = 0
    #: the head page it points at, None if none
    head: bytes | None = None
    #: the newest message seq delivered; messages 1..delivered_seq are in the inbox
    delivered_seq: int = 0
    #: the newest seq the application acknowledged (``<= delivered_seq``); the inbox messages
    #: after it are handed to the application again on the next sync (at-least-once)
    acked_seq: int = 0


class BlockStore(abc.ABC):
    """Role: the content-addressed blocks, and a storage peer's usage accounting of them."""

    # --- blocks (CAS) ------------------------------------------------------------------------

    @abc.abstractmethod
    def put_blocks(self, items: Iterable[tuple[bytes, bytes]]) -> int:
        """Store ``(address, data)`` pairs in one transaction; return how many were new.

        Idempotent: an address already held is left as it is (content addressing means its data is
        the same). The data is not checked against the address; the caller does that.
        """

    @abc.abstractmethod
    def get_block(self, address: bytes) -> bytes:
        """The data stored under ``address``; :class:`~rlp2p.errors.NotFound` if none."""

    @abc.abstractmethod
    def get_blocks(self, addresses: Iterable[bytes]) -> dict[bytes, bytes]:
        """The blocks held among ``addresses``, by address; those not held are left out."""

    @abc.abstractmethod
    def has_blocks(self, addresses: Iterable[bytes]) -> set[bytes]:
        """Which of ``addresses`` are held."""

    def block_sizes(self, addresses: Iterable[bytes]) -> dict[bytes, int]:
        """The size of each block held among ``addresses`` (a server plans its answers by it)."""
        return {a: len(d) for a, d in self.get_blocks(addresses).items()}

    def get_blocks_upto(self, addresses: Iterable[bytes], max_bytes: int) -> tuple[dict[bytes, bytes], bool]:
        """``(the blocks held among addresses, True)`` when their bytes add up to at most
        ``max_bytes``; else ``(some of them, at most max_bytes in all, False)``."""
        addresses = list(addresses)
        if sum(self.block_sizes(addresses).values()) > max_bytes:
            return {}, False
        return self.get_blocks(addresses), True

    @abc.abstractmethod
    def block_stats(self) -> tuple[int, int]:
        """``(number of blocks, total bytes of their data)``."""

    # --- a storage peer's usage accounting and block retention --------------------------------
    # Not abstract: a store that does not implement them cannot run admission or retention.

    def total_usage(self) -> tuple[int, int]:
        """``(bytes, names)`` all writers together have stored here (the sum of peer_usage)."""
        raise NotImplementedError

    def top_usage(self, limit: int) -> list[tuple[str, int, int]]:
        """``(peer_id, bytes, names)`` of the ``limit`` writers storing the most bytes."""
        raise NotImplementedError

    def put_blocks_as(
        self,
        items: Iterable[tuple[bytes, bytes]],
        writer: str,
        now: float,
        admit: AdmitBlocks,
        exempt: Iterable[str] = (),
    ) -> int:
        """:meth:`put_blocks` for a remote writer, in one transaction with its admission and
        accounting: ``admit(writer's (bytes, names), all writers but exempt (bytes, names),
        bytes new here)`` raises to refuse (nothing is written); then the new blocks are stored
        as the writer's, at ``now``, and charged to it. Returns how many were new."""
        raise NotImplementedError

    def blocks_stored_before(self, cutoff: float, after: bytes, limit: int) -> list[bytes]:
        """At most ``limit`` addresses greater than ``after``, in order, of blocks stored before
        ``cutoff`` (or at an unknown time)."""
        raise NotImplementedError

    def delete_blocks(
        self, addresses: Iterable[bytes], cutoff: float, records: dict[str, bytes] | None = None
    ) -> tuple[int, int] | None:
        """Delete those of ``addresses`` still stored before ``cutoff``; ``(blocks, bytes)``. With
        ``records`` (name -> record), only if those are still exactly the records held; else None."""
        raise NotImplementedError


class RecordStore(abc.ABC):
    """Role: the best name record per log, and a storage peer's admission and retention of them."""

    # --- records (NS) ------------------------------------------------------------------------

    @abc.abstractmethod
    def get_record(self, name: str) -> StoredRecord | None:
        """The record held for ``name``, or None."""

    @abc.abstractmethod
    def put_record(self, name: str, record: bytes, sequence: int, *, now: float | None = None) -> None:
        """Keep ``record`` as the best for ``name`` if ``sequence`` beats the one held.

        ``now`` (Unix seconds, the storage peer's clock) is its ``updated_at``; the wall clock
        if None.

        Raises :class:`~rlp2p.errors.StaleRecord` (``have``, ``got``) unless ``sequence`` is
        greater than the held one's. The check and the write are one transaction, so of two
        concurrent writers of the same sequence exactly one wins. The caller has already validated
        the record's signature and that ``sequence`` is the record's own.
        """

    @abc.abstractmethod
    def record_names(self) -> list[str]:
        """Every name a record is held for, sorted (for republishing and provider announcements)."""

    # --- a storage peer's admission and record retention -------------------------------------
    # Not abstract: a store that does not implement them cannot run admission or retention.

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
        """:meth:`put_record` for a remote writer, in one transaction with its admission and
        accounting: after the staleness check, ``admit(new name, writer's usage, all writers but
        exempt, the log's measured bytes)`` raises to refuse; a name with no creator yet becomes
        the writer's and is charged to it."""
        raise NotImplementedError

    def log_bytes(self, name: str) -> int:
        """The bytes the head of ``name`` reached when retention last measured it (0 if never)."""
        raise NotImplementedError

    def set_log_bytes(self, sizes: dict[str, int]) -> None:
        """Record measured sizes of logs held."""
        raise NotImplementedError

    def heads(self) -> dict[str, tuple[bytes, float]]:
        """``name -> (record, updated_at)`` of every record held."""
        raise NotImplementedError

    def stale_names(self, updated_before: float, limit: int) -> list[str]:
        """At most ``limit`` names whose record was last updated before ``updated_before``."""
        raise NotImplementedError

    def drop_records(self, names: Iterable[str], updated_before: float) -> list[str]:
        """Drop the records of ``names`` still not updated since ``updated_before``, giving their
        creators their names back; returns the names dropped. One transaction."""
        raise NotImplementedError

    def record_count(self) -> int:
        """How many names a record is held for."""
        raise NotImplementedError


class PublisherLogStore(abc.ABC):
    """Role: the publisher's local log, publish state, replica holdings and private epochs."""

    # --- the publisher's local log -----------------------------------------------------------

    @abc.abstractmethod
    def append_messages(self, log: str, datas: Sequence[bytes]) -> list[int]:
        """Append serialized messages to ``log`` in one transaction; return their seqs.

        Seqs start at 1 and are consecutive: a log of N messages gets N+1, N+2, ...
        """

    @abc.abstractmethod
    def log_length(self, log: str) -> int:
        """How many messages ``log`` holds (its newest seq); 0 for an unknown log."""

    @abc.abstractmethod
    def log_entries(
        self, log: str, after_seq: int = 0, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        """``(seq, data)`` of the messages after ``after_seq``, in seq order, at most ``limit``."""

    @abc.abstractmethod
    def forget_messages(self, log: str, before_seq: int) -> int:
        """Delete the messages of ``log`` before ``before_seq`` (a truncated history); the newest
        seq, so :meth:`log_length`, stays. Returns how many were deleted."""

    @abc.abstractmethod
    def get_publish_state(self, log: str) -> PublishState | None:
        """The publish state of ``log``, or None if it was never set."""

    @abc.abstractmethod
    def set_publish_state(self, log: str, state: PublishState) -> None:
        """Replace the publish state of ``log``."""

    @abc.abstractmethod
    def reserve_sequence(self, log: str, sequence: int) -> None:
        """Raise ``log``'s ``reserved_seq`` to ``sequence`` (never lower it), before a record with
        that sequence is sent. A log without publish state gets one (record_seq 0, no head)."""

    def private_state(self, log: str) -> PrivateState | None:
        """A private log's seed and epoch starts (rlp2p.core.private); None for a public log."""
        raise NotImplementedError

    def set_private_state(self, log: str, state: PrivateState) -> None:
        """Record ``log`` as private, or its new epochs; epochs are only ever added."""
        raise NotImplementedError

    @abc.abstractmethod
    def replica_holding(self, log: str, peer_id: str) -> Holding | None:
        """What replica ``peer_id`` holds of ``log`` (it acknowledged a record naming it), or None."""

    def replica_lengths(self, log: str) -> dict[str, int]:
        """How many messages of ``log`` each replica holds, by peer id (for `rlp2p status`)."""
        raise NotImplementedError

    @abc.abstractmethod
    def set_replica_holding(self, log: str, peer_id: str, holding: Holding) -> None:
        """Remember what replica ``peer_id`` holds of ``log`` (replaces the previous holding)."""

    def record_publish(self, log: str, holdings: dict[str, Holding], state: PublishState | None = None) -> None:
        """What replicas acknowledged in one publish and, if it reached its quorum, its state: the
        publisher's bookkeeping, in one transaction where the store can (SQLite does)."""
        for peer_id, holding in holdings.items():
            self.set_replica_holding(log, peer_id, holding)
        if state is not None:
            self.set_publish_state(log, state)

    @abc.abstractmethod
    def forget_replica(self, log: str, peer_id: str) -> None:
        """Forget what ``peer_id`` holds of ``log`` (it lost it, or left): it gets everything again."""


class ReaderStateStore(abc.ABC):
    """Role: the reader's accepted record, inbox and acknowledgements per log."""

    # --- the reader's sync state -------------------------------------------------------------

    @abc.abstractmethod
    def get_reader_state(self, log: str) -> ReaderState:
        """The reader's state of ``log``; all zero (``ReaderState()``) for an unknown log."""

    @abc.abstractmethod
    def set_reader_record(
        self, log: str, record: bytes, record_seq: int, head: bytes | None
    ) -> None:
        """Keep ``record`` as the newest accepted for ``log``; delivered messages are untouched.

        Raises :class:`~rlp2p.errors.StaleRecord` if ``record_seq`` is lower than the held one's
        (equal is allowed, so a reader may store the same record again).
        """

    @abc.abstractmethod
    def deliver(
        self,
        log: str,
        items: Sequence[tuple[int, bytes, bytes]],
        acked_seq: int | None = None,
        *,
        gone_to: int | None = None,
    ) -> None:
        """Deliver ``(seq, message_id, data)`` items in one transaction.

        The seqs must continue exactly from ``delivered_seq + 1``, consecutively; otherwise
        :class:`~rlp2p.errors.StoreError` is raised and nothing is written. The items go into the
        inbox and ``delivered_seq`` advances to the last one. ``acked_seq``, if given, is
        acknowledged in the same transaction (as :meth:`ack`; at most the last item's seq), so a
        reader commits the previous batch's acknowledgements with the next batch.
        ``gone_to``: the publisher truncated the seqs up to it away, so ``delivered_seq`` first
        jumps there (never backwards) and the items continue from it.
        """

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
        """A pushed record's whole next state in one transaction: the ``items`` into the inbox,
        ``record`` (sequence ``record_seq``, head page ``head`` = ``page``, which is cached) as
        the accepted record, ``delivered_seq`` to the last item. Only when the held head is
        ``after_head``, ``record_seq`` is higher than the held one's, nothing delivered waits
        for an acknowledgement and the items continue from ``delivered_seq + 1``; otherwise
        nothing is written and False is returned (the caller syncs instead). This default
        writes nothing: a store without it is synced."""
        return False

    @abc.abstractmethod
    def ack(self, log: str, seq: int) -> int:
        """The application has everything up to ``seq``: advance ``acked_seq`` (never backwards;
        an older seq changes nothing). Returns the acked seq now held. Raises
        :class:`~rlp2p.errors.StoreError` for a seq beyond ``delivered_seq``."""

    @abc.abstractmethod
    def delivered(
        self, log: str, after_seq: int = 0, limit: int | None = None
    ) -> list[tuple[int, bytes, bytes]]:
        """``(seq, message_id, data)`` of delivered messages after ``after_seq``, in seq order."""


class Store(BlockStore, RecordStore, PublisherLogStore, ReaderStateStore):
    """A node's durable storage, every role in one. See the module documentation for the contract."""

    """A node's durable storage. See the module documentation for the contract."""

    # --- lifecycle ---------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the storage. Idempotent; any other call afterwards raises StoreError."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
