"""Bob: learn what is new in a log and fetch it from whichever storage peers hold it.

1. Find the log's storage peers (DHT provider records, plus peers already known to serve CAS/NS).
2. Fetch the record from up to ``fanout`` of them at once (one round trip), verify each, keep the
   best (:func:`~rlp2p.core.record.best_record`: higher sequence, then later validity); a peer
   whose record is invalid or older than one already accepted is bypassed. An expired record is
   still accepted when no fresh one is offered (more peers are asked first): its history is
   authentic, and the report says the head may be stale (``expired_at``). ``require_fresh``
   refuses it instead, as IPNS does.
3. Same head as last time: done. Otherwise drive the sans-I/O :class:`SyncPlan`: blocks come from
   the local cache first, then from one replica over one pipelined stream, falling over to the
   next replica on any failure (a refused, missing or wrong block, a dead stream).
4. Deliver in order, each batch recorded durably in the inbox before the application sees it,
   so a sync cut off halfway resumes where it stopped.

Delivery to the application is at least once. The reader keeps two cursors per log:
``delivered_seq`` (what is in the inbox) and ``acked_seq`` (what the application confirmed). A
sync first hands ``on_message`` the inbox messages after ``acked_seq`` again, then the new ones. With
``auto_ack=True`` a message is acknowledged once ``on_message`` returns for it (committed in
batches, with the next inbox batch, and at the end, also when the sync fails or is cancelled); if
``on_message`` raises, the cursor stays before that message and the exception propagates, so the
next sync delivers it again. With ``auto_ack=False`` the application calls :meth:`Reader.ack`
itself. A message may be handed over twice, never zero times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime

import trio
from libp2p.peer.id import ID

from rlp2p.core.message import Message
from rlp2p.core.private import Capability, Keyring
from rlp2p.core.record import RecordInfo
from rlp2p.core.replicas import MAX_HINTS, add_hints, fallover_order, hint_budget, judge_records
from rlp2p.core.sync import DEFAULT_WINDOW, Delivery, SyncPlan
from rlp2p.errors import (
    CapabilityError,
    NoReplicas,
    Rlp2pError,
    StaleRecord,
    StoreError,
    SyncError,
    WrongCapability,
)
from rlp2p.limits import Limits
from rlp2p.node.backend import AsyncStore
from rlp2p.node.peers import Peers
from rlp2p.p2p.bitswap import BitswapCas, IpfsSource
from rlp2p.store import ReaderState
from rlp2p.wire.cas import CasClient


log = logging.getLogger(__name__)

#: addresses handed to one replica per pipelined batch
FETCH_BATCH = 256
#: most messages one :meth:`Reader.inbox` call returns
MAX_INBOX_BATCH = 10_000
#: extra local-cache lookups per round, while pages from the cache open more to fetch
CACHE_PASSES = 16


@dataclass
class SyncReport:
    """What one sync did. The messages themselves went to ``on_message`` and are in the inbox
    (:meth:`Reader.inbox`); the report holds counts, so its size does not grow with the log."""

    name: str
    #: messages delivered for the first time (seq ``first_seq``..``last_seq``)
    new_messages: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    #: inbox messages handed to ``on_message`` again (the application had not acknowledged them)
    redelivered: int = 0
    #: the reader's cursors after the sync: in the inbox, and acknowledged by the application
    delivered_seq: int = 0
    acked_seq: int = 0
    record_seq: int = 0
    head: bytes | None = None
    up_to_date: bool = False  # nothing was new
    round_trips: int = 0  # sequential request/answer waits (a pipelined batch is one)
    requests: int = 0
    streams: int = 0  # streams opened (each costs a protocol negotiation)
    bytes_in: int = 0
    bytes_out: int = 0
    pages: int = 0
    blocks: int = 0
    peers_used: list[str] = field(default_factory=list)
    peers_bypassed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: the validity end of the record synced to, when it had already expired at sync time (by the
    #: node's clock); None when it was fresh
    expired_at: datetime | None = None

    @property
    def maybe_stale(self) -> bool:
        """The newest record any peer offered had expired: what was delivered is authentic, but
        newer messages may exist that no storage peer reached has."""
        return self.expired_at is not None


OnMessage = Callable[[Delivery], Awaitable[None] | None]


class _Cursor:
    """The application's cursor during one sync: ``handed`` is the last seq ``on_message``
    returned for, ``committed`` the last one the store holds as acknowledged."""

    __slots__ = ("committed", "handed")

    def __init__(self, acked: int) -> None:
        self.committed = self.handed = acked

    def due(self) -> int | None:
        return self.handed if self.handed > self.committed else None


class Reader:
    def __init__(
        self,
        peers: Peers,
        astore: AsyncStore,
        *,
        limits: Limits,
        clock: Callable[[], datetime],
        fanout: int = 3,
        storage_peers: list[ID] | None = None,
        batch: int = FETCH_BATCH,
        require_fresh: bool = False,
        window: int = DEFAULT_WINDOW,
        ipfs: bool = False,
    ) -> None:
        if fanout < 1 or batch < 1 or window < 1:
            raise ValueError("fanout, batch and window must be at least 1")
        self.peers = peers
        self.astore, self.store = astore, astore.store
        self.limits = limits
        #: the wall clock (time is an input): record expiry
        self.clock = clock
        self.fanout = fanout
        self.storage_peers = storage_peers
        self.batch = batch
        #: refuse expired records (ExpiredRecord from each peer, then NoReplicas), as IPNS does
        self.require_fresh = require_fresh
        #: messages a sync holds in memory at most (plus a page): see rlp2p.core.sync
        self.window = window
        #: IPFS as storage of last resort (off by default: DHT lookups and Bitswap cost a phone
        #: time and traffic): the record from the DHT when no storage peer gives one, and blocks
        #: over Bitswap from the head page's providers when no storage peer has them (docs/ipfs.md)
        self.ipfs = ipfs

    async def find_peers(self, name: str) -> list[ID]:
        if self.storage_peers is not None:
            return list(self.storage_peers)
        peers = dict.fromkeys(await self.peers.log_peers(name))
        for peer in self.peers.known_storage_peers():
            peers.setdefault(peer, None)
        return list(peers)

    async def sync(
        self,
        name: str,
        *,
        on_message: OnMessage | None = None,
        progress: Callable[[int, int], None] | None = None,
        auto_ack: bool = True,
        capability: Capability | str | None = None,
    ) -> SyncReport:
        """Hand the application what it has not acknowledged, then fetch and deliver what is new.

        A private log needs its read ``capability`` (or the capability string in place of
        ``name``); see rlp2p.core.private. A wrong one raises :class:`WrongCapability`; after the
        publisher rotated its key an older one delivers what it reaches, then raises
        :class:`CapabilityOutdated`.

        ``on_message`` gets each message in log order (sync or async). With ``auto_ack`` a
        message is acknowledged once ``on_message`` returns for it; otherwise call :meth:`ack`.
        Without ``on_message`` the inbox is the delivery (read it with :meth:`inbox`), and with
        ``auto_ack`` everything delivered counts as acknowledged. ``progress(done, total)`` is
        called after every round of requests: each missing message counts one step when the walk
        reaches its page and one when it is delivered (:attr:`SyncPlan.progress`), so it moves
        during a long walk too.
        """
        started = time.monotonic()
        if capability is None and Capability.looks_like(name):
            capability = name
        keyring = None
        if capability is not None:
            if isinstance(capability, str):
                capability = Capability.parse(capability, self.limits)
            if name != capability.name and not Capability.looks_like(name):
                raise WrongCapability(f"the capability is for {capability.name}, not {name}")
            name, keyring = capability.name, Keyring.from_capability(capability)
        report = SyncReport(name=name)
        store, astore = self.store, self.astore
        state = await astore.call(store.get_reader_state, name)
        cursor = _Cursor(state.acked_seq)
        try:
            await self._redeliver(name, state, cursor, report, on_message, auto_ack)
            await self._sync_new(name, state, cursor, report, on_message, progress, auto_ack, keyring)
        except BaseException:
            if auto_ack:
                # what on_message returned for stays acknowledged, whatever stopped the sync
                with trio.CancelScope(shield=True):
                    try:
                        await self._commit_ack(name, cursor)
                    except Rlp2pError as exc:  # the original error matters more
                        log.warning("could not record the acknowledgements of %s: %s", name, exc)
            raise
        if auto_ack:
            await self._commit_ack(name, cursor)
        after = await astore.call(store.get_reader_state, name)
        report.delivered_seq, report.acked_seq = after.delivered_seq, after.acked_seq
        report.seconds = time.monotonic() - started
        return report

    async def _sync_new(
        self,
        name: str,
        state: ReaderState,
        cursor: _Cursor,
        report: SyncReport,
        on_message: OnMessage | None,
        progress: Callable[[int, int], None] | None,
        auto_ack: bool,
        keyring: Keyring | None = None,
    ) -> None:
        store, astore = self.store, self.astore
        peers = await self.find_peers(name)
        if not peers and not self.ipfs:
            raise NoReplicas(f"no storage peer for {name} could be found")

        now = self.clock()  # one reading: every record is judged at the same instant
        try:
            best, holders = await self._best_record(name, peers, report, now)
        except NoReplicas:
            if not self.ipfs:
                raise
            best, holders = await self._ipfs_record(name), []
        report.record_seq, report.head = best.sequence, best.head
        if best.is_expired(now):
            report.expired_at = best.validity
        if best.sequence < state.record_seq:
            raise StaleRecord(
                f"every reachable replica of {name} is behind what this reader accepted",
                have=state.record_seq,
                got=best.sequence,
            )
        if best.head == state.head:
            report.up_to_date = True
            return

        plan = SyncPlan(best.head, state.delivered_seq, self.limits, window=self.window, keyring=keyring)
        order = fallover_order(peers, holders)
        try:
            await self._drive(name, plan, order, report, cursor, on_message, progress, auto_ack)
        finally:
            report.pages, report.blocks = plan.pages_fetched, plan.blocks_fetched
        outdated = plan.outdated()
        if outdated is not None:
            # the head is not recorded: a sync with a newer capability walks to the rest
            raise outdated
        await astore.call(store.set_reader_record, name, best.raw, best.sequence, best.head)

    async def _redeliver(
        self,
        name: str,
        state: ReaderState,
        cursor: _Cursor,
        report: SyncReport,
        on_message: OnMessage | None,
        auto_ack: bool,
    ) -> None:
        """Hand ``on_message`` the inbox messages after ``acked_seq`` again, in bounded batches."""
        if on_message is None:
            if auto_ack:
                cursor.handed = state.delivered_seq  # the inbox is the delivery
            return
        after = state.acked_seq
        while after < state.delivered_seq:
            batch = await self.inbox(name, after=after, limit=min(self.batch, state.delivered_seq - after))
            if not batch or batch[0].seq != after + 1:
                raise StoreError(f"the inbox of {name} lacks seq {after + 1} (delivered up to {state.delivered_seq})")
            for delivery in batch:
                await _call(on_message, delivery)
                report.redelivered += 1
                if auto_ack:
                    cursor.handed = delivery.seq
            after = batch[-1].seq
            if auto_ack:
                await self._commit_ack(name, cursor)

    async def _commit_ack(self, name: str, cursor: _Cursor) -> None:
        due = cursor.due()
        if due is not None:
            cursor.committed = await self.astore.call(self.store.ack, name, due)

    async def ack(self, name: str, seq: int) -> int:
        """The application has every message of ``name`` up to ``seq`` (for ``auto_ack=False``).

        Monotonic: an older seq changes nothing. Returns the acknowledged seq now held. Raises
        :class:`~rlp2p.errors.StoreError` for a seq beyond what was delivered."""
        return await self.astore.call(self.store.ack, name, seq)

    async def state(self, name: str) -> ReaderState:
        """How far this reader got with ``name``: record, ``delivered_seq``, ``acked_seq``."""
        return await self.astore.call(self.store.get_reader_state, name)

    async def inbox(self, name: str, *, after: int = 0, limit: int = 1000) -> list[Delivery]:
        """The delivered messages of ``name`` with seq > ``after``, oldest first, at most ``limit``
        (1..``MAX_INBOX_BATCH``). Page through a long inbox with ``after=batch[-1].seq``."""
        if not 1 <= limit <= MAX_INBOX_BATCH:
            raise ValueError(f"limit must be in 1..{MAX_INBOX_BATCH}, not {limit}")
        rows = await self.astore.call(self.store.delivered, name, after, limit)
        limits = self.limits
        return [Delivery(seq, Message.decode(data, limits), mid, data) for seq, mid, data in rows]

    async def follow(self, names: list[str], *, on_message: OnMessage | None = None, **kwargs: object) -> None:
        """Sync ``names``, then again on each announced newer record, until cancelled
        (:class:`rlp2p.node.follow.Follower`: ``poll_interval``, ``on_report``, ``task_status``)."""
        from rlp2p.node.follow import Follower

        task_status = kwargs.pop("task_status", trio.TASK_STATUS_IGNORED)
        await Follower(self, names, on_message=on_message, **kwargs).run(task_status=task_status)  # type: ignore[arg-type]

    async def _best_record(
        self, name: str, peers: list[ID], report: SyncReport, now: datetime
    ) -> tuple[RecordInfo, list[ID]]:
        """Ask up to ``fanout`` peers at once; more only if none of them answers with a fresh record.

        Returns the best record (ties go to the first peer in ``peers``) and the peers whose
        record names the same head, in the order of ``peers``.
        """
        found: dict[ID, RecordInfo] = {}
        allow_expired = not self.require_fresh
        for start in range(0, len(peers), self.fanout):
            batch = peers[start : start + self.fanout]

            async def ask(peer: ID) -> None:
                try:
                    async with self.peers.ns(peer) as ns:
                        try:
                            found[peer] = await ns.fetch(name, now=now, allow_expired=allow_expired)
                        finally:
                            report.streams += ns.rpc.new_streams
                            report.bytes_in += ns.rpc.bytes_in
                            report.bytes_out += ns.rpc.bytes_out
                            report.requests += 1
                except Rlp2pError as exc:
                    report.peers_bypassed[peer.to_string()] = f"record: {type(exc).__name__}: {exc}"

            async with trio.open_nursery() as nursery:
                for peer in batch:
                    nursery.start_soon(ask, peer)
            report.round_trips += 1
            # an expired record only if no peer has a fresh one: ask the next batch first
            if any(not info.is_expired(now) for info in found.values()):
                break
        if not found:
            raise NoReplicas(f"no storage peer gave a valid record for {name}: {report.peers_bypassed}")
        # in the caller's order, so a given list of storage peers is tried as given
        judged = judge_records(found, peers)
        for peer, why in judged.older.items():
            report.peers_bypassed[peer.to_string()] = f"record: {why}"
        return judged.best, judged.holders

    async def _drive(
        self,
        name: str,
        plan: SyncPlan,
        peers: list[ID],
        report: SyncReport,
        cursor: _Cursor,
        on_message: OnMessage | None,
        progress: Callable[[int, int], None] | None,
        auto_ack: bool,
    ) -> None:
        store, astore = self.store, self.astore
        async with AsyncExitStack() as stack:
            current: CasClient | BitswapCas | None = None
            ipfs_tried = False
            current_peer: ID | None = None
            remaining = list(peers)
            hinted = False
            fetched: list[tuple[bytes, bytes]] = []  # message blocks fetched this round
            max_rounds = 4 * (self.limits.max_pages_walk + 1)
            for _ in range(max_rounds):
                if plan.done:
                    break
                wants = plan.wants(limit=self.batch)
                if not wants:
                    raise SyncError(f"sync of {name} stalled with nothing left to fetch")
                missing, hits = await self._from_cache(plan, wants)
                # pages from the cache (a replay, a resumed walk) make more wanted at once: fill
                # this round's batch before going to the network
                for _ in range(CACHE_PASSES):
                    if not hits or len(missing) >= self.batch:
                        break
                    more = plan.wants(limit=self.batch - len(missing))
                    if not more:
                        break
                    more_missing, hits = await self._from_cache(plan, more)
                    missing += more_missing
                if plan.cas and not hinted:
                    # the head page names the CAS peers that hold the log: fall-overs of last resort
                    hinted = True
                    # (a hint is the page writer's word: at most MAX_HINTS of them are tried)
                    add_hints(remaining, self.peers.peers_from_hints(hint_budget(plan.cas)), peers)
                if missing:
                    while current is None:
                        if not remaining and not ipfs_tried and self.ipfs and report.head is not None:
                            ipfs_tried = True  # storage of last resort: the head's providers
                            source = await self._ipfs_source().cas(report.head)
                            if source is not None:
                                current_peer, current = source
                                report.peers_used.append(f"ipfs:{current_peer.to_string()}")
                                break
                        if not remaining:
                            for address in missing:
                                plan.retry(address)
                            raise SyncError(
                                f"no replica could serve the rest of {name}: {report.peers_bypassed}"
                            )
                        current_peer = remaining.pop(0)
                        try:
                            current = await stack.enter_async_context(self.peers.cas(current_peer))
                            report.streams += current.rpc.new_streams
                            report.peers_used.append(current_peer.to_string())
                        except Rlp2pError as exc:
                            report.peers_bypassed[current_peer.to_string()] = f"cas: {exc}"
                    assert current_peer is not None
                    failed = await self._fetch(plan, current, missing, report, fetched)
                    if failed:
                        report.peers_bypassed[current_peer.to_string()] = failed
                        log.info("bypassing %s for %s: %s", current_peer, name, failed)
                        current = None  # its stream closes with the stack; next replica
                ready = plan.ready()
                # a fetched block that waits for an older message is cached, so a sync cut off
                # now does not fetch it again; one delivered already is not (the inbox has it)
                waiting = [item for item in fetched if plan.holds(item[0])]
                fetched.clear()
                if waiting:
                    await astore.call(store.put_blocks, waiting)
                if ready:
                    items = [(d.seq, d.id, d.data) for d in ready]
                    if auto_ack and on_message is None:
                        cursor.handed = ready[-1].seq  # the inbox is the delivery
                    # the previous batch's acknowledgements ride in this batch's transaction
                    ack = cursor.due() if auto_ack else None
                    await astore.call(store.deliver, name, items, ack)
                    if ack is not None:
                        cursor.committed = ack
                    if report.first_seq is None:
                        report.first_seq = ready[0].seq
                    report.last_seq = ready[-1].seq
                    report.new_messages += len(ready)
                    if on_message is not None:
                        for delivery in ready:
                            await _call(on_message, delivery)
                            if auto_ack:
                                cursor.handed = delivery.seq
                if progress is not None and plan.head_seq is not None:
                    # every round, not only when something was delivered: the walk back from the
                    # head page moves it too (see SyncPlan.progress)
                    progress(*plan.progress)
            if not plan.done:
                raise SyncError(f"sync of {name} did not finish within {max_rounds} rounds")

    def _ipfs_source(self) -> IpfsSource:
        network = self.peers.network
        return IpfsSource(network.host, network.discovery, self.peers.timeout)

    async def _ipfs_record(self, name: str) -> RecordInfo:
        info = await self._ipfs_source().record(name, allow_expired=not self.require_fresh)
        if info is None:
            raise NoReplicas(f"no storage peer and no DHT record for {name}")
        return info

    async def _from_cache(self, plan: SyncPlan, wants: list[bytes]) -> tuple[list[bytes], int]:
        """Hand the plan what the local store holds of ``wants``: (what is still missing, hits)."""
        cached = await self.astore.call(self.store.get_blocks, wants)
        missing = []
        for address in wants:
            data = cached.get(address)
            if data is None:
                missing.append(address)
                continue
            try:
                plan.receive(address, data)
            except (Rlp2pError, ValueError):
                missing.append(address)  # a bad cached copy: fetch it again
        return missing, len(wants) - len(missing)

    async def _fetch(
        self,
        plan: SyncPlan,
        cas: CasClient | BitswapCas,
        addresses: list[bytes],
        report: SyncReport,
        fetched: list[tuple[bytes, bytes]],
    ) -> str:
        """Fetch ``addresses`` from one replica; returns why it failed ("" if it did not)."""
        rpc = cas.rpc
        before = (rpc.bytes_in, rpc.bytes_out, rpc.new_streams)
        try:
            results = await cas.get_many(addresses, verify=False)  # plan.receive hashes each block
        except Rlp2pError as exc:
            for address in addresses:
                plan.retry(address)
            return f"cas: {type(exc).__name__}: {exc}"
        finally:
            report.bytes_in += rpc.bytes_in - before[0]
            report.bytes_out += rpc.bytes_out - before[1]
            report.streams += rpc.new_streams - before[2]
            report.requests += len(addresses)
        report.round_trips += 1
        failure = ""
        good: list[tuple[bytes, bytes]] = []
        for address, result in results.items():
            if isinstance(result, bytes):
                try:
                    page = plan.is_page(address)
                    if plan.receive(address, result):  # False: not needed, so not hashed: not kept
                        (good if page else fetched).append((address, result))
                    continue
                except CapabilityError:
                    raise  # the block matched its address: another replica has the same bytes
                except Rlp2pError as exc:
                    failure = failure or f"bad block: {type(exc).__name__}: {exc}"
            else:
                failure = failure or f"{type(result).__name__}: {result}"
            plan.retry(address)
        if good:
            # pages are cached: a replay takes them again from here, and a sync cut off here
            # resumes without fetching them again (message blocks: see _drive)
            await self.astore.call(self.store.put_blocks, good)
        return failure


async def _call(on_message: OnMessage, delivery: Delivery) -> None:
    # a cancelled sync stops handing over at once, also to a callback that never awaits
    await trio.lowlevel.checkpoint_if_cancelled()
    outcome = on_message(delivery)
    if outcome is not None:
        await outcome


__all__ = ["MAX_HINTS", "MAX_INBOX_BATCH", "Reader", "SyncReport"]
