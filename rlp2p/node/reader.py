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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import trio
from libp2p.peer.id import ID

from rlp2p.core.message import Message
from rlp2p.core.poll import LogPoll, settles
from rlp2p.core.private import Capability, Keyring
from rlp2p.core.record import RecordInfo, verify_record
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

if TYPE_CHECKING:
    from rlp2p.node.polling import PollReport


log = logging.getLogger(__name__)

#: Gets kept in flight to one replica: twice what a server answers as one batch
#: (``Limits.max_pipeline``), so the next batch is asked for while the last one is answered
FETCH_BATCH = 512
#: most messages one :meth:`Reader.inbox` call returns
MAX_INBOX_BATCH = 10_000
#: ready messages recorded in the inbox in one transaction (held in memory until then, beside
#: the plan's window: a sync holds at most twice ``Reader.window`` messages)
DELIVER_BATCH = 2048
#: pages of the walk missing from the local cache in a row after which it is not asked for more
WALK_MISSES = 2
#: walked pages cached in one transaction (a sync cut off fetches at most these again)
PAGE_CACHE_BATCH = 16
#: blocks handed to the next syncs in memory (Reader.offer_block) and not taken yet, at most
MAX_OFFERED = 16
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
    #: ``(first, last)``: seqs this reader never got that the publisher has truncated away (the
    #: log now starts at ``last + 1``); None when nothing it lacked is gone. Not an error.
    gone: tuple[int, int] | None = None

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


