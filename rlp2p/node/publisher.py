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

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from rlp2p.core.keys import log_name
from rlp2p.core.message import Message
from rlp2p.core.page import BuiltLog, LogEntry, LogMode, build_pages
from rlp2p.core.placement import log_key, order_candidates
from rlp2p.core.private import SEAL_OVERHEAD, SEAL_VERSION, Capability, Keyring, PrivateState, new_seed, seal_entries
from rlp2p.core.publish import (
    Holding,
    build_start,
    holding_after,
    lacking,
    next_sequence,
    partial_holding,
    usable,
)
from rlp2p.core.replicas import next_batch
from rlp2p.core.replicas import write_quorum as write_quorum_of
from rlp2p.core.record import DEFAULT_TTL, DEFAULT_VALIDITY, create_record, verify_record
from rlp2p.errors import PublishError, RemoteError, Rlp2pError
from rlp2p.limits import Limits
from rlp2p.node.backend import AsyncStore
from rlp2p.node.peers import Peers
from rlp2p.store import PublishState


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
        peers: Peers,
        astore: AsyncStore,
        key_pair: KeyPair,
        *,
        limits: Limits,
        clock: Callable[[], datetime],
        mode: LogMode = DEFAULT_MODE,
        replicas: int = 3,
        write_quorum: int | None = None,
        replica_peers: Sequence[ID] | None = None,
        group_id: bytes | None = None,
        validity: timedelta = DEFAULT_VALIDITY,
        ttl: timedelta = DEFAULT_TTL,
        private: bool | None = None,
        record_v1: bool = False,
    ) -> None:
        quorum = write_quorum_of(replicas, write_quorum)  # ValueError for an impossible count
        self.peers = peers
        self.astore, self.store = astore, astore.store
        self.limits = limits
        #: the wall clock (time is an input): message timestamps, record validity
        self.clock = clock
        self.key_pair = key_pair
        self.name = log_name(key_pair.public_key)
        self.mode = mode
        self.replicas = replicas
        self.write_quorum = quorum
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
        # private logs (rlp2p.core.private): True makes a new log private, False insists on a
        # public one, None takes what the store recorded when the log was created
        self._private_wanted = private
        self._private: PrivateState | None = None
        self._keyring: Keyring | None = None
        self._private_loaded = False

    # --- private logs ----------------------------------------------------------------------------

    async def private_state(self) -> PrivateState | None:
        """The log's private state (None for a public log), recorded at its creation."""
        if self._private_loaded:
            return self._private
        store, astore = self.store, self.astore
        state = await astore.call(store.private_state, self.name)
        if state is None and self._private_wanted:
            if await self.length() > 0:
                raise ValueError(f"{self.name} was created public: a log's mode is chosen at creation")
            state = PrivateState(new_seed())
            await astore.call(store.set_private_state, self.name, state)
        elif state is not None and self._private_wanted is False:
            raise ValueError(f"{self.name} was created private")
        self._set_private(state)
        return state

    def _set_private(self, state: PrivateState | None) -> None:
        self._private, self._private_loaded = state, True
        self._keyring = None if state is None else state.keyring(self.name)

    async def capability(self) -> Capability:
        """The read capability of the current epoch (it reads every epoch up to it)."""
        await self.private_state()
        if self._keyring is None:
            raise ValueError(f"{self.name} is a public log: it has no capability")
        return self._keyring.capability()

    async def rotate(self) -> Capability:
        """Start a new epoch: messages appended from now on are sealed under a fresh secret that
        earlier capabilities cannot derive. Returns the new capability."""
        state = await self.private_state()
        if state is None:
            raise ValueError(f"{self.name} is a public log: there is no key to rotate")
        state = state.rotated(await self.length())
        await self.astore.call(self.store.set_private_state, self.name, state)
        self._set_private(state)
        assert self._keyring is not None
        return self._keyring.capability()

    # --- the local log -------------------------------------------------------------------------

    async def append(self, bodies: Iterable[bytes], *, timestamp: int | None = None) -> list[int]:
        """Append messages to the local log (durably); returns their seqs. Nothing is sent."""
        ts = int(self.clock().timestamp()) if timestamp is None else timestamp
        datas = [Message(self.group_id, ts, body).encode() for body in bodies]
        limit = self.limits.max_message
        if await self.private_state() is not None:
            limit -= SEAL_OVERHEAD  # the block is the sealed message
        for data in datas:
            if len(data) > limit:
                raise ValueError(f"a message of {len(data)} bytes is over the limit of {limit}")
        return await self.astore.call(self.store.append_messages, self.name, datas)

    async def length(self) -> int:
        return await self.astore.call(self.store.log_length, self.name)

    # --- publishing ------------------------------------------------------------------------------

    async def candidates(self) -> list[ID]:
        """Storage peers to replicate to, nearest to the log's key first."""
        if self.replica_peers is not None:
            return list(self.replica_peers)
        peers = {p.to_bytes(): p for p in await self.peers.storage_candidates(log_key(self.name))}
        # peers already holding the log come too: they have most blocks
        for peer in await self.peers.log_peers(self.name):
            peers.setdefault(peer.to_bytes(), peer)
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
        store, astore = self.store, self.astore
        length = await astore.call(store.log_length, self.name)
        if length == 0:
            raise PublishError("the log is empty: append messages before publishing")
        candidates = await self.candidates()
        if len(candidates) < self.write_quorum:
            raise PublishError(
                f"found {len(candidates)} storage peers, need {self.write_quorum} for the write quorum"
            )
        # the head page names the intended replicas (the spec's CAS multiaddr), as a hint for readers
        hint = self.peers.hints_for(candidates[: self.replicas])
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
                self.key_pair, head, sequence, validity=self.validity, ttl=self.ttl, now=self.clock(),
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
            PublishState(record_seq=sequence, published_length=length, reserved_seq=sequence),
        )
        # the replicas that took the record put it into the DHT themselves; ours is a second
        # copy, so nobody waits for it (it was most of a publish's time)
        self.peers.published(verify_record(self.name, record, now=self.clock()))
        log.info("published %s: %d messages, seq %d, on %s", self.name, length, sequence, report.stored_on)
        return report

    async def assume_held(self, peer: ID, built: BuiltLog) -> None:
        """Remember that ``peer`` holds every block of ``built`` (a whole build of this log, in this
        mode): for set-ups that put the blocks there themselves. The next publish sends it only
        what changed since."""
        holding = holding_after(built, self.mode)
        await self.astore.call(self.store.set_replica_holding, self.name, peer.to_string(), holding)

    async def _note_progress(self, peer: ID, have: Holding | None, built: BuiltLog, pages: list[int]) -> Holding | None:
        """After whole pages of a long upload went through: remember them, so an upload cut short
        (a crash, a lost link) resumes after them rather than from the replica's last record."""
        partial = partial_holding(built, self.mode, max(pages)) if pages else None
        if partial is None or (have is not None and partial.length <= have.length):
            return have
        await self.astore.call(self.store.set_replica_holding, self.name, peer.to_string(), partial)
        return partial

    async def _holding(self, peer: ID, length: int) -> Holding | None:
        have = await self.astore.call(self.store.replica_holding, self.name, peer.to_string())
        return usable(have, self.mode, length)

    async def _build(self, length: int, page: int, tail: bytes | None, hint: Sequence[bytes]) -> _Build:
        """Read seq page*P+1..length from the local log and lay out those pages."""
        after = page * (self.mode.page_size or 1)
        rows = await self.astore.call(self.store.log_entries, self.name, after, length - after)
        limits = self.limits
        private = await self.private_state()
        keyring = self._keyring

        def lay_out() -> _Build:
            entries = [LogEntry(seq=seq, data=data) for seq, data in rows]
            sealed = 0
            if private is not None and keyring is not None:
                entries, sealed = seal_entries(entries, private, keyring), SEAL_VERSION
            built = build_pages(entries, self.mode, hint, first_page=page, tail=tail, limits=limits, sealed=sealed)
            return _Build(built, entries)

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
            batch, pending = next_batch(pending, len(report.stored_on), self.replicas)
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
        store, astore = self.store, self.astore
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
                async with self.peers.cas(peer) as cas:
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
            async with self.peers.ns(peer) as ns:
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
        except Rlp2pError as exc:
            if isinstance(exc, RemoteError) and exc.code == "INCOMPLETE" and full_build is not None:
                # the replica no longer holds blocks it acknowledged (its retention dropped the
                # log): forget what it held and send it the whole log once more
                await astore.call(store.forget_replica, self.name, peer.to_string())
                return await self._replicate(peer, None, await full_build(), record, tick)
            result.error = f"{type(exc).__name__}: {exc}"
            log.info("replica %s failed: %s", peer, result.error)
        return result
