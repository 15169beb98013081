"""Alice: append to a log, lay it out in pages, replicate it, point the name at its head.

A publish uploads, to each replica, only the blocks that replica has not acknowledged before
(acknowledgements are durable, so a restarted publisher resumes without uploading again), then
the signed record. It succeeds only when a write quorum of replicas stored everything; replicas
that fail are replaced by the next-closest candidates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from rlp2p.core.keys import log_name
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, build_log
from rlp2p.core.placement import log_key, order_candidates
from rlp2p.core.record import create_record, verify_record
from rlp2p.errors import PublishError, RemoteError, Rlp2pError
from rlp2p.store import PublishState

if TYPE_CHECKING:
    from rlp2p.node.node import Node

log = logging.getLogger(__name__)

DEFAULT_MODE = LogMode.paged(64, embed=None)
#: blocks per pipelined batch while uploading
UPLOAD_BATCH = 256


@dataclass
class ReplicaResult:
    peer: str
    ok: bool
    blocks_sent: int = 0
    bytes_sent: int = 0
    error: str = ""


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
        # MVDS messages carry a group; by default one group per log
        self.group_id = group_id if group_id is not None else hashlib.sha256(self.name.encode()).digest()

    # --- the local log -------------------------------------------------------------------------

    async def append(self, bodies: Iterable[bytes], *, timestamp: int | None = None) -> list[int]:
        """Append messages to the local log (durably); returns their seqs. Nothing is sent."""
        ts = int(time.time()) if timestamp is None else timestamp
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
        """Replicate the whole local log and point the name at its head.

        Raises PublishError when fewer than ``write_quorum`` replicas stored everything; what
        they did store is remembered, so the next publish sends only the rest.
        """
        started = time.monotonic()
        store, astore = self.node.store, self.node.astore
        rows = await astore.call(store.log_entries, self.name)
        if not rows:
            raise PublishError("the log is empty: append messages before publishing")
        candidates = await self.candidates()
        if len(candidates) < self.write_quorum:
            raise PublishError(
                f"found {len(candidates)} storage peers, need {self.write_quorum} for the write quorum"
            )
        entries = [LogEntry(seq=seq, data=data) for seq, data in rows]
        # the head page names the intended replicas (the spec's CAS multiaddr), as a hint for readers
        hint = self.node.multiaddrs_of(candidates[: self.replicas])
        built = await trio.to_thread.run_sync(
            lambda: build_log(entries, self.mode, hint, limits=self.node.config.limits)
        )
        assert built.head is not None
        state = await astore.call(store.get_publish_state, self.name)
        sequence = (state.record_seq if state else 0) + 1
        record = create_record(self.key_pair, built.head, sequence)
        report = PublishReport(self.name, built.n, sequence, built.head)

        total = len(built.blocks) * min(self.replicas, len(candidates))
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(min(done[0], total), total)

        # aim for `replicas` copies; a failed replica is replaced by the next-closest candidate
        pending = list(candidates)
        while pending and len(report.stored_on) < self.replicas:
            need = self.replicas - len(report.stored_on)
            batch, pending = pending[:need], pending[need:]
            results: list[ReplicaResult] = []

            async def one(peer: ID) -> None:
                results.append(await self._replicate(peer, built.blocks, record, tick))

            async with trio.open_nursery() as nursery:
                for peer in batch:
                    nursery.start_soon(one, peer)
            report.replicas.extend(results)
        report.seconds = time.monotonic() - started
        if len(report.stored_on) < self.write_quorum:
            failures = "; ".join(f"{r.peer}: {r.error}" for r in report.replicas if not r.ok)
            raise PublishError(
                f"stored on {len(report.stored_on)} of the {self.write_quorum} replicas needed ({failures})"
            )
        await astore.call(
            store.set_publish_state, self.name, PublishState(record_seq=sequence, head=built.head, published_length=built.n)
        )
        # the replicas that took the record put it into the DHT themselves; ours is a second
        # copy, so nobody waits for it (it was most of a publish's time)
        assert self.node.discovery is not None
        self.node.in_background(self.node.discovery.put_record, verify_record(self.name, record))
        if self.node.announcements is not None:  # live updates for followers (node/announce.py)
            self.node.announcements.announce(verify_record(self.name, record, now=self.node.config.clock()))
        log.info("published %s: %d messages, seq %d, on %s", self.name, built.n, sequence, report.stored_on)
        return report

    async def _replicate(
        self, peer: ID, blocks: dict[bytes, bytes], record: bytes, tick: Callable[[int], None]
    ) -> ReplicaResult:
        store, astore = self.node.store, self.node.astore
        result = ReplicaResult(peer=peer.to_string(), ok=False)
        try:
            acked = await astore.call(store.replicated, self.name, peer.to_string())
            missing = [a for a in blocks if a not in acked]
            tick(len(blocks) - len(missing))
            async with self.node.cas(peer) as cas:
                for start in range(0, len(missing), UPLOAD_BATCH):
                    chunk = missing[start : start + UPLOAD_BATCH]
                    await cas.add_many([blocks[a] for a in chunk])
                    await astore.call(store.mark_replicated, self.name, peer.to_string(), chunk)
                    result.blocks_sent += len(chunk)
                    tick(len(chunk))
                result.bytes_sent += cas.rpc.bytes_out
            async with self.node.ns(peer) as ns:
                try:
                    await ns.update(self.name, record)
                except RemoteError as exc:
                    # the replica holds this very sequence already (a retried publish): fine
                    if exc.code != "STALE" or not await self._replica_has(peer, record):
                        raise
                result.bytes_sent += ns.rpc.bytes_out
            result.ok = True
        except (Rlp2pError, trio.TooSlowError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            log.info("replica %s failed: %s", peer, result.error)
        return result

    async def _replica_has(self, peer: ID, record: bytes) -> bool:
        async with self.node.ns(peer) as ns:
            held = await ns.fetch(self.name)
        return held.raw == record