class _CacheLook:
    """What a sync still looks for in the local cache (see _from_cache)."""

    __slots__ = ("blocks", "walk_misses", "offered")

    def __init__(self) -> None:
        self.blocks = True
        self.walk_misses = 0  # pages of the walk not found in a row
        self.offered: list[tuple[bytes, bytes]] = []  # offered blocks the plan took, to cache

    def walk(self) -> bool:
        return self.walk_misses < WALK_MISSES


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
        conditional: bool = True,
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
        #: messages the sync plan holds at most (plus a page; see rlp2p.core.sync), and the most
        #: ready ones waiting for their inbox transaction
        self.window = window
        #: a reader holding a fresh record asks with NS Poll ("anything above my sequence?")
        #: instead of fetching the whole record from each peer (False: always Fetch)
        self.conditional = conditional
        #: IPFS as storage of last resort (off by default: DHT lookups and Bitswap cost a phone
        #: time and traffic): the record from the DHT when no storage peer gives one, and blocks
        #: over Bitswap from the head page's providers when no storage peer has them (docs/ipfs.md)
        self.ipfs = ipfs
        # blocks offered for the next sync (offer_block), taken from memory before the store
        self._offered: dict[bytes, bytes] = {}

    def offer_block(self, address: bytes, data: bytes) -> None:
        """Hand the next sync that wants ``address`` its bytes in memory, as if cached: a page
        a follower rebuilt (rlp2p/node/follow.py) is then neither written nor read before its
        messages are delivered; the sync caches it with the pages it walked. Checked like a
        cached block (a wrong one is fetched); at most ``MAX_OFFERED`` wait."""
        if len(self._offered) >= MAX_OFFERED:
            self._offered.clear()
        self._offered[address] = data

    async def deliver_pushed(
        self, record: RecordInfo, after: ReaderState, *, on_message: OnMessage | None = None
    ) -> SyncReport | None:
        """Deliver a pushed ``record`` (verified) whose head page was offered (:meth:`offer_block`)
        without a sync, when that page is the whole next state of a reader that is at ``after``
        (the state its last sync ended on: head, delivered and acknowledged seq):
        :func:`rlp2p.core.pushed.pushed_deliveries`. The messages, the record and the page go
        to the store in one transaction (which checks ``after`` is still the state), then to
        ``on_message``, acknowledged as :meth:`sync` does (``auto_ack``; a cancellation between
        the two loses nothing: the next sync hands them over again). None when it does not
        apply and nothing was done: the caller syncs."""
        from rlp2p.core.pushed import pushed_deliveries

        name = record.name
        page = self._offered.get(record.head)
        if page is None or after.head is None or after.acked_seq != after.delivered_seq or record.sequence <= after.record_seq:
            return None
        ready = pushed_deliveries(record.head, page, after.delivered_seq, self.limits)
        if ready is None:
            return None
        items = [(d.seq, d.id, d.data) for d in ready]
        store = self.store
        if not await self.astore.deliver(
            store.deliver_head, name, record.raw, record.sequence, record.head, page, items, after_head=after.head,
            messages=len(items),
        ):
            return None
        self._offered.pop(record.head, None)
        last = ready[-1].seq
        report = SyncReport(name=name, new_messages=len(ready), first_seq=ready[0].seq, last_seq=last)
        report.record_seq, report.head, report.delivered_seq = record.sequence, record.head, last
        report.pages = 1  # (taken from memory, as a sync counts an offered page)
        cursor = _Cursor(after.acked_seq)
        async with self._acknowledging(name, cursor, True):
            if on_message is None:
                cursor.handed = last  # the inbox is the delivery
            else:
                for delivery in ready:
                    await _call(on_message, delivery)
                    cursor.handed = delivery.seq
        report.acked_seq = cursor.committed
        return report

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
        polled: LogPoll | None = None,
        announced: RecordInfo | None = None,
        via: Sequence[ID] = (),
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
        during a long walk too. ``polled`` (from :meth:`poll`) stands in for asking the peers
        for the record again.

        ``announced`` (a record already verified, as :mod:`rlp2p.node.follow` hands in) with
        ``via`` (replicas, e.g. ones with an open stream) skips the record fan-out: the walk
        starts at that record's head and asks only ``via`` (one round trip for a small change);
        a record no newer than the one held, or an empty ``via``, makes an ordinary sync.
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
        async with self._acknowledging(name, cursor, auto_ack):
            await self._redeliver(name, state, cursor, report, on_message, auto_ack)
            await self._sync_new(
                name, state, cursor, report, on_message, progress, auto_ack, keyring, announced, list(via), polled
            )
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
        announced: RecordInfo | None = None,
        via: list[ID] | None = None,
        polled: LogPoll | None = None,
    ) -> None:
        store, astore = self.store, self.astore
        now = self.clock()  # one reading: every record is judged at the same instant
        peers: list[ID] | None = None
        # a reader holding a fresh record asks only whether there is newer (NS Poll, ~50 B a
        # peer instead of the record); an expired one goes by Fetch, which looks further
        if announced is not None and via and announced.name == name and announced.sequence > state.record_seq:
            peers, best, holders = via, announced, via  # verified by the caller; no fan-out
        else:
            # (a signature check: not on an announced record's path)
            held_fresh = _fresh(name, state, now, self.limits)
            if polled is None and self.conditional and held_fresh:
                peers = await self.find_peers(name)
                if peers:
                    polled = await self._poll_one(name, peers, report, now)
                elif not self.ipfs:
                    raise NoReplicas(f"no storage peer for {name} could be found")
            if polled is not None and settles(polled, now) and (polled.best is not None or held_fresh):
                peers = list(polled.peers)
                for peer in polled.behind + polled.older:
                    report.peers_bypassed[peer.to_string()] = "record: older (poll: nothing newer)"
                if polled.best is None:  # some peer holds just what we hold, none newer
                    report.record_seq, report.head, report.up_to_date = state.record_seq, state.head, True
                    return
                best, holders = polled.best, polled.holders
            else:
                if peers is None:
                    peers = await self.find_peers(name)
                if not peers and not self.ipfs:
                    raise NoReplicas(f"no storage peer for {name} could be found")
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
            # the head page we hold is the base of a page delta for the new head page (and for
            # the older page it became when it filled): rlp2p.core.pagedelta
            await self._drive(name, plan, order, report, cursor, on_message, progress, auto_ack, state.head)
        finally:
            report.pages, report.blocks = plan.pages_fetched, plan.blocks_fetched
            report.gone = plan.gone
        if plan.gone is not None:
            log.info("%s: seqs %d..%d were truncated away by the publisher", name, *plan.gone)
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
            # (the inbox skips the seqs a truncation took away before they were delivered)
            if not batch:
                raise StoreError(f"the inbox of {name} lacks seq {after + 1} (delivered up to {state.delivered_seq})")
            for delivery in batch:
                await _call(on_message, delivery)
                report.redelivered += 1
                if auto_ack:
                    cursor.handed = delivery.seq
            after = batch[-1].seq
            if auto_ack:
                await self._commit_ack(name, cursor)

    @asynccontextmanager
    async def _acknowledging(self, name: str, cursor: _Cursor, auto_ack: bool) -> AsyncIterator[None]:
        """With ``auto_ack``, commit what ``on_message`` returned for (``cursor``) when the block
        ends, also when it fails or is cancelled (shielded): it stays acknowledged."""
        try:
            yield
        except BaseException:
            if auto_ack:
                with trio.CancelScope(shield=True):
                    try:
                        await self._commit_ack(name, cursor)
                    except Rlp2pError as exc:  # the original error matters more
                        log.warning("could not record the acknowledgements of %s: %s", name, exc)
            raise
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

    async def poll(self, names: list[str], report: PollReport | None = None) -> dict[str, LogPoll]:
        """Which of ``names`` changed since this reader's last sync of each, in one round trip per
        storage peer: every log's first ``fanout`` peers are asked at once with an NS Poll
        (:mod:`rlp2p.core.poll`, :mod:`rlp2p.wire.ns_poll`), a peer without it with Fetch.
        ``LogPoll.changed`` and ``best`` give the newest record offered; ``behind`` the peers that
        said "nothing newer" while another had newer (lagging or withholding). The record is asked
        of one peer per log, the sequence only of the others; a higher sequence said is followed
        with one more ask of that peer (``claims``: any left unsettled, a sync goes by Fetch). ``report`` (a
        :class:`rlp2p.node.polling.PollReport`) gets the costs."""
        from rlp2p.node.polling import poll_logs

        return await poll_logs(self, names, report)

    async def sync_many(
        self, names: list[str], *, on_message: OnMessage | None = None, auto_ack: bool = True
    ) -> dict[str, SyncReport]:
        """Sync several logs: one :meth:`poll` for all, then only the logs that changed go to the
        network (the others only hand over what the application has not acknowledged)."""
        polls = await self.poll(names)
        reports: dict[str, SyncReport] = {}
        for name, polled in polls.items():
            reports[name] = await self.sync(name, on_message=on_message, auto_ack=auto_ack, polled=polled)
        return reports

    async def follow(self, names: list[str], *, on_message: OnMessage | None = None, **kwargs: object) -> None:
        """Sync ``names``, then again on each announced newer record, until cancelled
        (:class:`rlp2p.node.follow.Follower`: ``poll_interval``, ``on_report``, ``task_status``,
        ``mesh=False`` to have a storage peer push records instead of joining gossipsub meshes;
        use a ``Follower`` itself for ``pause()``/``resume()``)."""
        from rlp2p.node.follow import Follower

        task_status = kwargs.pop("task_status", trio.TASK_STATUS_IGNORED)
        await Follower(self, names, on_message=on_message, **kwargs).run(task_status=task_status)  # type: ignore[arg-type]

    async def _poll_one(self, name: str, peers: list[ID], report: SyncReport, now: datetime) -> LogPoll:
        from rlp2p.node.polling import PollReport, poll_logs

        costs = PollReport()
        polled = (await poll_logs(self, [name], costs, known_peers={name: peers}, now=now))[name]
        report.round_trips += costs.rounds
        report.requests += costs.requests
        report.streams += costs.streams
        report.bytes_in += costs.bytes_in
        report.bytes_out += costs.bytes_out
        return polled

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
        base: bytes | None = None,
    ) -> None:
        """Stream Gets to one replica at a time: up to ``batch`` in flight, refilled from the
        plan as answers come (a refill waits for half the window to be free, so a write
        carries many Gets), so the pipeline drains only where the plan must wait (a page of the
        walk). A round trip is counted for each send into an empty pipeline and each page walked."""
        store, astore = self.store, self.astore
        async with AsyncExitStack() as stack:
            current: CasClient | BitswapCas | None = None
            ipfs_tried = False
            current_peer: ID | None = None
            counted = (0, 0, 0)  # current's bytes in, out and streams already in the report
            remaining = list(peers)
            hinted = False
            bases: dict[bytes, bytes] | None = None  # the page deltas' base, read at the first fetch
            fetched: list[tuple[bytes, bytes]] = []  # message blocks fetched this round
            pending: list[Delivery] = []  # ready, recorded in the inbox in batches
            refill_at = max(1, self.batch // 2)  # free slots that make a refill worth a write
            pages: list[tuple[bytes, bytes]] = []  # walked pages not cached yet
            look = _CacheLook()

            def account() -> None:
                nonlocal counted
                if current is not None:
                    rpc = current.rpc
                    report.bytes_in += rpc.bytes_in - counted[0]
                    report.bytes_out += rpc.bytes_out - counted[1]
                    report.streams += rpc.new_streams - counted[2]
                    counted = (rpc.bytes_in, rpc.bytes_out, rpc.new_streams)

            def drop(why: str) -> None:
                nonlocal current
                assert current is not None and current_peer is not None
                account()
                for address in current.abandon():
                    plan.retry(address)
                report.peers_bypassed[current_peer.to_string()] = why
                log.info("bypassing %s for %s: %s", current_peer, name, why)
                current = None  # its stream closes with the stack; next replica

            async def flush() -> None:
                if not pending:
                    return
                items = [(d.seq, d.id, d.data) for d in pending]
                if auto_ack and on_message is None:
                    cursor.handed = pending[-1].seq  # the inbox is the delivery
                # the previous batch's acknowledgements ride in this batch's transaction
                ack = cursor.due() if auto_ack else None
                # the first delivery past a truncation records the gap in the same transaction
                gone_to = plan.gone[1] if plan.gone and report.first_seq is None else None
                await astore.deliver(store.deliver, name, items, ack, gone_to=gone_to, messages=len(items))
                if ack is not None:
                    cursor.committed = ack
                if report.first_seq is None:
                    report.first_seq = pending[0].seq
                report.last_seq = pending[-1].seq
                report.new_messages += len(pending)
                batch = list(pending)
                pending.clear()
                if on_message is not None:
                    for delivery in batch:
                        await _call(on_message, delivery)
                        if auto_ack:
                            cursor.handed = delivery.seq

            async def cache_pages() -> None:
                # pages are cached: a replay takes them again from there, and a sync cut off
                # resumes without fetching them again (message blocks: see below)
                await astore.call(store.put_blocks, pages)
                pages.clear()

            try:
                rounds = 0
                while not plan.done:
                    # each round takes at least one answer or one cached block, or raises
                    rounds += 1
                    if rounds > _round_bound(plan, self.limits.max_pages_walk, len(peers) + MAX_HINTS):
                        break
                    in_flight = current.in_flight if current is not None else 0
                    missing: list[bytes] = []
                    if in_flight <= self.batch - refill_at or plan.walk_page is not None:
                        room = self.batch - in_flight
                        wants = plan.wants(limit=room)
                        if pages and (plan.walk_page is None or len(pages) >= PAGE_CACHE_BATCH):
                            await cache_pages()  # before a replay looks for them
                        if not wants and not in_flight:
                            raise SyncError(f"sync of {name} stalled with nothing left to fetch")
                        missing, hits = await self._from_cache(plan, wants, look) if wants else ([], 0)
                        # pages from the cache (a replay, a resumed walk) make more wanted at once:
                        # fill this round's batch before going to the network
                        for _ in range(CACHE_PASSES):
                            if not hits or len(missing) >= room:
                                break
                            more = plan.wants(limit=room - len(missing))
                            if not more:
                                break
                            more_missing, hits = await self._from_cache(plan, more, look)
                            missing += more_missing
                        pages += look.offered  # offered blocks are not in the store yet
                        look.offered.clear()
                    if missing and plan.cas and not hinted:
                        # the head page names the CAS peers that hold the log: fall-overs of last resort
                        # (parsed only once something must be fetched: not for a pushed message)
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
                                    counted = (0, 0, 0)
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
                                current.bases.clear()  # a kept stream may hold another sync's
                                if bases is None:  # read once something must be fetched
                                    bases = await self.astore.call(self.store.get_blocks, [base]) if base else {}
                                current.offer_bases(bases)
                                counted = (current.rpc.bytes_in, current.rpc.bytes_out, 0)
                                report.peers_used.append(current_peer.to_string())
                            except Rlp2pError as exc:
                                report.peers_bypassed[current_peer.to_string()] = f"cas: {exc}"
                        if not current.in_flight or plan.walk_page in missing:
                            report.round_trips += 1  # the plan waits for this answer
                        report.requests += len(missing)
                        try:
                            if isinstance(current, CasClient):
                                await current.send_gets(missing, pages={a for a in missing if plan.is_page(a)})
                            else:
                                await current.send_gets(missing)
                        except Rlp2pError as exc:
                            drop(f"cas: {type(exc).__name__}: {exc}")
                    if current is not None and current.in_flight:
                        try:
                            results = await current.receive_gets(verify=False)  # plan.receive hashes each block
                        except Rlp2pError as exc:
                            drop(f"cas: {type(exc).__name__}: {exc}")
                        else:
                            failed = self._take(plan, results, fetched, pages)
                            account()
                            if failed:
                                drop(failed)
                    pending.extend(plan.ready())
                    # a fetched block that waits for an older message is cached, so a sync cut off
                    # now does not fetch it again; one delivered already is not (the inbox has it)
                    waiting = [item for item in fetched if plan.holds(item[0])]
                    fetched.clear()
                    if waiting:
                        await astore.call(store.put_blocks, waiting)
                    idle = current is None or not current.in_flight
                    if pending and (len(pending) >= min(DELIVER_BATCH, self.window) or idle or plan.done):
                        await flush()
                    if progress is not None and plan.head_seq is not None:
                        # every round, not only when something was delivered: the walk back from the
                        # head page moves it too (see SyncPlan.progress)
                        progress(*plan.progress)
                await flush()
                if not plan.done:
                    raise SyncError(f"sync of {name} did not finish within {rounds - 1} rounds")
            finally:
                account()
                if current is not None and current.in_flight:
                    current.abandon()  # a sync cut short: the stream is not handed out again
                if pages:
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        try:
                            await cache_pages()
                        except Rlp2pError as exc:  # the error that ended the sync matters more
                            log.debug("caching walked pages failed: %s", exc)

    def _ipfs_source(self) -> IpfsSource:
        network = self.peers.network
        return IpfsSource(network.host, network.discovery, self.peers.timeout)

    async def _ipfs_record(self, name: str) -> RecordInfo:
        info = await self._ipfs_source().record(name, allow_expired=not self.require_fresh)
        if info is None:
            raise NoReplicas(f"no storage peer and no DHT record for {name}")
        return info

    async def _from_cache(self, plan: SyncPlan, wants: list[bytes], look: _CacheLook) -> tuple[list[bytes], int]:
        """Hand the plan what the local store holds of ``wants``: (what is still missing, hits).

        Message blocks are looked for only while ``look.blocks``: a lookup that finds none of
        them turns it off for the rest of the sync (a fresh sync's blocks are not there; a
        resumed sync's cached ones are wanted first, oldest first, so its first lookup finds
        them). Pages of the walk are looked for until ``WALK_MISSES`` in a row are not there (a
        fresh walk's are not; a resumed walk finds those it cached after the new head page);
        pages taken again by a replay always are. Whatever is not looked for is fetched: a
        wrong guess costs bytes, never a message."""
        walk = plan.walk_page

        def asking(address: bytes) -> bool:
            if address == walk:
                return look.walk()
            return look.blocks or plan.is_page(address)

        offered = {a: self._offered.pop(a) for a in wants if a in self._offered}
        asked = [a for a in wants if a not in offered and asking(a)]
        cached = await self.astore.call(self.store.get_blocks, asked) if asked else {}
        cached.update(offered)
        missing = []
        block_asked = block_hits = 0
        for address in wants:
            page = plan.is_page(address)
            block_asked += not page and look.blocks
            data = cached.get(address)
            if address == walk and look.walk():
                look.walk_misses = 0 if data is not None else look.walk_misses + 1
            if data is None:
                missing.append(address)
                continue
            try:
                used = plan.receive(address, data)
            except (Rlp2pError, ValueError):
                missing.append(address)  # a bad cached copy: fetch it again
            else:
                block_hits += not page
                if used and address in offered:
                    look.offered.append((address, data))
        if block_asked and not block_hits:
            look.blocks = False
        return missing, len(wants) - len(missing)

    def _take(
        self,
        plan: SyncPlan,
        results: list[tuple[bytes, bytes | Rlp2pError]],
        fetched: list[tuple[bytes, bytes]],
        pages: list[tuple[bytes, bytes]],
    ) -> str:
        """Hand the plan the answers of one replica; returns why it failed ("" if it did not)."""
        failure = ""
        for address, result in results:
            if isinstance(result, bytes):
                try:
                    page = plan.is_page(address)
                    if plan.receive(address, result):  # False: not needed, so not hashed: not kept
                        (pages if page else fetched).append((address, result))
                    continue
                except CapabilityError:
                    raise  # the block matched its address: another replica has the same bytes
                except Rlp2pError as exc:
                    failure = failure or f"bad block: {type(exc).__name__}: {exc}"
            else:
                failure = failure or f"{type(result).__name__}: {result}"
            plan.retry(address)
        return failure


def _round_bound(plan: SyncPlan, max_pages_walk: int, replicas: int) -> int:
    """Rounds enough for every page and message one answer at a time, from every replica left
    (each failure moves to the next one): a bound on the loop, not a guess at its length."""
    return 4 * (max_pages_walk + 1 + (plan.head_seq or 0)) * (replicas + 1)


def _fresh(name: str, state: ReaderState, now: datetime, limits: Limits) -> bool:
    """The reader holds a record of ``name`` that has not expired at ``now``."""
    if state.record is None:
        return False
    try:
        return not verify_record(name, state.record, now=now, limits=limits, allow_expired=True).is_expired(now)
    except Rlp2pError:
        return False


async def _call(on_message: OnMessage, delivery: Delivery) -> None:
    # a cancelled sync stops handing over at once, also to a callback that never awaits
    await trio.lowlevel.checkpoint_if_cancelled()
    outcome = on_message(delivery)
    if outcome is not None:
        await outcome


__all__ = ["MAX_HINTS", "MAX_INBOX_BATCH", "Reader", "SyncReport"]
