"""Bob: learn what is new in a log and fetch it from whichever storage peers hold it.

1. Find the log's storage peers (DHT provider records, plus peers already known to serve CAS/NS).
2. Fetch the record from up to ``fanout`` of them at once (one round trip), verify each, keep the
   best; a peer whose record is invalid or older than one already accepted is bypassed.
3. Same head as last time: done. Otherwise drive the sans-I/O :class:`SyncPlan`: blocks come from
   the local cache first, then from one replica over one pipelined stream, falling over to the
   next replica on any failure (a refused, missing or wrong block, a dead stream).
4. Deliver in order, exactly once, each batch recorded durably before the application sees it,
   so a sync cut off halfway resumes where it stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import trio
from libp2p.peer.id import ID

from rlp2p.core.record import RecordInfo
from rlp2p.core.sync import Delivery, SyncPlan
from rlp2p.errors import (
    NoReplicas,
    Rlp2pError,
    StaleRecord,
    SyncError,
)
from rlp2p.wire.cas import CasClient

if TYPE_CHECKING:
    from rlp2p.node.node import Node

log = logging.getLogger(__name__)

#: addresses handed to one replica per pipelined batch
FETCH_BATCH = 256
#: most CAS peers taken from a head page's hint
MAX_HINTS = 16


@dataclass
class SyncReport:
    name: str
    delivered: list[Delivery] = field(default_factory=list)
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


OnMessage = Callable[[Delivery], Awaitable[None] | None]


class Reader:
    def __init__(
        self,
        node: Node,
        *,
        fanout: int = 3,
        storage_peers: list[ID] | None = None,
        batch: int = FETCH_BATCH,
    ) -> None:
        if fanout < 1 or batch < 1:
            raise ValueError("fanout and batch must be at least 1")
        self.node = node
        self.fanout = fanout
        self.storage_peers = storage_peers
        self.batch = batch

    async def find_peers(self, name: str) -> list[ID]:
        if self.storage_peers is not None:
            return list(self.storage_peers)
        assert self.node.discovery is not None
        peers: dict[ID, None] = {}
        for info in await self.node.discovery.find_log_peers(name):
            self.node.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
            peers[info.peer_id] = None
        for peer in self.node.known_storage_peers():
            peers.setdefault(peer, None)
        return list(peers)

    async def sync(
        self,
        name: str,
        *,
        on_message: OnMessage | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SyncReport:
        started = time.monotonic()
        report = SyncReport(name=name)
        store, astore = self.node.store, self.node.astore
        state = await astore.call(store.get_reader_state, name)
        peers = await self.find_peers(name)
        if not peers:
            raise NoReplicas(f"no storage peer for {name} could be found")

        best, holders = await self._best_record(name, peers, report)
        report.record_seq, report.head = best.sequence, best.head
        if best.sequence < state.record_seq:
            raise StaleRecord(
                f"every reachable replica of {name} is behind what this reader accepted",
                have=state.record_seq,
                got=best.sequence,
            )
        if best.head == state.head:
            report.up_to_date = True
            report.seconds = time.monotonic() - started
            return report

        plan = SyncPlan(best.head, state.delivered_seq, self.node.config.limits)
        # replicas with the best record first, then the rest: blocks are content-addressed, so an
        # older replica may still hold most of them
        order = holders + [p for p in peers if p not in holders]
        await self._drive(name, plan, order, report, on_message, progress)
        await astore.call(store.set_reader_record, name, best.raw, best.sequence, best.head)
        report.pages, report.blocks = plan.pages_fetched, plan.blocks_fetched
        report.seconds = time.monotonic() - started
        return report

    async def follow(self, names: list[str], *, on_message: OnMessage | None = None, **kwargs: object) -> None:
        """Sync ``names``, then again on each announced newer record, until cancelled
        (:class:`rlp2p.node.follow.Follower`: ``poll_interval``, ``on_report``, ``task_status``)."""
        from rlp2p.node.follow import Follower

        task_status = kwargs.pop("task_status", trio.TASK_STATUS_IGNORED)
        await Follower(self, names, on_message=on_message, **kwargs).run(task_status=task_status)  # type: ignore[arg-type]

    async def _best_record(
        self, name: str, peers: list[ID], report: SyncReport
    ) -> tuple[RecordInfo, list[ID]]:
        """Ask up to ``fanout`` peers at once; more only if none of them answers with a valid record."""
        found: dict[ID, RecordInfo] = {}
        for start in range(0, len(peers), self.fanout):
            batch = peers[start : start + self.fanout]

            async def ask(peer: ID) -> None:
                try:
                    async with self.node.ns(peer) as ns:
                        try:
                            found[peer] = await ns.fetch(name)
                        finally:
                            report.streams += ns.rpc.new_streams
                            report.bytes_in += ns.rpc.bytes_in
                            report.bytes_out += ns.rpc.bytes_out
                            report.requests += 1
                except (Rlp2pError, trio.TooSlowError) as exc:
                    report.peers_bypassed[peer.to_string()] = f"record: {type(exc).__name__}: {exc}"

            async with trio.open_nursery() as nursery:
                for peer in batch:
                    nursery.start_soon(ask, peer)
            report.round_trips += 1
            if found:
                break
        if not found:
            raise NoReplicas(f"no storage peer gave a valid record for {name}: {report.peers_bypassed}")
        best_seq = max(info.sequence for info in found.values())
        for peer, info in found.items():
            if info.sequence < best_seq:
                # still asked for blocks last (blocks are content-addressed), never for the head
                report.peers_bypassed[peer.to_string()] = f"record: older (seq {info.sequence} < {best_seq})"
        # in the caller's order, so a given list of storage peers is tried as given
        holders = [p for p in peers if p in found and found[p].sequence == best_seq]
        best = found[holders[0]]
        return best, holders

    async def _drive(
        self,
        name: str,
        plan: SyncPlan,
        peers: list[ID],
        report: SyncReport,
        on_message: OnMessage | None,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        store, astore = self.node.store, self.node.astore
        async with AsyncExitStack() as stack:
            current: CasClient | None = None
            current_peer: ID | None = None
            remaining = list(peers)
            hinted = False
            max_rounds = 4 * (self.node.config.limits.max_pages_walk + 1)
            for _ in range(max_rounds):
                if plan.done:
                    break
                wants = plan.wants(limit=self.batch)
                if not wants:
                    raise SyncError(f"sync of {name} stalled with nothing left to fetch")
                cached = await astore.call(store.get_blocks, wants)
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
                if plan.cas and not hinted:
                    # the head page names the CAS peers that hold the log: fall-overs of last resort
                    hinted = True
                    # (a hint is the page writer's word: at most MAX_HINTS of them are tried)
                    hinted_peers = self.node.peers_from_multiaddrs(plan.cas[:MAX_HINTS])
                    remaining.extend(p for p in hinted_peers if p not in peers)
                if missing:
                    while current is None:
                        if not remaining:
                            for address in missing:
                                plan.retry(address)
                            raise SyncError(
                                f"no replica could serve the rest of {name}: {report.peers_bypassed}"
                            )
                        current_peer = remaining.pop(0)
                        try:
                            current = await stack.enter_async_context(self.node.cas(current_peer))
                            report.streams += current.rpc.new_streams
                            report.peers_used.append(current_peer.to_string())
                        except (Rlp2pError, trio.TooSlowError) as exc:
                            report.peers_bypassed[current_peer.to_string()] = f"cas: {exc}"
                    assert current_peer is not None
                    failed = await self._fetch(plan, current, missing, report)
                    if failed:
                        report.peers_bypassed[current_peer.to_string()] = failed
                        log.info("bypassing %s for %s: %s", current_peer, name, failed)
                        current = None  # its stream closes with the stack; next replica
                ready = plan.ready()
                if ready:
                    items = [(d.seq, d.id, d.data) for d in ready]
                    await astore.call(store.deliver, name, items)
                    for delivery in ready:
                        report.delivered.append(delivery)
                        if on_message is not None:
                            outcome = on_message(delivery)
                            if outcome is not None:
                                await outcome
                    if progress is not None and plan.head_seq is not None:
                        progress(plan.delivered_seq, plan.head_seq)
            if not plan.done:
                raise SyncError(f"sync of {name} did not finish within {max_rounds} rounds")

    async def _fetch(self, plan: SyncPlan, cas: CasClient, addresses: list[bytes], report: SyncReport) -> str:
        """Fetch ``addresses`` from one replica; returns why it failed ("" if it did not)."""
        rpc = cas.rpc
        before = (rpc.bytes_in, rpc.bytes_out, rpc.new_streams)
        try:
            results = await cas.get_many(addresses)
        except (Rlp2pError, trio.TooSlowError) as exc:
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
                    plan.receive(address, result)
                    good.append((address, result))
                    continue
                except Rlp2pError as exc:
                    failure = failure or f"bad block: {type(exc).__name__}: {exc}"
            else:
                failure = failure or f"{type(result).__name__}: {result}"
            plan.retry(address)
        if good:
            # cache what we fetched so a sync cut off here resumes without fetching it again
            await self.node.astore.call(self.node.store.put_blocks, good)
        return failure


__all__ = ["Reader", "SyncReport"]
