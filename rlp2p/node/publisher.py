"""Alice: append to a log, lay it out in pages, replicate it, point the name at its head.

A publish costs what changed. Per replica, Alice keeps what it holds as a high-water mark (a
:class:`~rlp2p.core.publish.Holding`: the log length whose record it acknowledged, its head, and
where that log's open pages start); she rebuilds only the pages from the lowest open page among the
replicas she writes to, reads only those messages from the local log, and sends each replica what
it lacks (:func:`~rlp2p.core.publish.lacking`), then the signed record. A replica left behind
(it was down) gets everything from its own mark on, at the next publish.

Record sequences are reserved durably before a record is signed and sent: a sequence that may
have left the process is never used again, so a retry after any crash (ours or a replica's) signs
a higher one, and replicas holding a failed attempt take it. A publish with no new messages
refreshes the record alone (new sequence and validity, same head, no pages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from rlp2p.core.keys import log_name
from rlp2p.core.message import Message
from rlp2p.core.page import BuiltLog, LogEntry, LogMode, build_pages
from rlp2p.core.placement import log_key, order_candidates
from rlp2p.core.publish import (
    Holding,
    build_start,
    holding_after,
    lacking,
    next_sequence,
    partial_holding,
    usable,
)
from rlp2p.core.record import DEFAULT_TTL, DEFAULT_VALIDITY, create_record, verify_record
from rlp2p.errors import PublishError, RemoteError, Rlp2pError
from rlp2p.store import PublishState

if TYPE_CHECKING:
    from rlp2p.node.node import Node

log = logging.getLogger(__name__)

DEFAULT_MODE = LogMode.paged(64, embed=None)
#: blocks per pipelined batch while uploading
UPLOAD_BATCH = 256
#: messages below which a build or a plan runs on the trio thread (a worker thread's hop costs more)
INLINE_ENTRIES = 2048
#: publish attempts with a new sequence when replicas hold a higher one of ours (lost state)
SEQUENCE_RETRIES = 1


@dataclass
class ReplicaResult:
    peer: str
    ok: bool
    blocks_sent: int = 0
    bytes_sent: int = 0
    error: str = ""
    #: the sequence of a record of ours the replica holds that beats the one we sent (STALE)
    holds_seq: int = 0


@dataclass
class PublishReport:
    name: str
    messages: int
    sequence: int
    head: bytes | None
    replicas: list[ReplicaResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def stored_on(self) -> list[str]:
        return [r.peer for r in self.replicas if r.ok]

    @property
    def bytes_sent(self) -> int:
        return sum(r.bytes_sent for r in self.replicas)


Progress = Callable[[int, int], None]


@dataclass
class _Build:
    """The pages of the log from one page on, and the messages they were made from."""

    built: BuiltLog
    entries: list[LogEntry]


class Publisher:
    def __init__(
        self,
        node: Node,
        key_pair: KeyPair,
        *,
        mode: LogMode = DEFAULT_MODE,
        replicas: int = 3,
        write_quorum: int | None = None,
        replica_peers: Sequence[ID] | None = None,
        group_id: bytes | None = None,
        validity: timedelta = DEFAULT_VALIDITY,
        ttl: timedelta = DEFAULT_TTL,
        record_v1: bool = False,
    ) -> None:
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.node = node
        self.key_pair = key_pair
        self.name = log_name(key_pair.public_key)
        self.mode = mode
        self.replicas = replicas
        self.write_quorum = write_quorum or (replicas // 2 + 1)
        if not 1 <= self.write_quorum <= replicas:
            raise ValueError("write_quorum must be between 1 and replicas")
        self.replica_peers = list(replica_peers) if replica_peers else None
        if validity <= timedelta(0) or ttl < timedelta(0):
            raise ValueError(f"validity must be positive and ttl not negative, got {validity}, {ttl}")
        #: how long each record stays valid from its publish, and how long readers may cache it
        self.validity = validity
        self.ttl = ttl
        #: records with IPNS V1 fields and pubKey too, for old resolvers (default: compact, V2 only)
        self.record_v1 = record_v1
        # MVDS messages carry a group; by default one group per log
        self.group_id = group_id if group_id is not None else hashlib.sha256(self.name.encode()).digest()

    # --- the local log -------------------------------------------------------------------------

    async def append(self, bodies: Iterable[bytes], *, timestamp: int | None = None) -> list[int]:
        """Append messages to the local log (durably); returns their seqs. Nothing is sent."""
        ts = int(self.node.config.clock().timestamp()) if timestamp is None else timestamp
        datas = [Message(self.group_id, ts, body).encode() for body in bodies]
        limit = self.node.config.limits.max_message
        for data in datas:
            if len(data) > limit:
                raise ValueError(f"a message of {len(data)} bytes is over the limit of {limit}")
        return await self.node.astore.call(self.node.store.append_messages, self.name, datas)

    async def length(self) -> int:
        return await self.node.astore.call(self.node.store.log_length, self.name)

    # --- publishing ------------------------------------------------------------------------------

    async def candidates(self) -> list[ID]:
        """Storage peers to replicate to, nearest to the log's key first."""
        if self.replica_peers is not None:
            return list(self.replica_peers)
        assert self.node.discovery is not None
        peers = {p.to_bytes(): p for p in await self.node.storage_candidates(log_key(self.name))}
        # peers already holding the log come too: they have most blocks
        for info in await self.node.discovery.find_log_peers(self.name):
            self.node.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
            peers.setdefault(info.peer_id.to_bytes(), info.peer_id)
        ordered = order_candidates(log_key(self.name), list(peers))
        return [peers[p] for p in ordered]

    async def publish(self, *, progress: Progress | None = None) -> PublishReport:
        """Replicate what the replicas lack of the local log and point the name at its head.

        With no new message since the last publish, this refreshes the record alone (new
        sequence, new validity, same head). Raises PublishError when fewer than ``write_quorum``
        replicas stored everything; what each did store is remembered, so the next publish sends
        only the rest.
        """
        started = time.monotonic()
        store, astore = self.node.store, self.node.astore
        length = await astore.call(store.log_length, self.name)
        if length == 0:
            raise PublishError("the log is empty: append messages before publishing")
        candidates = await self.candidates()
        if len(candidates) < self.write_quorum:
            raise PublishError(
                f"found {len(candidates)} storage peers, need {self.write_quorum} for the write quorum"
            )
        # the head page names the intended replicas (the spec's CAS multiaddr), as a hint for readers
        hint = self.node.multiaddrs_of(candidates[: self.replicas])
        build: _Build | None = None

        async def pages_for(holdings: Iterable[Holding | None]) -> _Build:
            nonlocal build
            page, tail = build_start(holdings)
            if build is None or page < build.built.first_page:
                build = await self._build(length, page, tail, hint)
            return build

        # what the first replicas hold decides where the build starts; a replacement that holds
        # less makes it start earlier (same pages, same head)
        first = [await self._holding(p, length) for p in candidates[: self.replicas]]
        head = (await pages_for(first)).built.head
        assert head is not None
        state = await astore.call(store.get_publish_state, self.name)
        sequence = next_sequence(state.record_seq, state.reserved_seq) if state else 1

        report = PublishReport(self.name, length, sequence, head)
        for attempt in range(SEQUENCE_RETRIES + 1):
            # reserved before the record exists: once it may have left, it is never signed again
            await astore.call(store.reserve_sequence, self.name, sequence)
            record = create_record(
                self.key_pair, head, sequence, validity=self.validity, ttl=self.ttl, now=self.node.config.clock(),
                v1_compatible=self.record_v1,
            )
            report = PublishReport(self.name, length, sequence, head)
            await self._replicate_all(candidates, length, pages_for, record, report, progress)
            if len(report.stored_on) >= self.write_quorum:
                break
            higher = max((r.holds_seq for r in report.replicas), default=0)
            if higher < sequence or attempt == SEQUENCE_RETRIES:
                break
            # replicas hold a record of ours this store forgot (restored data folder, old
            # release): go above it
            log.info("replicas hold sequence %d of %s; publishing again above it", higher, self.name)
            sequence = higher + 1
        report.seconds = time.monotonic() - started
        if len(report.stored_on) < self.write_quorum:
            # the next publish goes above whatever our replicas were seen to hold
            held = max((r.holds_seq for r in report.replicas), default=0)
            if held > sequence:
                await astore.call(store.reserve_sequence, self.name, held)
            failures = "; ".join(f"{r.peer}: {r.error}" for r in report.replicas if not r.ok)
            raise PublishError(
                f"stored on {len(report.stored_on)} of the {self.write_quorum} replicas needed ({failures})"
            )
        await astore.call(
            store.set_publish_state,
            self.name,
            PublishState(record_seq=sequence, head=head, published_length=length, reserved_seq=sequence),
        )
        # the replicas that took the record put it into the DHT themselves; ours is a second
        # copy, so nobody waits for it (it was most of a publish's time)
        assert self.node.discovery is not None
        self.node.in_background(self.node.discovery.put_record, verify_record(self.name, record))
        if self.node.announcements is not None:  # live updates for followers (node/announce.py)
            self.node.announcements.announce(verify_record(self.name, record, now=self.node.config.clock()))
        log.info("published %s: %d messages, seq %d, on %s", self.name, length, sequence, report.stored_on)
        return report

    async def assume_held(self, peer: ID, built: BuiltLog) -> None:
        """Remember that ``peer`` holds every block of ``built`` (a whole build of this log, in this
        mode): for set-ups that put the blocks there themselves. The next publish sends it only
        what changed since."""
        holding = holding_after(built, self.mode)
        await self.node.astore.call(self.node.store.set_replica_holding, self.name, peer.to_string(), holding)

    async def _note_progress(self, peer: ID, have: Holding | None, built: BuiltLog, pages: list[int]) -> Holding | None:
        """After whole pages of a long upload went through: remember them, so an upload cut short
        (a crash, a lost link) resumes after them rather than from the replica's last record."""
        partial = partial_holding(built, self.mode, max(pages)) if pages else None
        if partial is None or (have is not None and partial.length <= have.length):
            return have
        await self.node.astore.call(self.node.store.set_replica_holding, self.name, peer.to_string(), partial)
        return partial

    async def _holding(self, peer: ID, length: int) -> Holding | None:
        have = await self.node.astore.call(self.node.store.replica_holding, self.name, peer.to_string())
        return usable(have, self.mode, length)

    async def _build(self, length: int, page: int, tail: bytes | None, hint: Sequence[bytes]) -> _Build:
        """Read seq page*P+1..length from the local log and lay out those pages."""
        after = page * (self.mode.page_size or 1)
        rows = await self.node.astore.call(self.node.store.log_entries, self.name, after, length - after)
        limits = self.node.config.limits

        def lay_out() -> _Build:
            entries = [LogEntry(seq=seq, data=data) for seq, data in rows]
            return _Build(build_pages(entries, self.mode, hint, first_page=page, tail=tail, limits=limits), entries)

        if len(rows) <= INLINE_ENTRIES:
            return lay_out()
        return await trio.to_thread.run_sync(lay_out)

    async def _replicate_all(
        self,
        candidates: list[ID],
        length: int,
        pages_for: Callable[[Iterable[Holding | None]], Awaitable[_Build]],
        record: bytes,
        report: PublishReport,
        progress: Progress | None,
    ) -> None:
        """Aim for ``replicas`` copies; a failed replica is replaced by the next-closest candidate."""
        counts = [0, 0]  # blocks done, blocks to send (grows as each replica's plan is known)

        def tick(done: int, more: int = 0) -> None:
            counts[0] += done
            counts[1] += more
            if progress is not None:
                progress(min(counts[0], counts[1]), counts[1])

        pending = list(candidates)
        while pending and len(report.stored_on) < self.replicas:
            need = self.replicas - len(report.stored_on)
            batch, pending = pending[:need], pending[need:]
            holdings = [await self._holding(p, length) for p in batch]
            build = await pages_for(holdings)
            results: list[ReplicaResult] = []

            async def one(peer: ID, have: Holding | None, build: _Build, results: list[ReplicaResult]) -> None:
                results.append(
                    await self._replicate(peer, have, build, record, tick, full_build=lambda: pages_for([None]))
                )

            async with trio.open_nursery() as nursery:
                for peer, have in zip(batch, holdings, strict=True):
                    nursery.start_soon(one, peer, have, build, results)
            report.replicas.extend(results)

    async def _replicate(
        self,
        peer: ID,
        have: Holding | None,
        build: _Build,
        record: bytes,
        tick: Callable[..., None],
        *,
        full_build: Callable[[], Awaitable[_Build]] | None = None,
    ) -> ReplicaResult:
        store, astore = self.node.store, self.node.astore
        built = build.built
        result = ReplicaResult(peer=peer.to_string(), ok=False)
        try:
            if len(build.entries) <= INLINE_ENTRIES:
                missing = lacking(have, built, build.entries, self.mode)
            else:
                missing = await trio.to_thread.run_sync(lacking, have, built, build.entries, self.mode)
            tick(0, len(missing))
            if missing:
                pages = {a: i for i, (a, _) in enumerate(built.pages, start=built.first_page)}
                async with self.node.cas(peer) as cas:
                    before = cas.rpc.bytes_out  # a kept stream counts what earlier callers sent
                    try:
                        for start in range(0, len(missing), UPLOAD_BATCH):
                            chunk = missing[start : start + UPLOAD_BATCH]
                            await cas.add_many([built.blocks[a] for a in chunk])
                            result.blocks_sent += len(chunk)
                            tick(len(chunk))
                            if start + UPLOAD_BATCH < len(missing):  # after the last, the record says more
                                done = [pages[a] for a in chunk if a in pages]
                                have = await self._note_progress(peer, have, built, done)
                    finally:
                        result.bytes_sent += cas.rpc.bytes_out - before
            async with self.node.ns(peer) as ns:
                before = ns.rpc.bytes_out
                try:
                    await ns.update(self.name, record)
                except RemoteError as exc:
                    # the replica holds this very record already (a retried publish): fine
                    if exc.code != "STALE":
                        raise
                    held = await ns.fetch(self.name)
                    if held.raw != record:
                        result.holds_seq = held.sequence
                        raise
                finally:
                    result.bytes_sent += ns.rpc.bytes_out - before
            # it acknowledged a record naming this head: it holds everything the head reaches
            await astore.call(store.set_replica_holding, self.name, result.peer, holding_after(built, self.mode))
            result.ok = True
        except (Rlp2pError, trio.TooSlowError) as exc:
            if isinstance(exc, RemoteError) and exc.code == "INCOMPLETE" and full_build is not None:
                # the replica no longer holds blocks it acknowledged (its retention dropped the
                # log): forget what it held and send it the whole log once more
                await astore.call(store.forget_replica, self.name, peer.to_string())
                return await self._replicate(peer, None, await full_build(), record, tick)
            result.error = f"{type(exc).__name__}: {exc}"
            log.info("replica %s failed: %s", peer, result.error)
        return result
