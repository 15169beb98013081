"""Following logs: catch up, then sync each log again as soon as a newer record is announced.

``Reader.follow(names, on_message=...)`` (or ``Follower(reader, names, ...).run()``) runs until
cancelled:

1. subscribe to each log's topic (:mod:`rlp2p.node.announce`) first, so an announcement that
   arrives during the catch-up is not missed. A failed subscription (pubsub gone with a network
   change, after ``resume()``) is retried with a bounded exponential back-off (``REJOIN``; the
   ``sleep`` is injectable) while the log is followed by its syncs; a join after failures syncs
   at once (announcements may have been missed). A rejoin after ``pause()`` is kept out of its
   peers' meshes by gossipsub's back-off (10 s, sometimes 60: see rlp2p/node/announce.py), and
   py-libp2p sends no gossip to a peer it backs off from: until a mesh peer is there, the log is
   synced after each of ``REJOIN``'s delays (about 2 minutes in all), and once more when it is;
2. sync each log (``Reader.sync``: what was published while we were away);
3. on each valid announcement of a record newer than the one held, sync that log again; many
   announcements during one sync make one more sync, not many. The announcement carries the
   signed record, verified by the topic validator, so this sync skips the record fan-out: it
   walks from the announced head, asking the storage peer that delivered the announcement, then
   the replicas the last sync used (``MAX_VIA``, streams already open): one round trip when the
   head page holds the new messages. Should that fail, an ordinary sync follows at once;
4. as a safety net (announcements lost, networks gossipsub does not reach, storage peers that do
   not run it) sync every ``poll_interval`` seconds anyway, and sooner while no connected peer
   relays the log's topic (checked every ``LONELY_CHECK`` seconds; a sync after ``LONELY_MIN``
   seconds alone, doubling while it stays so), since the sync reconnects to storage peers and
   gossip resumes through them;
5. a failed sync (no replica reachable, all of them behind) is retried with back-off from
   ``RETRY_MIN`` to ``RETRY_MAX`` seconds; a storage peer that went away is fallen over inside
   the sync, and its restart is picked up by the next one.

Only ``Reader.sync`` moves a reader forward, so order and exactly-once delivery are what it gives:
one sync per log at a time, each batch recorded in the inbox before ``on_message`` sees it. The
one exception keeps the same contract: with ``mesh=False``, a pushed record whose rebuilt head
page is the whole next state (every new message in it) is delivered by
``Reader.deliver_pushed`` in the log's own task, in place of that sync: one store transaction
(checked against the state the last sync or delivery ended on), then ``on_message``.
Cancelling ``follow`` at any point loses nothing from the inbox and delivers nothing twice: the
next follow or sync carries on from the delivered seq. A message recorded in the inbox whose
``on_message`` did not return for (a cancellation, or the rest of a batch recorded at once) is
in the inbox (``store.delivered``) but not acknowledged (``acked_seq``): the next ``Reader.sync``
hands such messages to the application again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from dataclasses import dataclass, field

import trio

from libp2p.peer.id import ID

from rlp2p.core.backoff import Backoff
from rlp2p.core.private import Capability
from rlp2p.core.record import RecordInfo
from rlp2p.errors import Rlp2pError
from rlp2p.store import ReaderState
from rlp2p.wire.cas import CAS_PROTOCOL
from rlp2p.core.rebuild import rebuild_head
from rlp2p.wire.push import pushed_records

if TYPE_CHECKING:
    from rlp2p.node.reader import OnMessage, Reader, SyncReport

log = logging.getLogger(__name__)

#: seconds between safety-net syncs of a followed log
DEFAULT_POLL = 180.0
#: back-off after a failed sync, from RETRY_MIN doubling to RETRY_MAX seconds
RETRY_MIN, RETRY_MAX = 0.5, 30.0
#: seconds between checks (in memory, no I/O) that some connected peer still relays a log's topic
LONELY_CHECK = 5.0
#: once none does, sync (which reconnects to storage peers) after LONELY_MIN seconds, then after
#: twice as long each time it stays so, up to the poll interval
LONELY_MIN = 2.0
#: syncs in a row that may come back older than an announced record (replicas still converging)
#: before we leave it to the next announcement or poll
CONVERGE_TRIES = 5
#: logs one follower follows at most (one task and one topic each)
MAX_FOLLOWED = 1024
#: replicas an announced record is fetched from, in turn, before an ordinary sync
MAX_VIA = 3
#: head pages a push follower keeps in memory to rebuild the next one from (one per log, the
#: most recently rebuilt; larger ones are read back from the store when needed)
KEPT_PAGES, KEPT_PAGE_BYTES = 64, 64 * 1024
#: joining a log's topic: tries, and the waits between them, before following it by syncs alone
REJOIN = Backoff(first=0.5, cap=30.0, tries=8)


@dataclass
class _Log:
    name: str
    #: a private log's read capability (rlp2p.core.private), given in place of its name
    capability: Capability | None = None
    wake: trio.Event = field(default_factory=trio.Event)
    #: highest sequence announced
    announced: int = 0
    #: sequence of the record the last successful sync ended on
    held: int = 0
    synced: trio.Event = field(default_factory=trio.Event)
    #: the newest record announced (verified), while newer than ``held``
    record: RecordInfo | None = None
    #: storage peers the last sync fetched from (at most MAX_VIA)
    replicas: list[ID] = field(default_factory=list)
    #: subscribed to the log's topic (mesh mode)
    joined: bool = False
    #: the head page and delivered seq the last successful sync ended on
    head: bytes | None = None
    delivered: int = 0
    acked: int = 0
    #: a sync (or a pushed delivery) of the log is under way
    syncing: bool = False


@dataclass
class FollowStats:
    syncs: int = 0
    failures: int = 0
    announcements: int = 0
    #: syncs that started from an announced record (no record fan-out)
    direct: int = 0
    #: of those, ones that failed and were followed by an ordinary sync
    direct_failures: int = 0
    #: ``mesh=False``: records pushed, and the bytes of their frames
    pushed: int = 0
    push_bytes: int = 0
    #: head pages rebuilt from the previous one and the pushed messages (not fetched)
    rebuilt: int = 0
    #: pushed records delivered from their rebuilt page alone, without a sync
    #: (``Reader.deliver_pushed``)
    pushed_delivered: int = 0
    #: topic subscriptions made, and attempts that failed (retried with ``REJOIN``'s back-off)
    joins: int = 0
    join_failures: int = 0
    #: syncs asked for while joined but in no peer's mesh (rejoin back-off)
    unmeshed_syncs: int = 0


class Follower:
    def __init__(
        self,
        reader: Reader,
        names: Sequence[str],
        *,
        on_message: OnMessage | None = None,
        poll_interval: float = DEFAULT_POLL,
        on_report: Callable[[SyncReport], Any] | None = None,
        on_error: Callable[[str, Exception], Any] | None = None,
        mesh: bool = True,
        rejoin: Backoff = REJOIN,
        sleep: Callable[[float], Awaitable[Any]] = trio.sleep,
    ) -> None:
        names = list(dict.fromkeys(names))
        if not names:
            raise ValueError("follow at least one log")
        if len(names) > MAX_FOLLOWED:
            raise ValueError(f"follow at most {MAX_FOLLOWED} logs at once")
        if not poll_interval > 0:
            raise ValueError("poll_interval must be positive")
        self.reader = reader
        self.on_message = on_message
        self.poll_interval = poll_interval
        self.on_report = on_report
        self.on_error = on_error
        #: join each log's gossipsub mesh (True), or ask one storage peer to push records on a
        #: stream (False: the phone-friendly choice; see rlp2p/wire/push.py)
        self.mesh = mesh
        self.rejoin = rejoin
        self.sleep = sleep
        self._replicas_known = trio.Event()
        self._awake = trio.Event()
        self._awake.set()
        self._scope: trio.CancelScope | None = None
        self._started = False
        self._push_peer: ID | None = None
        self._push_via: dict[str, ID] = {}
        # per log: the newest pushed record's sequence and the messages pushed beside it
        self._pushed: dict[str, tuple[int, list[tuple[int, bytes]]]] = {}
        # per log: the head page last rebuilt, (CID, bytes), at most KEPT_PAGES (oldest out)
        self._pages: dict[str, tuple[bytes, bytes]] = {}
        # a private log is followed by its capability string, given where its name goes
        caps = [Capability.parse(n) if Capability.looks_like(n) else None for n in names]
        self.logs = {c.name if c else n: _Log(c.name if c else n, c) for n, c in zip(names, caps, strict=True)}
        self.stats = FollowStats()
        #: set once every log had its first successful sync (caught up)
        self.caught_up = trio.Event()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Follow until cancelled; ``task_status.started()`` once subscribed, before catching up.

        While :meth:`pause` holds, nothing runs: no sync, no poll, no subscription, no push
        stream; :meth:`resume` starts again with a sync of every log."""
        async with trio.open_nursery() as outer:
            outer.start_soon(self._watch_caught_up)
            while True:
                await self._awake.wait()
                with trio.CancelScope() as scope:
                    self._scope = scope
                    await self._active(trio.TASK_STATUS_IGNORED if self._started else task_status)
                self._scope = None

    async def _active(self, task_status: Any) -> None:
        announcements = self.reader.peers.announcements
        async with trio.open_nursery() as nursery:
            if self.mesh and announcements is not None:
                for entry in self.logs.values():  # the first try of each before any sync
                    await nursery.start(self._subscribed, entry)
            for entry in self.logs.values():
                nursery.start_soon(self._follow, entry)
            if not self.mesh:
                nursery.start_soon(self._pushes)
            if not self._started:
                self._started = True
                task_status.started()

    async def _subscribed(self, entry: _Log, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Hold ``entry``'s topic subscription until cancelled; ``started()`` after the first try.
        A failed try is retried after the next of ``rejoin``'s delays; past the last, the log is
        followed by its syncs alone (the poll, and the lonely check that syncs sooner)."""
        announcements = self.reader.peers.announcements
        assert announcements is not None
        delays = self.rejoin.delays()
        failed = False
        while True:
            try:
                async with announcements.listening(entry.name, self._announced):
                    entry.joined = True
                    self.stats.joins += 1
                    if failed:  # announced while we were out: sync now
                        entry.wake.set()
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED
                    try:
                        await self._until_meshed(entry)
                        await trio.sleep_forever()
                    finally:
                        entry.joined = False
            except Exception as exc:  # whatever pubsub raised: no mesh for now, syncs go on
                entry.joined = False
                self.stats.join_failures += 1
                failed = True
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                delay = next(delays, None)
                if delay is None:
                    log.warning("could not join the topic of %s (%d tries): following by syncs", entry.name, self.rejoin.tries)
                    return
                log.info("joining the topic of %s failed, again in %.1f s: %r", entry.name, delay, exc)
                await self.sleep(delay)

    @property
    def paused(self) -> bool:
        return not self._awake.is_set()

    def pause(self) -> None:
        """Stop all work (the application goes to sleep): a sync under way is cancelled, which
        loses nothing (see the module's notes), subscriptions and push streams end."""
        if self._awake.is_set():
            self._awake = trio.Event()
        if self._scope is not None:
            self._scope.cancel()

    def resume(self) -> None:
        """Start again: each log is synced at once (what was missed while asleep), then followed."""
        self._awake.set()

    async def _until_meshed(self, entry: _Log) -> None:
        """Sync after each of ``rejoin``'s delays while no peer is in our mesh of the log's topic
        (announcements may not reach us), and once more when one is."""
        announcements = self.reader.peers.announcements
        assert announcements is not None
        out = False
        for delay in self.rejoin.delays():
            if announcements.meshed(entry.name):
                break
            out = True
            await self.sleep(delay)
            entry.wake.set()
            self.stats.unmeshed_syncs += 1
        if out and announcements.meshed(entry.name):
            entry.wake.set()

    async def _pushes(self) -> None:
        """``mesh=False``: one push stream to one storage peer at a time (rlp2p/wire/push.py),
        the next one after a failure, with back-off."""
        peers_ = self.reader.peers
        names = list(self.logs)
        retry = RETRY_MIN
        turn = 0
        while True:
            peers = list(self.reader.storage_peers or peers_.known_storage_peers())
            for entry in self.logs.values():
                peers += [p for p in entry.replicas if p not in peers]
            if not peers and not self._replicas_known.is_set():  # none known yet: the first sync finds them
                with trio.move_on_after(retry):
                    await self._replicas_known.wait()
                if not self._replicas_known.is_set():
                    retry = min(retry * 2, RETRY_MAX)
                continue
            if peers:
                peer = peers[turn % len(peers)]
                turn += 1
                try:
                    records = pushed_records(
                        partial(peers_.network.open_stream, peer),
                        names,
                        clock=self.reader.clock,
                        limits=self.reader.limits,
                        pages=self._previous_pages,
                    )
                    self._push_peer = peer
                    log.info("following %d log(s) by pushes from %s", len(names), peer)
                    async for pushed in records:
                        retry = RETRY_MIN
                        info = pushed.info
                        self.stats.pushed += 1
                        self.stats.push_bytes += pushed.size
                        self._push_via[pushed.name] = peer
                        if info is None:  # a compact record we could not expand: sync instead
                            lost = self.logs.get(pushed.name)
                            if lost is not None:
                                lost.wake.set()
                            continue
                        if pushed.page is not None:  # rebuilt, and its CID is the verified head
                            # to the sync in memory: stored with its delivery, not before
                            self.reader.offer_block(info.head, pushed.page)
                            self._keep_page(info.name, info.head, pushed.page)
                            self.stats.rebuilt += 1
                        elif pushed.messages:
                            self._pushed[info.name] = (info.sequence, pushed.messages)
                        self._announced(info)
                except Exception as exc:  # a dial, a stream, a bad frame: the next peer, later
                    log.info("push stream from %s ended: %r", peer, exc)
                finally:
                    self._push_peer = None
            await self.sleep(retry)
            retry = min(retry * 2, RETRY_MAX)

    @property
    def idle(self) -> bool:
        """Every log synced up to the newest record announced, no sync asked for and none under
        way (timers, the poll's and the mesh check's, may still start one later)."""
        return self.caught_up.is_set() and all(
            e.announced <= e.held and not e.wake.is_set() and not e.syncing for e in self.logs.values()
        )

    def _announced(self, info: RecordInfo) -> None:
        entry = self.logs.get(info.name)
        if entry is None or info.sequence <= max(entry.announced, entry.held):
            return
        self.stats.announcements += 1
        entry.announced = info.sequence
        entry.record = info
        entry.wake.set()

    async def _watch_caught_up(self) -> None:
        for entry in self.logs.values():
            await entry.synced.wait()
        self.caught_up.set()

    async def _follow(self, entry: _Log) -> None:
        retry = RETRY_MIN
        lonely = LONELY_MIN
        behind = 0
        while True:
            entry.wake = trio.Event()  # before the sync: an announcement during it wakes the next
            entry.syncing = True
            try:
                report = await self._sync(entry)
            except Rlp2pError as exc:
                entry.syncing = False
                self.stats.failures += 1
                log.info("sync of %s failed, again in %.1f s: %s", entry.name, retry, exc)
                if self.on_error is not None:
                    self.on_error(entry.name, exc)
                with trio.move_on_after(retry):
                    await entry.wake.wait()
                retry = min(retry * 2, RETRY_MAX)
                continue
            finally:  # (cancelled too) the state below is set before the next checkpoint
                entry.syncing = False
            retry = RETRY_MIN
            self.stats.syncs += 1
            entry.held = max(entry.held, report.record_seq)
            entry.head, entry.delivered, entry.acked = report.head, report.delivered_seq, report.acked_seq
            if entry.record is not None and entry.record.sequence <= entry.held:
                entry.record = None
            used = [ID.from_base58(p) for p in report.peers_used]
            if used:
                entry.replicas = list(dict.fromkeys(used))[:MAX_VIA]
                self._replicas_known.set()
            entry.synced.set()
            if self.on_report is not None:
                self.on_report(report)
            if entry.announced > entry.held and behind < CONVERGE_TRIES:
                # the replicas we asked had not all taken the announced record yet
                behind += 1
                with trio.move_on_after(RETRY_MIN * behind):
                    await entry.wake.wait()
                continue
            behind = 0
            lonely = await self._wait(entry, lonely)

    async def _sync(self, entry: _Log) -> SyncReport:
        record = entry.record
        fresh = record is not None and record.sequence > entry.held
        if record is not None and fresh:
            await self._rebuild(entry, record)  # (1.2 offered the page it rebuilt already)
            if not self.mesh and entry.capability is None and entry.head is not None:
                # the pushed page may be the whole next state: delivered without a sync
                after = ReaderState(None, entry.held, entry.head, entry.delivered, entry.acked)
                report = await self.reader.deliver_pushed(record, after, on_message=self.on_message)
                if report is not None:
                    self.stats.pushed_delivered += 1
                    return report
        via = self._via(entry) if fresh else []
        if record is not None and via:
            self.stats.direct += 1
            try:
                return await self.reader.sync(
                    entry.name, on_message=self.on_message, capability=entry.capability, announced=record, via=via
                )
            except Rlp2pError as exc:
                self.stats.direct_failures += 1
                log.info("sync of %s from the announced record failed, asking every replica: %s", entry.name, exc)
        return await self.reader.sync(entry.name, on_message=self.on_message, capability=entry.capability)

    async def _rebuild(self, entry: _Log, record: RecordInfo) -> None:
        """Hand the sync the record's head page, rebuilt from the page the reader holds and the
        messages pushed beside the record (rlp2p/core/rebuild.py), so it takes it from memory
        instead of fetching it: no store write (the sync caches the page with its delivery), and
        no read when the previous page is the one rebuilt last (kept in memory). A page that
        does not hash to the record's head is not offered: the sync fetches as before."""
        pushed = self._pushed.pop(entry.name, None)
        if pushed is None or pushed[0] != record.sequence:
            return
        reader = self.reader
        store = reader.store
        kept = self._pages.pop(entry.name, None)
        if kept is not None and kept[0] == entry.head:  # the page the last sync ended on: no I/O
            previous: bytes | None = kept[1]
            delivered = entry.delivered
        else:

            def held() -> tuple[int, bytes | None]:  # the state and its head page, in one trip
                state = store.get_reader_state(entry.name)
                if state.head is None or state.head == record.head:
                    return state.delivered_seq, None
                return state.delivered_seq, store.get_blocks([state.head]).get(state.head)

            delivered, previous = await reader.astore.call(held)
        if previous is None:
            return
        new = [(seq, data) for seq, data in pushed[1] if seq > delivered]
        page = rebuild_head(previous, new, record.head, reader.limits)
        if page is not None:
            reader.offer_block(record.head, page)
            self.stats.rebuilt += 1
            self._keep_page(entry.name, record.head, page)

    def _keep_page(self, name: str, head: bytes, page: bytes) -> None:
        """The head page rebuilt last for ``name``: the next rebuild starts from it, no store read."""
        self._pages.pop(name, None)
        if len(page) <= KEPT_PAGE_BYTES:
            while len(self._pages) >= KEPT_PAGES:
                del self._pages[next(iter(self._pages))]
            self._pages[name] = (head, page)

    async def _previous_pages(self, name: str, head: bytes) -> list[bytes]:
        """The head pages a pushed compact record may have been built on: the page ``head`` if
        held (kept in memory when rebuilt last, else from the store), then the one the reader's
        last sync ended on."""
        kept = self._pages.get(name)
        if kept is not None and kept[0] == head:
            return [kept[1]]
        reader = self.reader
        state = await reader.state(name)
        want = list(dict.fromkeys([head] + ([state.head] if state.head is not None else [])))
        held = await reader.astore.call(reader.store.get_blocks, want)
        return [held[h] for h in want if h in held]

    def _via(self, entry: _Log) -> list[ID]:
        """Who to fetch an announced record's pages from: the storage peer that delivered the
        announcement, then the replicas the last sync used, then the reader's storage peers."""
        peers_ = self.reader.peers
        peers: list[ID] = []
        forwarder = self._push_via.get(entry.name)
        if self.mesh and peers_.announcements is not None:
            forwarder = peers_.announcements.via.get(entry.name)
        if forwarder is not None and peers_.network.serves(forwarder, CAS_PROTOCOL):
            peers.append(forwarder)
        peers += entry.replicas
        peers += self.reader.storage_peers or []
        return list(dict.fromkeys(peers))[:MAX_VIA]

    async def _wait(self, entry: _Log, lonely: float) -> float:
        """Until an announcement, the poll interval, or ``lonely`` seconds without a peer that
        relays the topic; returns the next lonely delay."""
        deadline = trio.current_time() + self.poll_interval
        alone_since: float | None = None
        while (left := deadline - trio.current_time()) > 0:
            with trio.move_on_after(min(left, LONELY_CHECK)):
                await entry.wake.wait()
                return lonely
            if not self._lonely(entry):
                alone_since, lonely = None, LONELY_MIN
                continue
            now = trio.current_time()
            alone_since = now if alone_since is None else alone_since
            if now - alone_since >= lonely:
                return min(lonely * 2, self.poll_interval)
        return lonely

    def _lonely(self, entry: _Log) -> bool:
        if not self.mesh:
            return self._push_peer is None
        announcements = self.reader.peers.announcements
        return announcements is not None and (not entry.joined or not announcements.topic_peers(entry.name))


__all__ = ["DEFAULT_POLL", "FollowStats", "Follower"]
